"""Supabase: the ``auth.users`` table, exported from the SQL editor as CSV (or as JSON).

Supabase's "User Management" page exports users with ``select * from auth.users``; its
columns (the ``auth`` schema's ``users`` table): ``id``, ``email``, ``encrypted_password``
(bcrypt), ``email_confirmed_at`` (older projects: ``confirmed_at``), ``created_at``
(``2024-06-29 20:25:06.126079+00``), ``raw_app_meta_data`` (``provider``, ``providers``) and
``raw_user_meta_data`` (what the app and the OAuth provider put there: ``full_name``,
``name``, ``avatar_url``, ``picture``…), ``phone``, ``last_sign_in_at``, ``is_anonymous``…
In CSV the two ``raw_*`` columns are JSON text.

``raw_user_meta_data``: ``full_name`` (else ``name``) → name, ``avatar_url`` (else
``picture``) → picture URL, ``given_name``/``first_name`` and ``family_name``/``last_name`` →
names; the keys an OAuth provider echoes (``iss``, ``sub``, ``provider_id``, ``email``,
``email_verified``, ``phone_verified``) are left out; the rest → ``metadata.<key>``.
``raw_app_meta_data`` other than ``provider``/``providers`` → ``metadata.app.<key>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from plabdata.members._readers import SheetSource
from plabdata.members._sources._common import Mapper
from plabdata.members._sources._files import (
    Records,
    Sniffed,
    flatten,
    read_csv_export,
    read_json_document,
    read_ndjson,
)

NAME = "supabase"
TITLE = "Supabase Auth"
_ECHOES = ("iss", "sub", "provider_id", "email", "email_verified", "phone_verified")
_PROFILE = {
    "name": ("full_name", "name"),
    "picture_url": ("avatar_url", "picture"),
    "given_name": ("given_name", "first_name"),
    "family_name": ("family_name", "last_name"),
}
_PASSWORDLESS = {"email", "phone"}  # Supabase's own providers: not OAuth
_SECRETS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change_token_current",
    "phone_change_token",
    "reauthentication_token",
)


def read(source: SheetSource, sniffed: Sniffed) -> Iterator[Records]:
    """The export's users."""
    if sniffed.kind == "csv":
        yield read_csv_export(source, lambda h: h.strip().lower() == "email")
    elif sniffed.kind == "ndjson":
        yield from read_ndjson(source)
    else:
        yield read_json_document(source)


def mapper(records: Records) -> Mapper:
    """The sheet columns of one block of Supabase users."""
    _parse_json_text(records, "raw_user_meta_data")
    _parse_json_text(records, "raw_app_meta_data")
    m = Mapper(records, NAME)
    m.user_id("id")
    m.created_at("created_at")
    m.text("email", "email")
    confirmed = m.first("email_confirmed_at", "confirmed_at")
    if confirmed:
        m.verified_if_set(confirmed)
    for secret in _SECRETS:
        m.take(secret)  # read, never kept
    m.password_hash("encrypted_password")
    for target, keys in _PROFILE.items():
        path = m.first(*(f"raw_user_meta_data.{k}" for k in keys))
        if path:
            m.text(path, target)
            m.used.update(f"raw_user_meta_data.{k}" for k in keys)
    for key in _ECHOES:
        m.used.add(f"raw_user_meta_data.{key}")
    m.metadata("raw_user_meta_data.", skip=_ECHOES)
    m.take("raw_app_meta_data.provider")
    providers = m.take("raw_app_meta_data.providers")
    if providers is not None:
        oauth = [
            isinstance(p, list) and any(isinstance(x, str) and x not in _PASSWORDLESS for x in p)
            for p in providers.tolist()
        ]
        m.had_social |= np.array(oauth, dtype=bool)
    m.metadata("raw_app_meta_data.", dest="app.")
    return m


def _parse_json_text(records: Records, name: str) -> None:
    """A ``raw_*_meta_data`` column written as JSON text (CSV) → flattened columns."""
    if not records.has(name):
        return
    values = records.values(name).tolist()
    columns: dict[str, list[Any]] = {}
    for index, (row, text) in enumerate(zip(records.rows.tolist(), values, strict=True)):
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            records.issues.append((row, name, text[:80], "not a JSON object: left out", "warning"))
            continue
        for key, value in flatten(parsed, f"{name}.").items():
            columns.setdefault(key, [None] * len(values))[index] = value
    records.replace(name, columns)


def recognise(keys: set[str], sample: dict[str, object]) -> str | None:
    """Why these fields are Supabase's, or None."""
    marks = {"encrypted_password", "raw_user_meta_data", "raw_app_meta_data", "email_confirmed_at"}
    found = sorted(marks & {k.split(".")[0] for k in keys})
    if len(found) >= 2:
        return f"auth.users columns {', '.join(found)}"
    return None
