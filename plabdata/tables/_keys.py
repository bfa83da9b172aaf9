"""One canonical key per email, used wherever a sheet or a log meets the live member base.

Two spellings of one address must be one member: ``Ada@Example.COM``, ``ada@example.com``,
an NFD-composed ``josé@…`` and its NFC twin, ``ü@xn--mnchen-3ya.de`` and ``ü@münchen.de``,
a full-width ``ｅxample。com`` and ``example.com``. The key is the address trimmed and
NFC-normalised, with its domain mapped the way IDNA 2008 (UTS #46) maps a domain a person
typed and decoded from punycode to Unicode, then lower-cased. It is a *comparison* key: what
is sent to PluginLab is still the address as the sheet spells it.

Why lower-case and not ``str.casefold``: case folding also maps ``ß`` to ``ss`` (and ``ς`` to
``σ``), yet ``straße.de`` and ``strasse.de`` are two domains under IDNA 2008, and PluginLab
(like the emulator) tells members apart by their lower-cased address — folding would make two
real members one.

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


def _label_to_unicode(label: str) -> str:
    if label[:4] != "xn--":
        return label
    try:
        return str(idna.decode(label))
    except idna.IDNAError:
        # IDNA 2003's looser rules, else not punycode at all: compare it as written.
        with contextlib.suppress(UnicodeError):
            return label.encode("ascii").decode("idna")
    return label


def _domain_to_unicode(domain: str) -> str:
    # UTS #46 mapping first (case, full-width letters, ideographic full stops), so that what
    # email_validator does to a sheet's address is done to the stored one too.
    with contextlib.suppress(idna.IDNAError, UnicodeError):
        domain = idna.uts46_remap(domain, std3_rules=False, transitional=False)
    return ".".join(_label_to_unicode(label) for label in domain.lower().split("."))


def email_key(email: str) -> str:
    """The canonical comparison key of one email address.

    Example:
        >>> email_key("JOSE\\u0301@example.com") == email_key("jos\\u00e9@EXAMPLE.com")
        True
    """
    text = email.strip()
    if text.isascii() and "xn--" not in text.lower():
        return text.lower()  # the common case, and what every step below does to it
    text = unicodedata.normalize("NFC", text)
    local, at, domain = text.rpartition("@")
    if at:
        text = f"{local.lower()}@{_domain_to_unicode(domain)}"
    return unicodedata.normalize("NFC", text.lower())


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
