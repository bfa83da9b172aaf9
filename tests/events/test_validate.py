"""validate_events: per-row reasons, member resolution, fingerprints, quota impact (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from plabdata.errors import ValidationError
from plabdata.events._resolve import email_key_values
from plabdata.events._validate import UPLOAD_TIME_NOTE, quota_impact, validate_events
from plabdata.tables._keys import email_key

MEMBERS = pd.DataFrame(
    {
        "member_id": pd.array(["mem_ada", "mem_bob"], dtype="string"),
        "email": pd.array(["ada@example.com", "Bob@Example.com"], dtype="string"),
    }
)


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "timestamp": "2026-10-01T10:00:00Z",
        "email": "ada@example.com",
        "event_source": "web_ui",
        "country_code": "US",
        "subdivision_code": "CA",
        "is_in_quota": "yes",
    }
    row.update(overrides)
    return row


def _check(rows: list[dict[str, object]], **options: object) -> pd.DataFrame:
    return validate_events(pd.DataFrame(rows), members=MEMBERS, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"event_source": "ABCDEFGHIJK"}, "event source 'ABCDEFGHIJK' is longer than 10"),
        ({"event_source": "  "}, "blank event source"),
        ({"country_code": "XX"}, "unknown country code 'XX'"),
        ({"subdivision_code": "ZZ"}, "unknown subdivision 'US-ZZ'"),
        ({"subdivision_code": "GB-ENG"}, "subdivision 'GB-ENG' is not in that country"),
        ({"country_code": "", "subdivision_code": "CA"}, "subdivision 'CA' without a country"),
        ({"email": "nobody@example.com"}, "unknown email 'nobody@example.com'"),
        ({"email": ""}, "blank email / member id"),
        ({"timestamp": "last tuesday-ish"}, "unparsable timestamp 'last tuesday-ish'"),
        ({"timestamp": ""}, "blank timestamp"),
        ({"is_in_quota": "maybe"}, "is_in_quota 'maybe' is not yes/no/true/false/1/0"),
    ],
)
def test_each_bad_value_gets_its_reason_and_never_stops_valid_rows(
    overrides: dict[str, object], problem: str
) -> None:
    checked = _check([_row(), _row(**overrides), _row(timestamp="2026-10-02T00:00:00Z")])
    assert checked["status"].tolist() == ["valid", "invalid", "valid"]
    assert checked["row"].tolist() == [2, 3, 4]
    assert problem in checked["problem"].iloc[1]
    assert checked["fingerprint"].isna().tolist() == [False, True, False]


def test_normalisation_and_resolution() -> None:
    checked = _check(
        [
            _row(
                email=" BOB@example.COM ",
                event_source="api",
                country_code="us",
                subdivision_code="us-ny",
                is_in_quota="No",
            ),
            _row(email=None, member_id="mem_ada", is_in_quota="1"),
            _row(country_code=None, subdivision_code=None, is_in_quota=None),
        ]
    )
    assert checked["status"].tolist() == ["valid"] * 3
    assert checked["member_id"].tolist() == ["mem_bob", "mem_ada", "mem_ada"]
    assert checked["event_source"].tolist() == ["API", "WEB_UI", "WEB_UI"]
    assert checked["subdivision_code"].tolist()[:2] == ["NY", "CA"]  # PluginLab's short form
    assert checked["country_code"].isna().tolist() == [False, False, True]
    assert checked["is_in_quota"].tolist() == [False, True, True]  # blank: the default, true
    assert str(checked["timestamp"].dtype) == "datetime64[ms, UTC]"


def test_a_run_level_quota_flag_overrides_the_column() -> None:
    checked = _check([_row(is_in_quota="maybe"), _row(is_in_quota="yes")], in_quota=False)
    assert checked["status"].tolist() == ["valid", "valid"]
    assert checked["is_in_quota"].tolist() == [False, False]


def test_timestamps_in_many_shapes_are_parsed_timezone_aware() -> None:
    stamps = ["2026-10-01T12:00:00+02:00", "2026-10-01 10:00:00", "2026-10-01T10:00:00.000Z"]
    checked = _check([_row(timestamp=t) for t in stamps])
    assert checked["status"].tolist() == ["valid"] * 3
    assert set(checked["timestamp"]) == {pd.Timestamp("2026-10-01T10:00:00Z")}


def test_unknown_members_can_be_sent_anonymously() -> None:
    rows = [_row(email="nobody@example.com"), _row(email=""), _row(member_id="mem_gone", email="")]
    checked = _check(rows, unknown_member="anonymous")
    assert checked["status"].tolist() == ["valid"] * 3
    assert checked["member_id"].isna().all()


def test_since_and_until_filter_rows_without_invalidating_them() -> None:
    stamps = ["2026-09-30T23:59:59Z", "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"]
    checked = _check([_row(timestamp=t) for t in stamps], since="2026-10-01", until="2026-10-02")
    assert checked["status"].tolist() == ["filtered", "valid", "filtered"]
    assert "before since" in checked["problem"].iloc[0]
    with pytest.raises(ValidationError, match="since/until need a timestamp column"):
        validate_events(
            pd.DataFrame([_row()]).drop(columns="timestamp"), members=MEMBERS, since="2026-10-01"
        )


def test_whole_input_problems() -> None:
    no_source = pd.DataFrame([_row()]).drop(columns="event_source")
    with pytest.raises(ValidationError, match="no event source column"):
        validate_events(no_source, members=MEMBERS)
    assert (
        validate_events(no_source, members=MEMBERS, source_name="web")["event_source"][0] == "WEB"
    )
    no_member = pd.DataFrame([_row()]).drop(columns="email")
    with pytest.raises(ValidationError, match="no email or member_id column"):
        validate_events(no_member, members=MEMBERS)
    with pytest.raises(ValidationError, match="emails need the members frame"):
        validate_events(pd.DataFrame([_row()]))
    with pytest.raises(ValidationError, match="1 to 10 characters"):
        validate_events(no_source, members=MEMBERS, source_name="WAY_TOO_LONG")


def test_fingerprints_are_deterministic_with_ordinals_among_identical_rows() -> None:
    rows = [_row(), _row(), _row(is_in_quota="no"), _row(timestamp="2026-10-01T10:00:00.001Z")]
    checked = _check(rows)
    fingerprints = checked["fingerprint"].tolist()
    base = fingerprints[0]
    # Identical events get ordinals; the quota flag is not part of an event's identity.
    assert fingerprints[:3] == [base, f"{base}#1", f"{base}#2"]
    assert fingerprints[3] != base and len(base) == 32
    # Case, spacing and the member's email-vs-id spelling do not change the fingerprint...
    again = _check([_row(email=" ADA@example.com", event_source="WEB_UI ")])
    assert again["fingerprint"][0] == base
    # ...and it is pinned: a change here would make every journal forget what it sent.
    assert base == "d58c46c524f468d2a8b190ab251f4577"


def test_fingerprints_do_not_depend_on_chunking(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        [
            _row(timestamp=f"2026-10-01T10:00:{int(s):02d}Z", email=e)
            for s, e in zip(
                rng.integers(0, 5, 400),
                rng.choice(["ada@example.com", "bob@example.com"], 400),
                strict=True,
            )
        ]
    )
    whole = validate_events(frame, members=MEMBERS)["fingerprint"]
    chunked = validate_events(frame, members=MEMBERS, chunk_rows=7)["fingerprint"]
    assert whole.tolist() == chunked.tolist()
    assert whole.is_unique
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    assert validate_events(path, members=MEMBERS, chunk_rows=50)["fingerprint"].tolist() == (
        whole.tolist()
    )


def test_a_row_repeated_in_a_later_input_of_the_same_run_is_a_duplicate(tmp_path: Path) -> None:
    first = pd.DataFrame([_row(), _row(timestamp="2026-10-02T00:00:00Z")])
    second = pd.DataFrame([_row(timestamp="2026-10-02T00:00:00Z"), _row(timestamp="2026-10-03")])
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    checked = validate_events(tmp_path, members=MEMBERS)
    assert checked["status"].tolist() == ["valid", "valid", "duplicate", "valid"]


def test_quota_impact_flags_members_pushed_over() -> None:
    per_member = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d"],
            "events": [5, 5, 50, 1],
            "in_quota_events": [5, 5, 50, 0],
        }
    )
    quota = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d"],
            "usage_count": [90, 98, 10, 0],
            "usage_limit": [100, 100, 0, 100],
            "is_unlimited": [False, False, True, False],
            "interval": ["month"] * 4,
        }
    )
    impact = quota_impact(per_member, quota).set_index("member_id")
    assert impact.loc["b", "pushed_over_limit"] and impact.loc["b", "usage_after"] == 103
    assert not impact.loc["a", "pushed_over_limit"]
    assert not impact.loc["c", "pushed_over_limit"]  # unlimited
    assert "d" not in impact.index  # nothing counts toward quota
    assert impact.index[0] == "b"
    assert "upload" in UPLOAD_TIME_NOTE and "not at the time" in UPLOAD_TIME_NOTE


# -------------------------------------------------------------------------- canonical emails


SPELLINGS = {
    "mem_muenchen": (
        "ü@xn--mnchen-3ya.de",
        ["ü@münchen.de", "Ü@MÜNCHEN.DE", "ü@XN--MNCHEN-3YA.DE"],
    ),
    "mem_jose": ("jose\u0301@example.com", ["jos\u00e9@example.com", "JOSÉ@Example.com "]),
}


def test_emails_resolve_through_one_canonical_key() -> None:
    members = pd.DataFrame(
        {"member_id": list(SPELLINGS), "email": [stored for stored, _ in SPELLINGS.values()]}
    )
    rows = [
        _row(email=spelling, subdivision_code=None, country_code=None)
        for stored, spellings in SPELLINGS.values()
        for spelling in [stored, *spellings]
    ]
    checked = validate_events(pd.DataFrame(rows), members=members)
    assert checked["status"].tolist() == ["valid"] * 7
    assert checked["member_id"].tolist() == ["mem_muenchen"] * 4 + ["mem_jose"] * 3
    # Every spelling of one member's event is the same event: one fingerprint, then ordinals.
    base = checked["fingerprint"].iloc[0]
    assert checked["fingerprint"].iloc[:4].tolist() == [base, f"{base}#1", f"{base}#2", f"{base}#3"]
    assert checked["email"].iloc[:4].nunique() == 1


def test_an_email_two_members_share_is_rejected_not_guessed() -> None:
    members = pd.DataFrame(
        {"member_id": ["mem_a", "mem_b", "mem_ada"],
         "email": ["ü@münchen.de", "ü@xn--mnchen-3ya.de", "ada@example.com"]}
    )  # fmt: skip
    checked = validate_events(
        pd.DataFrame([_row(email="Ü@münchen.de"), _row(), _row(email="", member_id="mem_a")]),
        members=members,
    )
    assert checked["status"].tolist() == ["invalid", "valid", "valid"]
    assert "belongs to several members" in checked["problem"].iloc[0]
    assert "mem_a, mem_b" in checked["problem"].iloc[0]


def test_email_keys_are_computed_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from plabdata.events import _resolve

    calls: list[str] = []

    def counting(email: str) -> str:
        calls.append(email)
        return email_key(email)

    monkeypatch.setattr(_resolve, "email_key", counting)
    members = pd.DataFrame(
        {"member_id": ["mem_z", "mem_ada"], "email": ["zoë@x.io", "ada@example.com"]}
    )
    emails = ["zoë@x.io", "ZOË@x.io", "ada@example.com", "Ada@Example.com"] * 2_500
    frame = pd.DataFrame([_row(email=e, subdivision_code=None) for e in emails])
    checked = validate_events(frame, members=members, chunk_rows=5_000)
    assert checked["member_id"].tolist() == ["mem_z", "mem_z", "mem_ada", "mem_ada"] * 2_500
    # Two chunks, two distinct non-ASCII spellings each; ASCII ones never call Python.
    assert sorted(calls) == sorted(["zoë@x.io", "ZOË@x.io"] * 2)


@pytest.mark.parametrize(
    "email",
    [" Ada@Example.COM ", "ü@XN--mnchen-3ya.de", "jose\u0301@EXAMPLE.com", "ÅSA@ÖRE.SE",
     "plain@xn--bcher-kva.ch", "x@ｅxample。com", "no-at-sign", "Straße@x.de"],
)  # fmt: skip
def test_the_vectorised_key_is_email_key(email: str) -> None:
    assert email_key_values(pa.array([email])).to_pylist() == [email_key(email)]
