"""Platform presets: read the user export of Auth0, Firebase, Clerk, Supabase or Memberstack.

``read_member_sheet(path, source=...)`` calls :func:`read_export`, which reads the export block
by block, maps each block with its preset (one module per platform) and hands back the plain
sheet table that :mod:`plabdata.members._sheet` validates as it validates any sheet. A
migration is an import with a better reader: issues by row, the plan, the resumable apply and
the results are the same. ``docs/migrations.md`` lists every field each preset reads.

    >>> export = read_export("users.ndjson", "auto", None, TARGETS)
    >>> export.preset, export.reason
    ('auth0', 'an NDJSON file whose users have identities and email_verified fields')
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pandas as pd

from plabdata.errors import ValidationError
from plabdata.members._readers import SheetSource, Table
from plabdata.members._sources import (
    _auth0,
    _clerk,
    _firebase,
    _generic,
    _memberstack,
    _supabase,
)
from plabdata.members._sources._common import MIGRATION_TARGETS, Mapped
from plabdata.members._sources._detect import detect
from plabdata.members._sources._files import Issue, as_rereadable, read_frame, sniff

#: The presets, by the name ``source=`` takes.
PRESETS: dict[str, ModuleType] = {
    m.NAME: m for m in (_auth0, _firebase, _clerk, _supabase, _memberstack, _generic)
}
#: What ``source=`` accepts.
SOURCES = (*PRESETS, "auto")
_ISSUE_COLUMNS = ["row", "column", "value", "problem", "severity"]


@dataclass(frozen=True)
class Export:
    """An export turned into a sheet: the table, its header → field mapping, the issues
    found while reading (``severity`` set), and which preset read it and why."""

    table: Table
    columns: dict[str, str | None]
    issues: pd.DataFrame
    preset: str
    reason: str
    ignored: tuple[str, ...]


def read_export(
    source: SheetSource,
    preset: str,
    column_map: Mapping[str, str | None] | None,
    targets: tuple[str, ...],
) -> Export:
    """Read a platform's user export as a sheet (see ``read_member_sheet(source=...)``).

    Args:
        source: the export (a path or binary file object; CSV, JSON or NDJSON, gzipped or
            not), or a DataFrame of its fields.
        preset: a name of :data:`PRESETS`, or ``"auto"``.
        column_map: export field path → sheet field (over the preset's mapping), or None to
            leave a field out; besides ``targets``: ``original_user_id``,
            ``original_created_at``, ``password_hash``.
        targets: the sheet fields a column may be mapped to (and ``metadata.<key>``).

    Raises:
        ValidationError: an unknown preset, a file ``auto`` cannot place, an unreadable
            file, or a ``column_map`` naming a field the export does not have.
    """
    name = str(preset).lower()
    if name not in SOURCES:
        raise ValidationError(f"unknown source {preset!r}: use one of {', '.join(SOURCES)}")
    if column_map:
        _check_targets(column_map, targets)
    source = as_rereadable(source)
    sniffed = sniff(source)
    if name == "auto":
        if sniffed.kind == "frame":
            raise ValidationError("source='auto' needs a file: name the preset for a DataFrame")
        name, why = detect(sniffed)
        reason = f"auto chose {name} (because it is {why})"
    else:
        reason = f"read as {PRESETS[name].TITLE}'s export (source={name!r})"
    module = PRESETS[name]
    blocks = (
        [read_frame(source)] if isinstance(source, pd.DataFrame) else module.read(source, sniffed)
    )
    parts: list[Mapped] = []
    read_issues: list[Issue] = []
    with _collector_paused():
        for records in blocks:
            mapped = module.mapper(records).finish(column_map)
            read_issues.extend(records.issues)
            parts.append(mapped)
        return _assemble(sniffed.name, name, reason, parts, read_issues, column_map)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while millions of short-lived values are made (they hold
    no cycles; the collector's passes over them cost ~15 % of a 1,000,000-user read)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_targets(column_map: Mapping[str, str | None], targets: tuple[str, ...]) -> None:
    allowed = {*targets, *MIGRATION_TARGETS} - {"password"}
    for field_path, target in column_map.items():
        if target == "password":
            raise ValidationError(
                f"column_map maps {field_path!r} to 'password': a migration never sends an "
                "export's values as passwords (map a hash to 'password_hash'; read a sheet of "
                "real passwords without source=)"
            )
        if target is None or target in allowed or target.startswith("metadata."):
            continue
        raise ValidationError(
            f"column_map maps {field_path!r} to unknown field {target!r} (fields: "
            f"{', '.join(sorted(allowed))}, metadata.<key>)"
        )


def _assemble(
    name: str,
    preset: str,
    reason: str,
    parts: list[Mapped],
    read_issues: list[tuple[int | None, str, str, str, str]],
    column_map: Mapping[str, str | None] | None,
) -> Export:
    """One table of every block's columns; two headers meaning one field are merged."""
    issues = [*read_issues, *(i for p in parts for i in p.issues)]
    targets: dict[str, str] = {}
    for part in parts:
        for header, (target, _) in part.columns.items():
            targets.setdefault(header, target)
    seen = {n for p in parts for n in p.names}
    for field_path in column_map or {}:
        if field_path not in seen:
            raise ValidationError(
                f"{name}: column_map names {field_path!r}, which the export does not have "
                f"(its fields: {', '.join(sorted(seen)[:30])})"
            )
    sizes = [len(p.rows) for p in parts]
    cells = {
        header: np.concatenate(
            [
                p.columns[header][1] if header in p.columns else np.full(n, None, dtype=object)
                for p, n in zip(parts, sizes, strict=True)
            ]
        )
        if parts
        else np.zeros(0, dtype=object)
        for header in targets
    }
    rows = np.concatenate([p.rows for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    columns: dict[str, str | None] = {}
    owner: dict[str, str] = {}
    for header, target in targets.items():
        if preset == "generic" and not target and _looks_like_password(header):
            issues.append(_never_password(header))
            columns[header] = None
            continue
        if not target:
            continue  # generic: the sheet's header rules decide
        first = owner.get(target)
        if first is None:
            owner[target] = header
            columns[header] = target
            continue
        blank = pd.isna(pd.Series(cells[first])).to_numpy()
        cells[first] = np.where(blank, cells[header], cells[first])
        del cells[header]
        problem = f"also means {target} (as {first!r} does): merged into {first!r}, which wins"
        issues.append((None, header, "", problem, "warning"))
    frame = pd.DataFrame(cells, index=range(len(rows)), dtype=object)
    if frame.columns.empty:
        raise ValidationError(f"{name}: the export has no users")
    table = Table(name, list(frame.columns), frame, rows)
    table.formulas.update({h: set() for h in table.headers})
    used = {u for p in parts for u in p.used}
    ignored = tuple(sorted(n for n in seen if n not in used and n not in targets))
    return Export(table, columns, _issue_frame(issues), preset, reason, ignored)


def _looks_like_password(header: str) -> bool:
    return re.sub(r"[^a-z0-9]", "", header.lower()) in ("password", "pass", "pwd")


def _never_password(header: str) -> tuple[None, str, str, str, str]:
    problem = (
        "a migration never sends an export's values as passwords: left out (map it to "
        "password_hash if it holds hashes; read a sheet of real passwords without source=)"
    )
    return None, header, "", problem, "warning"


def _issue_frame(issues: list[tuple[int | None, str, str, str, str]]) -> pd.DataFrame:
    unique = list(dict.fromkeys(issues))
    frame = pd.DataFrame(unique, columns=_ISSUE_COLUMNS)
    return frame.astype({"row": "Int64"})


__all__ = ["PRESETS", "SOURCES", "Export", "read_export"]
