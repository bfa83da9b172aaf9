"""One canonical key per email, used wherever a sheet or a log meets the live member base.

Two spellings of one address must be one member: ``Ada@Example.COM``, ``ada@example.com``,
an NFD-composed ``josé@…`` and its NFC twin, ``ü@xn--mnchen-3ya.de`` and ``ü@münchen.de``.
The key is the address trimmed, NFC-normalised, with its domain decoded from IDNA (punycode)
to Unicode, then case-folded. It is a *comparison* key: what is sent to PluginLab is still
the address as the sheet spells it.

    >>> email_key(" Ada@XN--Mnchen-3ya.DE ")
    'ada@münchen.de'
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterable

import idna
import pandas as pd

__all__ = ["email_key", "email_keys"]


def _domain_to_unicode(domain: str) -> str:
    labels = []
    for label in domain.split("."):
        if label[:4].lower() == "xn--":
            try:
                label = idna.decode(label)
            except idna.IDNAError:
                # IDNA 2003's looser rules, else not punycode at all: compare it as written.
                with contextlib.suppress(UnicodeError):
                    label = label.encode("ascii").decode("idna")
        labels.append(label)
    return ".".join(labels)


def email_key(email: str) -> str:
    """The canonical comparison key of one email address.

    Example:
        >>> email_key("JOSE\\u0301@example.com") == email_key("jos\\u00e9@EXAMPLE.com")
        True
    """
    text = unicodedata.normalize("NFC", email.strip())
    local, at, domain = text.rpartition("@")
    if at:
        text = f"{local}@{unicodedata.normalize('NFC', _domain_to_unicode(domain))}"
    return text.casefold()


def email_keys(emails: pd.Series | Iterable[object]) -> pd.Series:
    """:func:`email_key` of each value (``string`` dtype; missing and non-text stay NA).

    Each distinct value is keyed once, so a column of 100,000 emails costs one pass over
    its unique values.

    Example:
        >>> email_keys(pd.Series(["A@x.io", None])).tolist()
        ['a@x.io', <NA>]
    """
    series = emails if isinstance(emails, pd.Series) else pd.Series(list(emails), dtype=object)
    text = series.astype(object)
    uniques = {v for v in text.dropna().unique() if isinstance(v, str)}
    keys = {v: email_key(v) for v in uniques}
    return pd.Series(
        [keys.get(v) if isinstance(v, str) else None for v in text],
        index=series.index,
        dtype="string",
    )
