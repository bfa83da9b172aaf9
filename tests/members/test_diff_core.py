"""The diff core (``plabdata.members._diff``) on its own: frames in, frames out, no HTTP.

``tests/members/test_plan.py`` checks :func:`plan_member_changes` as a whole; here each piece
the planner is built from — ``normalise``, ``match_rows`` / ``match_members``, the
``Builder``'s creates / updates / deletes, ``check_one_op_per_member`` — is driven directly.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pytest

from plabdata.client._records import Member
from plabdata.errors import PlanError
from plabdata.members._diff import (
    CHANGE_COLUMNS,
    OP_COLUMNS,
    Builder,
    check_one_op_per_member,
    match_members,
    match_rows,
    normalise,
    settable,
    typed,
)
from plabdata.members._plan import plan_member_changes
from plabdata.tables._frames import members_frame

NFD_JOSE = unicodedata.normalize("NFD", "josé@example.com")
NFC_JOSE = unicodedata.normalize("NFC", "josé@example.com")


def _member(i: int, email: str, **fields: object) -> Member:
    base: dict[str, object] = {
        "id": f"mem_{i}",
        "email": email,
        "is_verified": True,
        "has_password": True,
        "sign_in_method": "email-and-password",
        "created_at_ms": 1_000,
        "updated_at_ms": 5_000 + i,
    }
    base.update(fields)
    return Member(**base)  # type: ignore[arg-type]


@pytest.fixture
def have() -> pd.DataFrame:
    """The normalised current member base: four members, two with non-ASCII addresses."""
    return normalise(
        members_frame(
            [
                _member(1, "ada@example.com", name="Ada Lovelace", given_name="Ada"),
                _member(2, "ü@xn--mnchen-3ya.de", name="Müller"),
                _member(3, NFD_JOSE, name="José"),
                _member(4, "grace@example.com", metadata={"team": "core"}),
            ]
        ),
        desired=False,
    )


def _want(**columns: list[object]) -> pd.DataFrame:
    return normalise(pd.DataFrame(columns), desired=True)


def _ops(build: Builder) -> pd.DataFrame:
    return build.frames()[0]


def _changes(build: Builder) -> list[tuple[str, str, object, object]]:
    ops, changes = build.frames()
    kinds = dict(zip(ops["op_id"], ops["op"], strict=True))
    return [
        (kinds[op_id], field, before, after)
        for op_id, field, before, after in changes.itertuples(index=False)
    ]


# ---------------------------------------------------------------------------- normalise


def test_normalise_trims_blanks_lower_cases_and_keys_emails() -> None:
    want = _want(
        email=[" ADA@Example.com ", "Ü@XN--MNCHEN-3YA.DE", NFD_JOSE],
        name=["  Ada ", "", None],
        shoe_size=["42", "43", "44"],  # not a member field: dropped from desired rows
    )
    assert want["row"].tolist() == [2, 3, 4]  # spreadsheet rows: the header is row 1
    assert want["email"].tolist() == ["ada@example.com", "ü@xn--mnchen-3ya.de", NFD_JOSE.lower()]
    assert want["email_key"].tolist() == ["ada@example.com", "ü@münchen.de", NFC_JOSE]
    assert want["name"].tolist() == ["Ada", pd.NA, pd.NA]
    assert "shoe_size" not in want and want["member_id"].isna().all()


def test_normalise_reads_yes_no_and_refuses_other_booleans() -> None:
    want = _want(email=["a@x.io", "b@x.io", "c@x.io"], is_verified=["Yes", "0", ""])
    assert want["is_verified"].tolist() == [True, False, pd.NA]
    with pytest.raises(PlanError, match="is_verified values that are not yes/no"):
        _want(email=["a@x.io"], is_verified=["perhaps"])


def test_normalise_refuses_frames_without_emails() -> None:
    with pytest.raises(PlanError, match="the desired frame has no email column"):
        _want(name=["Ada"])
    with pytest.raises(PlanError, match=r"desired rows without an email: rows \[3\]"):
        _want(email=["a@x.io", "  "])


def test_normalise_flattens_a_metadata_dict_column() -> None:
    want = normalise(
        pd.DataFrame({"email": ["a@x.io"], "metadata": [{"tier": "gold"}]}), desired=True
    )
    assert want["metadata.tier"].tolist() == ["gold"]


# ---------------------------------------------------------------------------- matching


def test_every_spelling_of_an_address_matches_its_member(have: pd.DataFrame) -> None:
    want = _want(
        email=[
            "ADA@EXAMPLE.COM",
            "ü@münchen.de",  # the base stores the Punycode domain
            "Ü@XN--MNCHEN-3YA.DE",
            NFC_JOSE,  # the base stores NFD
            "nobody@example.com",
        ]
    )
    position, moved = match_rows(want, have, "email")
    assert have["member_id"].take(position[:4]).tolist() == ["mem_1", "mem_2", "mem_2", "mem_3"]
    assert position[4] == -1 and not moved.any()


def test_a_known_member_id_under_a_new_email_is_matched_as_moved(have: pd.DataFrame) -> None:
    want = _want(email=["ada.lovelace@example.com"], member_id=["mem_1"])
    position, moved = match_rows(want, have, "email")
    assert position.tolist() == [0] and moved.tolist() == [True]
    by_id, _ = match_rows(_want(email=["other@x.io"], member_id=["mem_4"]), have, "member_id")
    assert by_id.tolist() == [3]


def test_twins_in_the_base_match_nothing_and_say_why() -> None:
    base = normalise(
        members_frame(
            [_member(1, "ü@münchen.de"), _member(2, "ü@xn--mnchen-3ya.de"), _member(3, "a@x.io")]
        ),
        desired=False,
    )
    position, _, problems = match_members(_want(email=["Ü@münchen.de", "a@x.io"]), base, "email")
    assert position.tolist() == [-1, 2]
    assert problems.iloc[0].startswith("several members share this email (")
    assert "merge or delete one first" in problems.iloc[0] and pd.isna(problems.iloc[1])


# ---------------------------------------------------------------------------- builder


def test_creates_carry_only_the_fields_given(have: pd.DataFrame) -> None:
    want = _want(
        email=["new@x.io", "newer@x.io"],
        name=["New", ""],
        password=["s3cret-pass", None],
    )
    build = Builder()
    build.creates(want, settable(want, with_verified=True))
    ops = _ops(build)
    assert ops["op"].tolist() == ["create", "create"]
    assert ops["password_source"].tolist() == ["sheet", "generated"]
    assert ops["member_id"].isna().all() and ops["row"].tolist() == [2, 3]
    assert _changes(build) == [("create", "name", None, "New")]


def test_updates_list_only_changed_fields_and_blanks_keep(have: pd.DataFrame) -> None:
    want = _want(
        email=["ada@example.com", "ü@münchen.de", "grace@example.com"],
        name=["Ada King", "", None],  # one change; two blanks that leave the name alone
        given_name=["Ada", "", ""],  # unchanged for Ada
    )
    position, _ = match_rows(want, have, "email")
    pairs, mine = want.reset_index(drop=True), have.iloc[position].reset_index(drop=True)
    build = Builder()
    unchanged = build.updates(pairs, mine, settable(want, with_verified=False), clear=False)
    ops = _ops(build)
    assert ops["op"].tolist() == ["update"] and ops["member_id"].tolist() == ["mem_1"]
    assert ops["expected_updated_at_ms"].tolist() == [5_001]  # the stale-write guard
    assert _changes(build) == [("update", "name", "Ada Lovelace", "Ada King")]
    # Two spellings of one address are no change of email: no "unsupported" op for them.
    assert unchanged["member_id"].tolist() == ["mem_2", "mem_4"]


def test_updates_with_clear_empty_the_blank_fields(have: pd.DataFrame) -> None:
    want = _want(email=["ü@münchen.de", "grace@example.com"], name=["", ""])
    position, _ = match_rows(want, have, "email")
    build = Builder()
    unchanged = build.updates(
        want.reset_index(drop=True),
        have.iloc[position].reset_index(drop=True),
        ["name"],
        clear=True,
    )
    assert _changes(build) == [("update", "name", "Müller", None)]
    assert unchanged["member_id"].tolist() == ["mem_4"]  # had no name: nothing to clear


def test_differences_the_api_cannot_make_are_unsupported_ops(have: pd.DataFrame) -> None:
    want = _want(
        email=["ada.lovelace@example.com", "grace@example.com"],
        member_id=["mem_1", pd.NA],
        sign_in_method=[pd.NA, "google"],
    )
    position, moved = match_rows(want, have, "email")
    assert moved.tolist() == [True, False]
    build = Builder()
    build.updates(
        want.reset_index(drop=True), have.iloc[position].reset_index(drop=True), [], clear=False
    )
    ops = _ops(build)
    assert ops["op"].tolist() == ["unsupported", "unsupported"]
    assert ops["problem"].str.contains("cannot change a member's email").tolist() == [True, False]
    assert ops["problem"].iloc[1].startswith("the sign-in method is chosen by the member")
    assert sorted(field for _, field, _, _ in _changes(build)) == ["email", "sign_in_method"]


def test_deletes_are_built_only_when_asked_and_carry_the_guard(have: pd.DataFrame) -> None:
    build = Builder()
    build.creates(_want(email=["new@x.io"]), [])
    assert "delete" not in _ops(build)["op"].tolist()  # a member absent from a sheet stays
    build.deletes(have[have["member_id"] == "mem_4"])
    ops = _ops(build)
    assert ops["op"].tolist() == ["create", "delete"] and ops["op_id"].tolist() == [0, 1]
    assert ops.loc[1, ["email", "member_id", "expected_updated_at_ms"]].tolist() == [
        "grace@example.com",
        "mem_4",
        5_004,
    ]


def test_frames_are_typed_even_when_empty() -> None:
    ops, changes = Builder().frames()
    assert list(ops.columns) == list(OP_COLUMNS) and ops.empty
    assert {str(c): str(t) for c, t in ops.dtypes.items()} == OP_COLUMNS
    assert list(changes.columns) == list(CHANGE_COLUMNS) and changes.empty


# ---------------------------------------------------------------------------- one op per member


def test_create_and_delete_of_one_address_in_two_spellings_is_refused() -> None:
    ops = typed(
        pd.DataFrame(
            {
                "op_id": [0, 1],
                "op": ["create", "delete"],
                "email": [NFC_JOSE.upper(), NFD_JOSE],
                "member_id": [pd.NA, "mem_3"],
            }
        ),
        OP_COLUMNS,
    )
    with pytest.raises(PlanError, match="creates and deletes the same member"):
        check_one_op_per_member(ops)


@pytest.mark.parametrize(
    "spelling",
    ["ADA@Example.com", "ü@münchen.de", "Ü@XN--MNCHEN-3YA.DE", NFC_JOSE, NFD_JOSE.upper()],
)
def test_another_spelling_never_plans_a_create_and_a_delete(spelling: str) -> None:
    # The whole core through the planner, with deletes asked for: the member a spelling
    # names is updated or left alone, never deleted and created again.
    current = members_frame(
        [
            _member(1, "ada@example.com"),
            _member(2, "ü@xn--mnchen-3ya.de"),
            _member(3, NFD_JOSE),
        ]
    )
    plan = plan_member_changes(
        pd.DataFrame({"email": [spelling], "name": ["Renamed"]}), current, delete_missing=True
    )
    assert plan.creates.empty
    assert len(plan.updates) == 1 and len(plan.deletes) == 2
    kept = plan.updates["member_id"].iloc[0]
    assert kept not in set(plan.deletes["member_id"])
    assert np.isin(plan.deletes["member_id"], ["mem_1", "mem_2", "mem_3"]).all()
