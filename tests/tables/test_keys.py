"""email_key / email_keys: one canonical key per address, wherever a sheet meets the base."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from plabdata.tables._keys import email_key, email_keys

NFD_JOSE = unicodedata.normalize("NFD", "josé@example.com")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        (" ada@example.com\t", "ada@example.com"),
        (NFD_JOSE, "josé@example.com"),
        ("ü@xn--mnchen-3ya.de", "ü@münchen.de"),
        ("ü@XN--MNCHEN-3YA.DE", "Ü@MÜNCHEN.de"),
        (unicodedata.normalize("NFD", "ü@xn--mnchen-3ya.de"), "ü@münchen.de"),
        ("a@ｅｘａｍｐｌｅ。com", "a@example.com"),  # full-width letters and full stop (UTS #46)
        ("a@ẞ.de", "a@ß.de"),
    ],
)
def test_two_spellings_of_one_address_share_a_key(one: str, other: str) -> None:
    assert email_key(one) == email_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # IDNA 2008 keeps ß: straße.de and strasse.de are two domains, so two members.
        ("a@straße.de", "a@strasse.de"),
        ("straße@example.com", "strasse@example.com"),
        ("a@example.com", "b@example.com"),
        ("a@example.com", "a@example.org"),
    ],
)
def test_different_addresses_keep_different_keys(one: str, other: str) -> None:
    assert email_key(one) != email_key(other)


def test_the_key_is_unicode_nfc_and_lower_case() -> None:
    key = email_key(" JOSE\u0301@XN--Mnchen-3ya.DE ")
    assert key == "josé@münchen.de"
    assert unicodedata.is_normalized("NFC", key)


@pytest.mark.parametrize("odd", ["not-an-email", "a@xn--zz.com", "a@exa_mple.com", "a@b..c", "@"])
def test_odd_text_is_keyed_as_written_not_raised(odd: str) -> None:
    assert email_key(odd) == odd.lower()


def test_email_keys_keeps_index_and_missing_values() -> None:
    series = pd.Series(["A@x.io", None, 3, "ü@xn--mnchen-3ya.de"], index=[5, 6, 7, 8])
    keys = email_keys(series)
    assert keys.dtype == "string" and keys.index.tolist() == [5, 6, 7, 8]
    assert keys.tolist() == ["a@x.io", pd.NA, pd.NA, "ü@münchen.de"]
    assert email_keys(["B@x.io"]).tolist() == ["b@x.io"]
