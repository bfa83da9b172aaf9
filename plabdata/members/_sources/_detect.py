"""``source="auto"``: which platform wrote this export, recognised from the file's shape.

The start of the file (:data:`~._files.SNIFF_BYTES`) is read for its format (NDJSON, a JSON
document, CSV with or without a header) and the fields of its first users; each preset's
``recognise`` says whether they are its own, and why. The first that does wins, in the order
of :data:`ORDER` — each looks for fields only its platform writes, so at most one matches a
real export. A file no preset recognises is refused with what was seen.

    >>> preset, reason = detect(sniff("users.ndjson"))
    >>> reason
    'an NDJSON file whose users have identities and email_verified fields'
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from plabdata.errors import ValidationError
from plabdata.members._readers import _decode
from plabdata.members._sources import _auth0, _clerk, _firebase, _memberstack, _supabase
from plabdata.members._sources._files import Sniffed, flatten

ORDER = (_firebase, _supabase, _clerk, _memberstack, _auth0)
_SAMPLE_USERS = 20
_KIND = {"ndjson": "an NDJSON file", "json": "a JSON document", "csv": "a CSV file"}


def detect(sniffed: Sniffed) -> tuple[str, str]:
    """``(preset name, why)`` for an export.

    Raises:
        ValidationError: no preset recognises the file (the message says what it looked like
            and what to pass instead).
    """
    if sniffed.kind == "csv":
        text = _decode(sniffed.head, sniffed.name)
        lines = list(csv.reader(io.StringIO(_whole_lines(text), newline="")))
        lines = [line for line in lines if any(c.strip() for c in line)]
        if lines:
            why = _firebase.recognise_csv(lines[0])
            if why:
                return _firebase.NAME, f"{why}, as firebase auth:export writes"
            header = [h.strip().lstrip("'") for h in lines[0]]
            sample = dict(zip(header, lines[1], strict=False)) if len(lines) > 1 else {}
            sample = {k: v.lstrip("'") for k, v in sample.items()}
            found = _match(set(header), sample, "a CSV file whose header has")
            if found:
                return found
        seen = ", ".join(lines[0][:8]) if lines else "nothing"
        raise _refuse(sniffed, f"a CSV file with the columns {seen}")
    users = _sample_users(sniffed)
    if not users:
        raise _refuse(sniffed, f"{_KIND[sniffed.kind]} with no user object at its start")
    keys = {k for user in users for k in user}
    found = _match(keys, users[0], f"{_KIND[sniffed.kind]} whose users have")
    if found:
        return found
    raise _refuse(sniffed, f"{_KIND[sniffed.kind]} whose users have {', '.join(sorted(keys)[:12])}")


def _match(keys: set[str], sample: dict[str, Any], lead: str) -> tuple[str, str] | None:
    for module in ORDER:
        why = module.recognise(keys, sample)
        if why:
            return module.NAME, f"{lead} {why}"
    return None


def _refuse(sniffed: Sniffed, seen: str) -> ValidationError:
    names = ", ".join(m.NAME for m in sorted(ORDER, key=lambda m: m.NAME))
    return ValidationError(
        f"{sniffed.name}: cannot tell which platform exported this file ({seen}). Pass "
        f"source= one of {names}, or source='generic' with column_map= naming its fields, "
        "or read it as a plain sheet (no source)"
    )


def _whole_lines(text: str) -> str:
    return text if "\n" not in text else text[: text.rfind("\n") + 1]


def _sample_users(sniffed: Sniffed) -> list[dict[str, Any]]:
    text = _decode(sniffed.head, sniffed.name)
    users: list[dict[str, Any]] = []
    if sniffed.kind == "ndjson":
        for line in _whole_lines(text).splitlines()[: _SAMPLE_USERS * 2]:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                users.append(flatten(value))
        return users[:_SAMPLE_USERS]
    decoder = json.JSONDecoder()
    start = text.find("[")
    if text.lstrip()[:1] == "{" and '"data"' not in text[:200] and '"users"' not in text[:200]:
        start = -1  # one user object
    position = start + 1 if start >= 0 else text.find("{")
    while 0 <= position < len(text) and len(users) < _SAMPLE_USERS:
        position = text.find("{", position)
        if position < 0:
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            break
        if isinstance(value, dict):
            users.append(flatten(value))
        position = end
    return users
