"""Golden vectors of the event fingerprint recipe (``plabdata.events._validate`` +
``plabdata.events._fingerprint``).

A backfill journal remembers each event it sent by its fingerprint. These hex strings were
computed once with the recipe as it stands and are pinned here as literals: if any of them
changes, every journal written by an older plabdata stops matching its rows, and a re-run
sends those events to PluginLab a second time (PluginLab's events have no idempotency key).
Changing one is a breaking change of the journal format, never a test to update in passing.

Besides the vectors, the equivalences the recipe promises: one instant in any time zone, one
address in any spelling (case, spaces, Unicode or Punycode domain, NFC or NFD) and either
quota flag are one event; every other field tells events apart.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from plabdata.events._validate import validate_events

MEMBERS = pd.DataFrame(
    {
        "member_id": pd.array(["mem_ada", "mem_muenchen", "mem_jose"], dtype="string"),
        "email": pd.array(
            ["ada@example.com", "ü@xn--mnchen-3ya.de", "jose\u0301@example.com"], dtype="string"
        ),
    }
)
#: Marks a column the row does not have at all.
ABSENT = object()
BASE: dict[str, Any] = {
    "timestamp": "2026-10-01T10:00:00Z",
    "email": "ada@example.com",
    "event_source": "WEB_UI",
    "country_code": "US",
    "subdivision_code": "CA",
}

ADA = "d58c46c524f468d2a8b190ab251f4577"
MUENCHEN = "12c2c40d6dd8acf1e05ed65c40bb729b"
JOSE = "4dabf922e13355f5f0fd75369497c68f"
GOLDEN: dict[str, tuple[dict[str, Any], str]] = {
    "ascii-email": ({}, ADA),
    "upper-case-spaced-email-other-zone-lower-source-long-subdivision": (
        {
            "timestamp": "2026-10-01T12:00:00+02:00",
            "email": " ADA@Example.COM ",
            "event_source": "web_ui ",
            "country_code": "us",
            "subdivision_code": "US-CA",
        },
        ADA,
    ),
    "naive-timestamp-is-utc": ({"timestamp": "2026-10-01 10:00:00"}, ADA),
    "same-instant-in-new-york": ({"timestamp": "2026-10-01T06:00:00-04:00"}, ADA),
    "quota-flag-is-not-identity": ({"is_in_quota": "no"}, ADA),
    "one-millisecond-later": (
        {"timestamp": "2026-10-01T10:00:00.001Z"},
        "e8dc33379dfcb351a15d5ed497d86a9c",
    ),
    "idn-email-unicode-domain": (
        {"email": "ü@münchen.de", "country_code": "DE", "subdivision_code": "BY"},
        MUENCHEN,
    ),
    "idn-email-punycode-upper-case": (
        {"email": "Ü@XN--MNCHEN-3YA.DE", "country_code": "DE", "subdivision_code": "BY"},
        MUENCHEN,
    ),
    "nfc-email-no-location": (
        {"email": "jos\u00e9@example.com", "country_code": None, "subdivision_code": None},
        JOSE,
    ),
    "nfd-email-no-location": (
        {"email": "jose\u0301@example.com", "country_code": None, "subdivision_code": None},
        JOSE,
    ),
    "other-event-source": ({"event_source": "API"}, "e96760d61cc8a78fb45ae2b4285206db"),
    "no-location": (
        {"country_code": None, "subdivision_code": None},
        "16f66e88084cd4bf4822a55063e12157",
    ),
    "country-without-subdivision": (
        {"subdivision_code": None},
        "10de35cbe1f6486bea70cf67153731d7",
    ),
    "member-id-instead-of-email": (
        {"email": ABSENT, "member_id": "mem_ada"},
        "9172aa49509c469c47cce4b419cb6608",
    ),
    "no-timestamp-column": ({"timestamp": ABSENT}, "085913b614341650ab6e59e1104233ab"),
}


def _row(overrides: dict[str, Any]) -> dict[str, Any]:
    row = {**BASE, **overrides}
    return {name: value for name, value in row.items() if value is not ABSENT}


def _fingerprint(overrides: dict[str, Any]) -> str:
    """The fingerprint of one row, alone in its input (so without a ``#k`` ordinal)."""
    checked = validate_events(pd.DataFrame([_row(overrides)]), members=MEMBERS)
    assert checked["status"].tolist() == ["valid"], checked["problem"].tolist()
    return str(checked["fingerprint"].iloc[0])


@pytest.mark.parametrize(("overrides", "expected"), GOLDEN.values(), ids=list(GOLDEN))
def test_golden_fingerprints(overrides: dict[str, Any], expected: str) -> None:
    assert _fingerprint(overrides) == expected


def test_one_event_in_every_spelling_has_one_fingerprint() -> None:
    # The equivalences of the recipe, read from the table: each group is one event.
    groups: dict[str, set[str]] = {}
    for name, (overrides, _) in GOLDEN.items():
        groups.setdefault(_fingerprint(overrides), set()).add(name)
    assert sorted(map(sorted, groups.values())) == sorted(
        [
            [
                "ascii-email",
                "naive-timestamp-is-utc",
                "quota-flag-is-not-identity",
                "same-instant-in-new-york",
                "upper-case-spaced-email-other-zone-lower-source-long-subdivision",
            ],
            ["idn-email-punycode-upper-case", "idn-email-unicode-domain"],
            ["nfc-email-no-location", "nfd-email-no-location"],
            ["one-millisecond-later"],
            ["other-event-source"],
            ["no-location"],
            ["country-without-subdivision"],
            ["member-id-instead-of-email"],
            ["no-timestamp-column"],
        ]
    )


def test_repeats_in_one_input_get_ordinals_on_the_pinned_base() -> None:
    rows = [_row({}), _row({"email": "ADA@example.com"}), _row({"is_in_quota": "no"})]
    checked = validate_events(pd.DataFrame(rows), members=MEMBERS)
    assert checked["fingerprint"].tolist() == [ADA, f"{ADA}#1", f"{ADA}#2"]


def test_an_email_row_does_not_depend_on_the_members_frame() -> None:
    # The member part of an email row is its canonical email, not the member id it resolves
    # to: a re-run against a member base where the id changed (deleted and re-created)
    # still recognises what it sent.
    other = MEMBERS.assign(member_id=pd.array(["mem_new", "mem_m2", "mem_j2"], dtype="string"))
    checked = validate_events(pd.DataFrame([_row({})]), members=other)
    assert checked["member_id"].tolist() == ["mem_new"]
    assert checked["fingerprint"].tolist() == [ADA]
