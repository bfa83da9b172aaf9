"""Auth0: the user export job (NDJSON or CSV), the bulk-import JSON, the password-hash export.

Fields (Auth0's "User Profile Structure", "Bulk User Exports", "Bulk User Import Database
Schema" and "How to Use the Password Hashes Export"; links in ``docs/migrations.md``):
``email``, ``email_verified``, ``given_name``, ``family_name``, ``name``, ``picture``,
``user_id``, ``created_at``, ``username``, ``identities[]`` (``provider``, ``isSocial``),
``user_metadata``, ``app_metadata``; hashes in ``passwordHash`` (support export),
``password_hash`` / ``custom_password_hash`` (import schema). The support export has no
``user_id``: it is ``auth0|`` + ``alt_id``, else ``auth0|`` + ``_id.$oid``.

Auth0's CSV puts a ``'`` before every text cell (its CSV-injection guard); it is removed.
Auth0 fills ``name`` with the email when the user gave none: such a name is left out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from plabdata.members._readers import SheetSource
from plabdata.members._sources._common import IS_TRUE, Mapper, any_of
from plabdata.members._sources._files import (
    Records,
    Sniffed,
    read_csv_export,
    read_json_document,
    read_ndjson,
)

NAME = "auth0"
TITLE = "Auth0"
#: Identity providers of Auth0 database (password) connections.
_PASSWORD_PROVIDERS = {"auth0"}


def read(source: SheetSource, sniffed: Sniffed) -> Iterator[Records]:
    """The export's users, block by block."""
    if sniffed.kind == "ndjson":
        yield from read_ndjson(source)
    elif sniffed.kind == "json":
        yield read_json_document(source)
    else:
        yield read_csv_export(
            source, lambda h: h.strip("'\" ").lower() == "email", strip_quote=True
        )


def mapper(records: Records) -> Mapper:
    """The sheet columns of one block of Auth0 users."""
    m = Mapper(records, NAME)
    if records.has("user_id"):
        m.user_id("user_id")
    else:
        m.user_id(m.first("alt_id", "_id.$oid") or "user_id", prefix="auth0|")
    m.created_at("created_at")
    m.text("email", "email")
    m.verified("email_verified")
    m.text("given_name", "given_name")
    m.text("family_name", "family_name")
    m.text("picture", "picture_url")
    names = m.take("name")
    if names is not None:
        kept = names.to_numpy(dtype=object).copy()
        kept[kept == records.values("email").to_numpy(dtype=object)] = None
        m.put("name", "name", kept)
    username = m.take("username")
    if username is not None:
        m.meta_value("username", "metadata.username", username)
    m.password_hash(
        "passwordHash", "password_hash", "custom_password_hash.hash.value", "custom_password_hash"
    )
    for name in records.names:  # the import schema's hash object, flattened
        if name.startswith("custom_password_hash."):
            m.password_hash(name)
    m.metadata("user_metadata.")
    m.metadata("app_metadata.", dest="app.")
    if records.has("identities"):
        m.used.add("identities")
        m.had_password |= records.list_any("identities", "provider", any_of(_PASSWORD_PROVIDERS))
        m.had_social |= records.list_any("identities", "isSocial", IS_TRUE)
    for column in ("identities[0].provider", "identities[0].connection", "provider"):
        values = m.take(column)  # a CSV export names the first identity's provider
        if values is not None:
            items = values.tolist()
            m.had_password |= np.array([v in _PASSWORD_PROVIDERS for v in items], dtype=bool)
            social = [isinstance(v, str) and v not in _PASSWORD_PROVIDERS for v in items]
            m.had_social |= np.array(social, dtype=bool)
    return m


def recognise(keys: set[str], sample: dict[str, object]) -> str | None:
    """Why these fields are Auth0's, or None."""
    user_id = sample.get("user_id")
    if isinstance(user_id, str) and "|" in user_id and "email" in keys:
        return f"user_id values like {user_id.split('|')[0]!r}|… and an email field"
    if "identities" in keys and "email_verified" in keys:
        return "identities and email_verified fields"
    if "_id.$oid" in keys and "passwordHash" in keys:
        return "_id.$oid and passwordHash fields (Auth0's password-hash export)"
    if any(k.startswith(("user_metadata.", "app_metadata.")) for k in keys) and "user_id" in keys:
        return "user_id with user_metadata / app_metadata fields"
    return None
