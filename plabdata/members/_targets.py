"""What an op's member must look like: the PATCH still needed, and why a member read back
does not match (pure functions of a member and the op's target fields).

    >>> patch_for(member, {"name": "Ada"})
    {'name': 'Ada'}
"""

from __future__ import annotations

from typing import Any

from plabdata.client._records import Member
from plabdata.members._sheet_checks import TEXT_FIELDS


def merged_metadata(target: dict[str, Any], current: dict[str, str]) -> dict[str, str]:
    """The member's map with the target's ``metadata.<key>`` values merged in (None removes)."""
    merged = dict(current)
    for name, value in target.items():
        if name.startswith("metadata."):
            key = name[len("metadata.") :]
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = str(value)
    return merged


def patch_for(member: Member, target: dict[str, Any]) -> dict[str, Any]:
    """The PATCH fields still needed to bring ``member`` to ``target`` (empty when it matches)."""
    patch = {
        f: target[f]
        for f in TEXT_FIELDS
        if f in target and blank(getattr(member, f)) != blank(target[f])
    }
    merged = merged_metadata(target, member.metadata)
    if {k: v for k, v in merged.items() if v != ""} != {
        k: v for k, v in member.metadata.items() if v != ""
    }:
        patch["metadata"] = merged
    return patch


def mismatch(member: Member | None, kind: str, target: dict[str, Any]) -> str | None:
    """Why ``member`` does not match the ``kind`` op's ``target``, or None when it does."""
    if kind == "delete":
        return None if member is None else "still exists after the delete"
    if member is None:
        return "not found when read back"
    wrong = [
        f"{f}={getattr(member, f)!r} (expected {target[f]!r})"
        for f in TEXT_FIELDS
        if f in target and blank(getattr(member, f)) != blank(target[f])
    ]
    for name, value in target.items():
        if name.startswith("metadata.") and blank(member.metadata.get(name[9:])) != blank(value):
            wrong.append(f"{name}={member.metadata.get(name[9:])!r} (expected {value!r})")
    verified = target.get("is_verified")
    if kind == "create" and verified is not None and member.is_verified != bool(verified):
        wrong.append(f"is_verified={member.is_verified} (expected {bool(verified)})")
    return "; ".join(wrong) or None


def blank(value: Any) -> Any:
    return None if value is None or value == "" else value
