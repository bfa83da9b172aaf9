"""plan_member_changes and Plan: classification, normalisation, deletes, files, secrecy."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from plabdata.client._records import Member
from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.errors import PlanError
from plabdata.members._diff import OP_COLUMNS, check_one_op_per_member, typed
from plabdata.members._loaders import load_members
from plabdata.members._plan import Plan, plan_member_changes
from plabdata.members._sheet import read_member_sheet
from plabdata.tables._frames import members_frame

PASSWORD = "sheet-password-123"


def _member(i: int, email: str, **fields: object) -> Member:
    base: dict[str, object] = {
        "id": f"mem_{i:040x}",
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
def current() -> pd.DataFrame:
    return members_frame(
        [
            _member(
                1,
                "ada@example.com",
                name="Ada Lovelace",
                given_name="Ada",
                metadata={"plan": "pro", "team": "core"},
            ),
            _member(2, "alan@example.com", name="Alan Turing", metadata={"plan": "free"}),
            _member(3, "grace@example.com", name="", given_name=None, is_verified=False),
            _member(
                4,
                "linus@example.com",
                name="Linus",
                sign_in_method="github",
                custom_fields={"role": "dev"},
            ),
        ]
    )


def _sheet(**columns: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_creates_updates_unchanged_and_unsupported(current: pd.DataFrame) -> None:
    sheet = read_member_sheet(
        _sheet(
            email=[" ADA@example.com", "alan@example.com", "new@example.com", "grace@example.com"],
            name=["Ada Lovelace", "Alan M. Turing", "New Person", ""],
            verified=["yes", "", "no", "yes"],
            password=["", "", PASSWORD, ""],
            **{"metadata.plan": ["pro", "pro", "free", ""]},
        )
    )
    plan = plan_member_changes(sheet, current, plugin_id="p1")
    assert plan.counts() == {
        "create": 1,
        "update": 1,
        "delete": 0,
        "unsupported": 1,
        "unchanged": 1,
        "invalid": 0,
    }
    update = plan.updates.iloc[0]
    assert update["email"] == "alan@example.com" and update["member_id"] == f"mem_{2:040x}"
    assert update["before"] == {"name": "Alan Turing", "metadata.plan": "free"}
    assert update["after"] == {"name": "Alan M. Turing", "metadata.plan": "pro"}
    assert update["expected_updated_at"] == pd.Timestamp(5_002, unit="ms", tz="UTC")
    create = plan.creates.iloc[0]
    assert create["email"] == "new@example.com" and create["password_source"] == "sheet"
    assert create["after"] == {"is_verified": False, "name": "New Person", "metadata.plan": "free"}
    odd = plan.unsupported.iloc[0]
    assert odd["email"] == "grace@example.com" and odd["fields"] == "is_verified"
    assert "cannot change is_verified" in odd["problem"]
    assert plan.unchanged_rows["email"].tolist() == ["ada@example.com"]


def test_exported_members_replanned_give_an_empty_plan(current: pd.DataFrame) -> None:
    plan = plan_member_changes(current.copy(), current)
    assert plan.is_empty and plan.unchanged == len(current)
    assert plan.unsupported.empty


def test_blank_nan_none_and_empty_string_compare_equal(current: pd.DataFrame) -> None:
    desired = _sheet(
        email=["grace@example.com"] * 1, name=[float("nan")], given_name=[None], family_name=[""]
    )
    plan = plan_member_changes(desired, current)
    assert plan.is_empty and plan.unchanged == 1
    cleared = plan_member_changes(desired, current, blank_means="clear")
    assert cleared.is_empty, "grace has no names: clearing them changes nothing"


def test_blank_means_keep_or_clear(current: pd.DataFrame) -> None:
    desired = _sheet(
        email=["ada@example.com"],
        name=[""],
        given_name=["Ada"],
        **{"metadata.team": [""], "metadata.plan": ["pro"]},
    )
    assert plan_member_changes(desired, current).is_empty
    plan = plan_member_changes(desired, current, blank_means="clear")
    update = plan.updates.iloc[0]
    assert update["before"] == {"name": "Ada Lovelace", "metadata.team": "core"}
    assert update["after"] == {"name": None, "metadata.team": None}


def test_metadata_changes_list_only_changed_keys(current: pd.DataFrame) -> None:
    desired = _sheet(email=["ada@example.com"], **{"metadata.region": ["eu"]})
    update = plan_member_changes(desired, current).updates.iloc[0]
    assert update["before"] == {"metadata.region": None}
    assert update["after"] == {"metadata.region": "eu"}


def test_unsupported_differences_are_reported_not_dropped(current: pd.DataFrame) -> None:
    desired = current[["member_id", "email", "sign_in_method", "custom_fields.role"]].copy()
    desired.loc[3, "sign_in_method"] = "google"
    desired["custom_fields.role"] = desired["custom_fields.role"].astype("string")
    desired.loc[3, "custom_fields.role"] = "manager"
    desired.loc[1, "email"] = "alan.turing@example.com"
    plan = plan_member_changes(desired, current)
    odd = plan.unsupported.sort_values("fields")
    assert odd["fields"].tolist() == ["custom_fields.role", "email", "sign_in_method"]
    assert plan.creates.empty, "a known member id under a new email is not a new member"
    by_id = plan_member_changes(desired, current, key="member_id")
    assert sorted(by_id.unsupported["fields"]) == sorted(odd["fields"])


def test_deletes_need_the_flag_and_respect_max_deletes(current: pd.DataFrame) -> None:
    desired = _sheet(email=["ada@example.com"])
    assert plan_member_changes(desired, current).deletes.empty
    plan = plan_member_changes(desired, current, delete_missing=True)
    assert sorted(plan.deletes["email"]) == [
        "alan@example.com",
        "grace@example.com",
        "linus@example.com",
    ]
    with pytest.raises(PlanError, match="would delete 3 members, more than max_deletes=2"):
        plan_member_changes(desired, current, delete_missing=True, max_deletes=2)


def test_deletes_refused_while_the_sheet_has_invalid_rows(current: pd.DataFrame) -> None:
    sheet = read_member_sheet(_sheet(email=["ada@example.com", "alan@example"]))
    with pytest.raises(PlanError, match="1 row\\(s\\) of the sheet are invalid"):
        plan_member_changes(sheet, current, delete_missing=True)
    plan = plan_member_changes(sheet, current)
    assert plan.invalid[["row", "email"]].values.tolist() == [[3, "alan@example"]]


def test_duplicate_desired_keys_are_refused(current: pd.DataFrame) -> None:
    with pytest.raises(PlanError, match="share a email: rows \\[2, 3\\]"):
        plan_member_changes(_sheet(email=["a@example.com", "A@example.com "]), current)


def test_empty_current_plans_creates_with_generated_passwords() -> None:
    plan = plan_member_changes(_sheet(email=["a@example.com"], name=["A"]), members_frame([]))
    assert plan.creates["password_source"].tolist() == ["generated"]
    assert plan.needs_passwords == [] and not plan.passwords


def test_save_load_round_trip_keeps_no_passwords(current: pd.DataFrame, tmp_path: Path) -> None:
    sheet = read_member_sheet(
        _sheet(
            email=["new@example.com", "two@example.com", "alan@example.com", "bad"],
            name=["N", "T", "Alan", "x"],
            password=[PASSWORD, "", "", ""],
        )
    )
    plan = plan_member_changes(sheet, current, plugin_id="p1", delete_missing=False)
    assert plan.passwords and plan.needs_passwords == []
    path = plan.save(tmp_path / "plan.json")
    assert PASSWORD not in path.read_text()
    loaded = Plan.load(path)
    pd.testing.assert_frame_equal(loaded.to_frame(), plan.to_frame())
    pd.testing.assert_frame_equal(loaded.invalid, plan.invalid)
    assert loaded.op_keys().tolist() == plan.op_keys().tolist()
    assert loaded.plugin_id == "p1" and loaded.counts() == plan.counts()
    assert loaded.needs_passwords == ["new@example.com"]
    again = loaded.with_passwords(sheet)
    assert again.needs_passwords == [] and again.passwords["new@example.com"].reveal() == PASSWORD


def test_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(PlanError, match="not a plabdata member plan"):
        Plan.load(path)
    path.write_text("not json")
    with pytest.raises(PlanError, match="not a readable plan file"):
        Plan.load(path)


def test_op_keys_are_deterministic_and_change_with_the_target(current: pd.DataFrame) -> None:
    first = plan_member_changes(_sheet(email=["alan@example.com"], name=["X"]), current)
    same = plan_member_changes(_sheet(email=["alan@example.com"], name=["X"]), current)
    other = plan_member_changes(_sheet(email=["alan@example.com"], name=["Y"]), current)
    assert first.op_keys().tolist() == same.op_keys().tolist()
    assert first.op_keys().tolist() != other.op_keys().tolist()


def test_text_and_html_show_counts_never_passwords(current: pd.DataFrame) -> None:
    sheet = read_member_sheet(
        _sheet(
            email=["new@example.com", "alan@example.com"],
            name=["N", "Alan T"],
            password=[PASSWORD, ""],
        )
    )
    plan = plan_member_changes(sheet, current, plugin_id="p1")
    texts = [
        repr(plan),
        str(plan),
        plan.describe(limit=1),
        plan._repr_html_(),
        plan.to_frame().to_string(),
    ]
    assert "1 creates, 1 updates, 0 deletes" in texts[0]
    assert "alan@example.com: name: 'Alan Turing' → 'Alan T'" in texts[1]
    assert "<table" in texts[3]
    for text in texts:
        assert PASSWORD not in text
    assert "Nothing to do" in str(plan_member_changes(current.copy(), current))


# ---------------------------------------------------------------------------- one canonical key

NFD_JOSE = unicodedata.normalize("NFD", "josé@example.com")
PUNY = "zoë@xn--mnchen-3ya.de"  # the domain münchen.de, stored in punycode


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    with Admin(emu.settings) as client:
        yield client


def test_a_base_in_other_spellings_is_matched_not_deleted_and_recreated(admin: Admin) -> None:
    for email, name in [(PUNY, "Zoë"), (NFD_JOSE, "José"), ("plain@example.com", "Plain")]:
        member = admin.create_member(email, "a-long-password-1", metadata={"team": "core"})
        admin.update_member(member.id, name=name)
    current = load_members(admin, progress=False)
    stored = set(current["email"])
    assert PUNY in stored and NFD_JOSE in stored, "the emulator keeps the spelling it was sent"
    sheet = read_member_sheet(
        pd.DataFrame(
            {
                "Email": ["Zoë@München.de", "josé@example.com", "plain@example.com"],
                "Name": ["Zoë", "José Renamed", "Plain"],
                "metadata.team": ["core", "core", "core"],
            }
        )
    )
    assert unicodedata.is_normalized("NFC", sheet.rows["email"].iloc[1])
    for delete_missing in (False, True):
        plan = plan_member_changes(
            sheet, current, delete_missing=delete_missing, plugin_id=admin.settings.plugin_id
        )
        counts = plan.counts()
        assert (counts["create"], counts["delete"], counts["unsupported"]) == (0, 0, 0), counts
        assert counts["update"] == 1 and counts["unchanged"] == 2
        update = plan.updates.iloc[0]
        assert update["email"] == NFD_JOSE and update["after"] == {"name": "José Renamed"}
        by_id = current.set_index("email")["member_id"]
        assert update["member_id"] == by_id[NFD_JOSE]
        assert set(plan.unchanged_rows["member_id"]) == {by_id[PUNY], by_id["plain@example.com"]}


def test_two_live_spellings_of_one_address_are_reported_and_never_deleted(admin: Admin) -> None:
    twins = [admin.create_member(e, "a-long-password-1") for e in (PUNY, "zoë@münchen.de")]
    admin.create_member("gone@example.com", "a-long-password-1")
    current = load_members(admin, progress=False)
    plan = plan_member_changes(
        pd.DataFrame({"email": ["ZOË@münchen.de"], "name": ["Zoë"]}), current, delete_missing=True
    )
    assert plan.creates.empty and plan.updates.empty
    assert plan.deletes["email"].tolist() == ["gone@example.com"]
    odd = plan.unsupported.iloc[0]
    assert odd["problem"].startswith("several members share this email")
    assert PUNY in odd["problem"] and "zoë@münchen.de" in odd["problem"]
    assert not set(plan.deletes["member_id"]) & {m.id for m in twins}


def test_passwords_attach_by_canonical_key(current: pd.DataFrame, tmp_path: Path) -> None:
    sheet = read_member_sheet(_sheet(email=["new@münchen.de"], password=[PASSWORD]))
    plan = plan_member_changes(sheet, current)
    assert plan.passwords["new@münchen.de"].reveal() == PASSWORD
    loaded = Plan.load(plan.save(tmp_path / "plan.json"))
    respelled = pd.DataFrame({"email": ["NEW@xn--mnchen-3ya.de"], "password": [PASSWORD]})
    again = loaded.with_passwords(respelled)
    assert again.needs_passwords == [] and again.passwords["new@münchen.de"].reveal() == PASSWORD


def test_a_plan_that_creates_and_deletes_one_member_is_refused(
    current: pd.DataFrame, tmp_path: Path
) -> None:
    plan = plan_member_changes(
        _sheet(email=["new@example.com", "ada@example.com"]), current, delete_missing=True
    )
    path = plan.save(tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    delete = next(op for op in doc["ops"] if op["op"] == "delete")
    delete["email"] = "NEW@Example.com"  # a tampered or hand-edited plan
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanError, match="creates and deletes the same member"):
        Plan.load(path)
    with pytest.raises(PlanError, match="changes one member more than once"):
        check_one_op_per_member(
            typed(
                pd.DataFrame(
                    {"op_id": [0, 1], "op": ["update", "delete"], "member_id": ["mem_1"] * 2}
                ),
                OP_COLUMNS,
            )
        )


def test_key_member_id_never_deletes_a_member_the_sheet_names_by_email(
    current: pd.DataFrame,
) -> None:
    desired = current[["member_id", "email"]].head(1).copy()
    desired = pd.concat([desired, pd.DataFrame({"email": ["ALAN@example.com"]})])
    plan = plan_member_changes(desired, current, key="member_id", delete_missing=True)
    assert "alan@example.com" not in set(plan.deletes["email"])
    assert sorted(plan.deletes["email"]) == ["grace@example.com", "linus@example.com"]


# ---------------------------------------------------------------------------- doubtful sheets


def test_deletes_refused_while_a_csv_parse_is_doubtful(
    current: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "members.csv"
    path.write_text(
        'email,name\nada@example.com,Ada\nalan@example.com,"Alan\ngrace@example.com,Grace\n'
        "linus@example.com,Linus\n"
    )
    sheet = read_member_sheet(path)
    with pytest.raises(PlanError, match="refusing to plan deletes: 1 row"):
        plan_member_changes(sheet, current, delete_missing=True)
    plan = plan_member_changes(sheet, current)
    assert plan.deletes.empty and plan.invalid["row"].tolist() == [3]
    assert "stray quote" in plan.invalid["problem"].iloc[0]
    assert not plan.updates["email"].isin(["alan@example.com"]).any(), "no junk name sent"


def test_warnings_neither_block_deletes_nor_count_as_invalid(current: pd.DataFrame) -> None:
    sheet = read_member_sheet(
        _sheet(email=["ada@example.com", "new@example.com"], password=["", "12345"])
    )
    assert len(sheet.warnings) == 1
    plan = plan_member_changes(sheet, current, delete_missing=True)
    assert plan.counts()["invalid"] == 0 and plan.invalid.empty
    assert plan.creates["email"].tolist() == ["new@example.com"]
    assert plan.passwords["new@example.com"].reveal() == "12345"
    assert len(plan.deletes) == 3


# ---------------------------------------------------------------------------- HTML


def test_plan_html_escapes_what_comes_from_sheets(current: pd.DataFrame) -> None:
    markup = "<img src=x onerror=alert(1)>"
    sheet = read_member_sheet(
        _sheet(
            email=["new@example.com", "alan@example.com", "bad<b>@"],
            name=[markup, "<script>alert(2)</script>", "x"],
            **{"metadata.<i>k</i>": ["<u>v</u>", "", ""]},
        )
    )
    page = plan_member_changes(sheet, current, plugin_id="<p1>")._repr_html_()
    for raw in (markup, "<script>", "<u>v", "<i>k", "<b>@", "<p1>"):
        assert raw not in page, raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;p1&gt;" in page
