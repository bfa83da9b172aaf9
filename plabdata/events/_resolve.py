"""Email → member resolution for event logs, through the one canonical email key.

A log's ``ü@münchen.de`` is the member stored as ``ü@xn--mnchen-3ya.de``; an NFD-composed
``josé@…`` is its NFC twin; case never matters. Both sides are compared through
:func:`plabdata.tables._keys.email_key` (NFC, IDNA → Unicode, lower-cased): the members
frame once per run, the log once per *distinct* email of a chunk — and the ASCII majority
of those in Arrow, without a Python call per value.

    >>> index = MemberIndex(members)
    >>> ids, ambiguous = index.resolve_emails(email_key_values(pa.array(["Ada@Example.com"])))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.errors import ValidationError
from plabdata.tables._keys import email_key, email_keys

__all__ = ["MemberIndex", "email_key_values"]


def email_key_values(values: pa.Array) -> pa.Array:
    """:func:`~plabdata.tables._keys.email_key` of each value (nulls stay null).

    ASCII values without punycode (``xn--``) are keyed in Arrow (trim, lower-case: all
    ``email_key`` does to them); the rest, usually a handful per chunk, call ``email_key``.

    Example:
        >>> email_key_values(pa.array([" Ada@X.io", "ü@XN--mnchen-3ya.de", None])).to_pylist()
        ['ada@x.io', 'ü@münchen.de', None]
    """
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    simple = pc.and_(
        pc.string_is_ascii(values),
        pc.invert(pc.match_substring(values, "xn--", ignore_case=True)),
    )
    keys = pc.ascii_lower(pc.utf8_trim_whitespace(values))
    rest = np.flatnonzero(~np.asarray(pc.fill_null(simple, True).to_numpy(zero_copy_only=False)))
    if not rest.size:
        return keys
    slow = [email_key(v) for v in values.take(pa.array(rest)).to_pylist()]
    texts = np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)
    texts[rest] = slow
    return pa.array(texts, pa.string())


class MemberIndex:
    """Email → member id lookups for a whole run, built once from a ``load_members`` frame.

    Emails are compared by their canonical key. Two members whose addresses share a key
    (``ü@münchen.de`` and ``ü@xn--mnchen-3ya.de`` stored as two accounts) make that email
    *ambiguous*: a log row with it is rejected rather than credited to either.

    Example:
        >>> index = MemberIndex(load_members(admin))
        >>> index.resolve_emails(email_key_values(pa.array(["ada@example.com"])))
    """

    def __init__(self, members: pd.DataFrame) -> None:
        if not {"member_id", "email"} <= set(members.columns):
            raise ValidationError("the members frame needs columns member_id and email")
        frame = pd.DataFrame(
            {
                "email": email_keys(members["email"]).to_numpy(),
                "member_id": members["member_id"].astype("string").to_numpy(),
            }
        ).dropna()
        frame = frame.drop_duplicates()
        shared = frame[frame["email"].duplicated(keep=False)]  # usually none at all
        #: Canonical keys shared by several members -> their ids, for messages.
        self.ambiguous: dict[str, str] = {
            str(key): ", ".join(sorted(group["member_id"]))
            for key, group in shared.groupby("email", sort=True)
        }
        frame = frame.drop_duplicates("email")
        self.emails = pa.array(frame["email"].tolist(), pa.string())
        self.email_ids = pa.array(frame["member_id"].tolist(), pa.string())
        self.ids = pa.array(members["member_id"].dropna().astype(str).tolist(), pa.string())
        self._ambiguous_keys = pa.array(sorted(self.ambiguous), pa.string())

    def __len__(self) -> int:
        return len(self.ids)

    def resolve_emails(self, keys: pa.Array) -> tuple[pa.Array, np.ndarray]:
        """(member ids for canonical email keys, null where unknown; mask of ambiguous keys)."""
        ids = self.email_ids.take(pc.index_in(keys, value_set=self.emails))
        ambiguous = np.zeros(len(keys), bool)
        if len(self._ambiguous_keys):
            hit = pc.is_in(keys, value_set=self._ambiguous_keys)
            ambiguous = np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False))
        return ids, ambiguous

    def owners(self, keys: pa.Array) -> pa.Array:
        """``'key' (mem_a, mem_b)`` per canonical key, naming the members sharing it."""
        texts = [f"{k!r} ({self.ambiguous.get(k, '')})" for k in keys.to_pylist()]
        return pa.array(texts, pa.string())

    def known_ids(self, ids: pa.Array) -> pa.Array:
        """True where the member id exists."""
        return pc.is_in(ids, value_set=self.ids)
