"""Clerk: the Dashboard's user export (CSV), or Backend API / CLI user objects (JSON).

The Dashboard CSV's columns (Clerk's "Export your users" page; the column list as the
WorkOS and Clerk migration tools read it): ``id``, ``first_name``, ``last_name``,
``username``, ``primary_email_address``, ``primary_phone_number``,
``verified_email_addresses``, ``unverified_email_addresses``, ``verified_phone_numbers``,
``unverified_phone_numbers``, ``totp_secret``, ``password_digest``, ``password_hasher``. It has
no sign-up time, no metadata and no social accounts: a user without a ``password_digest``
gets no note (the CSV cannot tell an OAuth-only user). ``created_at`` and the three metadata
columns are read when present. ``totp_secret`` is never read.

The JSON is an array of Backend API ``User`` objects: ``id``, ``first_name``, ``last_name``,
``image_url``, ``created_at`` (milliseconds), ``primary_email_address_id`` and
``email_addresses[]`` (``id``, ``email_address``, ``verification.status``),
``password_enabled``, ``external_accounts[]``, ``public_metadata``, ``unsafe_metadata``,
``private_metadata``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from plabdata.members._readers import SheetSource
from plabdata.members._sources._common import Mapper
from plabdata.members._sources._files import (
    Records,
    Sniffed,
    read_csv_export,
    read_json_document,
    read_ndjson,
)

NAME = "clerk"
TITLE = "Clerk"
_LIST_SPLIT = re.compile(r"[\s,;|]+")
_SECRETS = ("totp_secret", "backup_codes", "password_hasher")


def read(source: SheetSource, sniffed: Sniffed) -> Iterator[Records]:
    """The export's users."""
    if sniffed.kind == "csv":
        yield read_csv_export(source, lambda h: h.strip().lower() == "primary_email_address")
    elif sniffed.kind == "ndjson":
        yield from read_ndjson(source)
    else:
        yield read_json_document(source)


def mapper(records: Records) -> Mapper:
    """The sheet columns of one block of Clerk users."""
    m = Mapper(records, NAME)
    m.user_id("id")
    m.text("first_name", "given_name")
    m.text("last_name", "family_name")
    m.text("image_url", "picture_url")
    username = m.take("username")
    if username is not None:
        m.meta_value("username", "metadata.username", username)
    for secret in _SECRETS:
        m.take(secret)  # read, never kept
    m.password_hash("password_digest")
    if records.has("primary_email_address"):
        _csv_email(m)
    else:
        _api_email(m)
    if records.has("created_at"):
        sample = next((v for v in records.values("created_at").tolist() if v is not None), None)
        numeric = isinstance(sample, int | float) or (isinstance(sample, str) and sample.isdigit())
        m.created_at("created_at", unit="ms" if numeric else None)
    if records.has("password_enabled"):
        m.had_password |= records.values("password_enabled").map(lambda v: v is True).to_numpy()
    if records.has("external_accounts"):
        m.used.add("external_accounts")
        m.had_social |= records.list_any(
            "external_accounts", "provider", lambda v: isinstance(v, str) and bool(v)
        )
    _metadata(m, "public_metadata", "")
    _metadata(m, "unsafe_metadata", "unsafe.")
    _metadata(m, "private_metadata", "app.")
    return m


def _csv_email(m: Mapper) -> None:
    m.text("primary_email_address", "email")
    verified = m.take("verified_email_addresses")
    m.take("unverified_email_addresses")
    if verified is None:
        return
    emails = m.records.values("primary_email_address").tolist()
    flags = [
        None
        if not isinstance(e, str)
        else "true"
        if e.strip().lower() in {x.lower() for x in _LIST_SPLIT.split(v or "") if x}
        else "false"
        for e, v in zip(emails, verified.tolist(), strict=True)
    ]
    m.put("verified_email_addresses", "is_verified", flags)


def _api_email(m: Mapper) -> None:
    addresses = m.take("email_addresses")
    primary = m.take("primary_email_address_id")
    if addresses is None:
        return
    chosen: list[Any] = []
    verified: list[Any] = []
    ids = primary.tolist() if primary is not None else [None] * len(addresses)
    for items, wanted in zip(addresses.tolist(), ids, strict=True):
        found = [a for a in items or [] if isinstance(a, dict)]
        pick = next((a for a in found if a.get("id") == wanted), found[0] if found else {})
        chosen.append(pick.get("email_address"))
        status = (pick.get("verification") or {}).get("status")
        verified.append(None if not pick else "true" if status == "verified" else "false")
    m.put("email_addresses", "email", chosen)
    m.put("email_addresses.verification", "is_verified", verified)


def _metadata(m: Mapper, name: str, dest: str) -> None:
    """A metadata object: nested JSON (API export) or a JSON text cell (CSV)."""
    if not m.records.has(name):
        m.metadata(f"{name}.", dest=dest)
        return
    m.json_text_metadata(name, dest)


def recognise(keys: set[str], sample: dict[str, object]) -> str | None:
    """Why these fields are Clerk's, or None."""
    if {"primary_email_address", "verified_email_addresses"} <= keys or {
        "primary_email_address",
        "password_digest",
    } <= keys:
        return "primary_email_address with verified_email_addresses / password_digest columns"
    if "primary_email_address_id" in keys and "email_addresses" in keys:
        return "email_addresses with primary_email_address_id (Clerk's User objects)"
    return None
