"""Memberstack: the members CSV export, or Admin REST API member objects (JSON).

Thin sources (see ``docs/migrations.md``): Memberstack documents its import CSV — *Email
Address*, *Password* or *Hashed Password*, *Member ID*, a column per custom field, *Free Plan
ID(s)*, *Login Redirect*, *JSON*, *Metadata*, *Stripe Customer ID* — and says a 1.0 export has
those columns; the Admin REST API documents the member object: ``id``, ``auth.email``,
``createdAt``, ``customFields``, ``metaData``, ``loginRedirect``, ``planConnections[]``
(``planId``, ``status``). Headers are matched loosely (``Member ID`` = ``member_id`` =
``id``); any other CSV column is taken as a custom field.

Custom fields → ``metadata.<key>`` (``first-name``/``firstName`` and ``last-name``/
``lastName`` → names); ``metaData`` → ``metadata.app.<key>``; plans → ``metadata.plans``
(plan ids, comma-separated); ``Stripe Customer ID`` → ``metadata.stripe_customer_id``;
``Login Redirect`` → ``metadata.login_redirect``.
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

NAME = "memberstack"
TITLE = "Memberstack"
_CSV_FIELDS = {
    "memberid": "id",
    "id": "id",
    "email": "email",
    "emailaddress": "email",
    "authemail": "email",
    "verified": "verified",
    "createdat": "created",
    "signupdate": "created",
    "plans": "plans",
    "planconnections": "plans",
    "freeplanids": "plans",
    "freeplanid": "plans",
    "hashedpassword": "hash",
    "password": "hash",
    "loginredirect": "redirect",
    "metadata": "metadata",
    "json": "json",
    "stripecustomerid": "stripe",
    "stripesubscriptionid": "skip",
    "lastlogin": "skip",
    "profileimage": "picture",
}
_GIVEN = ("first-name", "firstName", "first_name", "First Name")
_FAMILY = ("last-name", "lastName", "last_name", "Last Name")


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def read(source: SheetSource, sniffed: Sniffed) -> Iterator[Records]:
    """The export's users."""
    if sniffed.kind == "csv":
        yield read_csv_export(source, lambda h: _CSV_FIELDS.get(_key(h)) == "email")
    elif sniffed.kind == "ndjson":
        yield from read_ndjson(source)
    else:
        yield read_json_document(source)


def mapper(records: Records) -> Mapper:
    """The sheet columns of one block of Memberstack members."""
    m = Mapper(records, NAME)
    if records.has("auth.email") or records.has("customFields") or _api_shape(records):
        _api(m)
    else:
        _csv(m)
    return m


def _api_shape(records: Records) -> bool:
    return any(n.startswith(("customFields.", "metaData.", "auth.")) for n in records.names)


def _api(m: Mapper) -> None:
    m.user_id("id")
    m.created_at("createdAt")
    m.text("auth.email", "email")
    m.verified("verified")
    m.text("profileImage", "picture_url")
    for targets, field in ((_GIVEN, "given_name"), (_FAMILY, "family_name")):
        path = m.first(*(f"customFields.{k}" for k in targets))
        if path:
            m.text(path, field)
    m.metadata("customFields.")
    m.metadata("metaData.", dest="app.")
    redirect = m.take("loginRedirect")
    if redirect is not None:
        m.meta_value("loginRedirect", "metadata.login_redirect", redirect)
    plans = m.take("planConnections")
    if plans is not None:
        ids = [_plan_ids(p) for p in plans.tolist()]
        m.put("planConnections", "metadata.plans", ids)
    has_password = m.take("auth.hasPassword")
    if has_password is not None:
        m.had_password |= has_password.map(lambda v: v is True).to_numpy()
    if m.records.has("auth.providers"):
        m.used.add("auth.providers")
        m.had_social |= m.records.list_any("auth.providers", "provider", lambda v: bool(v))
    m.take("json")


def _plan_ids(connections: Any) -> str | None:
    if not isinstance(connections, list):
        return None
    ids = [
        c.get("planId")
        for c in connections
        if isinstance(c, dict) and c.get("planId") and c.get("status", "ACTIVE") == "ACTIVE"
    ]
    return ",".join(str(i) for i in ids) or None


def _csv(m: Mapper) -> None:
    by_role: dict[str, str] = {}
    for name in m.records.names:
        role = _CSV_FIELDS.get(_key(name))
        if role and role not in by_role:
            by_role[role] = name
    if "id" in by_role:
        m.user_id(by_role["id"])
    if "created" in by_role:
        m.created_at(by_role["created"])
    if "email" in by_role:
        m.text(by_role["email"], "email")
    if "verified" in by_role:
        m.verified(by_role["verified"])
    if "picture" in by_role:
        m.text(by_role["picture"], "picture_url")
    if "hash" in by_role:
        m.password_hash(by_role["hash"])
    for role, target in (
        ("plans", "metadata.plans"),
        ("redirect", "metadata.login_redirect"),
        ("stripe", "metadata.stripe_customer_id"),
    ):
        if role in by_role:
            values = m.take(by_role[role])
            assert values is not None
            if role == "plans":
                values = values.map(_plan_text)
            m.meta_value(by_role[role], target, values)
    if "metadata" in by_role:
        m.json_text_metadata(by_role["metadata"], "app.")
    for role in ("json", "skip"):
        if role in by_role:
            m.take(by_role[role])
    for targets, field in ((_GIVEN, "given_name"), (_FAMILY, "family_name")):
        path = m.first(*targets, *(f"customFields.{k}" for k in targets))
        if path:
            m.text(path, field)
    for name in m.records.names:  # any other column is a custom field
        if name not in m.used and not _CSV_FIELDS.get(_key(name)):
            key = name.removeprefix("customFields.")
            m.used.add(name)
            m.meta_value(name, f"metadata.{key}", m.records.values(name))


def _plan_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return ",".join(p.strip() for p in value.split(",") if p.strip()) or None


def recognise(keys: set[str], sample: dict[str, object]) -> str | None:
    """Why these fields are Memberstack's, or None."""
    if "auth.email" in keys and (
        {"planConnections", "loginRedirect"} & keys
        or any(k.startswith(("customFields.", "metaData.")) for k in keys)
    ):
        return "auth.email with customFields / metaData / planConnections (Admin API members)"
    roles = {_CSV_FIELDS.get(_key(k)) for k in keys}
    if "id" in roles and "email" in roles and roles & {"plans", "hash", "redirect", "stripe"}:
        member_id = sample.get(next((k for k in keys if _CSV_FIELDS.get(_key(k)) == "id"), ""))
        if isinstance(member_id, str) and member_id.startswith("mem_"):
            return f"Member ID values like 'mem_…' with {_named(keys)} columns"
        if any(_key(k) in ("memberid", "hashedpassword", "freeplanids") for k in keys):
            return f"Member ID with {_named(keys)} columns"
    return None


def _named(keys: set[str]) -> str:
    wanted = ("plans", "hash", "redirect", "stripe")
    return ", ".join(sorted(k for k in keys if _CSV_FIELDS.get(_key(k)) in wanted))
