"""Firebase: ``firebase auth:export`` as JSON (``{"users": […]}``) or header-less CSV.

Fields, from the CLI's own exporter (``firebase-tools`` ``src/accountExporter.ts``) and the
``auth:import`` file format page: ``localId``, ``email``, ``emailVerified``, ``passwordHash``,
``salt``, ``displayName``, ``photoUrl``, ``createdAt`` and ``lastSignedInAt`` (milliseconds
since 1970, as text), ``phoneNumber``, ``disabled``, ``customAttributes`` (the custom claims,
a JSON object *as text*) and ``providerUserInfo[]`` (``providerId``: ``google.com``,
``facebook.com``, ``twitter.com``, ``github.com`` — the only ones the CLI writes).

The CSV has no header; its columns, by position, are :data:`CSV_COLUMNS`. The CLI writes
``passwordHash`` only for accounts hashed with the project's scrypt settings.
"""

from __future__ import annotations

from collections.abc import Iterator

from plabdata.members._readers import SheetSource
from plabdata.members._sources._common import Mapper
from plabdata.members._sources._files import (
    Records,
    Sniffed,
    read_headerless_csv,
    read_json_document,
    read_ndjson,
)

NAME = "firebase"
TITLE = "Firebase Authentication"
_PROVIDERS = ("Google", "Facebook", "Twitter", "GitHub")
#: The header-less CSV's columns, in ``accountExporter.ts``'s order (positions 1–28).
CSV_COLUMNS = (
    "UID",
    "Email",
    "Email Verified",
    "Password Hash",
    "Password Salt",
    "Name",
    "Photo URL",
    *(f"{p} {f}" for p in _PROVIDERS for f in ("ID", "Email", "Display Name", "Photo URL")),
    "User Creation Time",
    "Last Sign-In Time",
    "Phone Number",
    "Disabled",
    "Custom Attributes",
)


def read(source: SheetSource, sniffed: Sniffed) -> Iterator[Records]:
    """The export's users (the JSON is one document; the CSV has no header)."""
    if sniffed.kind == "json":
        yield read_json_document(source)
    elif sniffed.kind == "ndjson":
        yield from read_ndjson(source)
    else:
        yield read_headerless_csv(source, CSV_COLUMNS)


def mapper(records: Records) -> Mapper:
    """The sheet columns of one block of Firebase users."""
    csv = records.has("UID")
    m = Mapper(records, NAME)
    m.user_id("UID" if csv else "localId")
    m.created_at("User Creation Time" if csv else "createdAt", unit="ms")
    m.text("Email" if csv else "email", "email")
    m.verified("Email Verified" if csv else "emailVerified")
    m.text("Name" if csv else "displayName", "name")
    m.text("Photo URL" if csv else "photoUrl", "picture_url")
    m.password_hash("Password Hash" if csv else "passwordHash")
    m.take("Password Salt" if csv else "salt")  # read, never kept
    if csv:
        for provider in _PROVIDERS:
            values = m.take(f"{provider} ID")
            if values is not None:
                m.had_social |= values.notna().to_numpy()
    elif records.has("providerUserInfo"):
        m.used.add("providerUserInfo")
        m.had_social |= records.list_any(
            "providerUserInfo", "providerId", lambda v: isinstance(v, str) and v != "password"
        )
    m.json_text_metadata(
        "Custom Attributes" if csv else "customAttributes",
        "app.",
        what="custom claims that are not a JSON object: left out",
    )
    return m


def recognise(keys: set[str], sample: dict[str, object]) -> str | None:
    """Why these fields are Firebase's, or None."""
    if "localId" in keys:
        return "localId fields (firebase auth:export JSON)"
    return None


def recognise_csv(first_line: list[str]) -> str | None:
    """A header-less CSV line shaped like ``auth:export``'s (≥ 23 fields, a yes/no third)."""
    if len(first_line) >= 23 and first_line[2].strip().lower() in ("true", "false"):
        return f"a header-less CSV of {len(first_line)} fields with emailVerified third"
    return None
