"""The import-apply job — ``plabdata members import SHEET --apply --journal J`` — under every
fault at once, killed (SIGKILL, SIGINT) at seeded points and run again until it completes.

The sheet is drawn from the seed against a seeded member base: creates (with and without a
password), updates of every settable field, unchanged rows, a difference the API cannot apply,
and invalid rows (a bad email, a formula in a password cell, a bad picture URL on an existing
member, a duplicated new email, a bad yes/no). Every third seed drops the invalid rows and adds
``--delete-missing`` instead, so deletes are killed and resumed too.

Invariants, against the plan made from the sheet and the member base before the first run:

- the member base ends equal to the plan's target — every field the API can set, and
  ``is_verified`` / sign-in method / custom fields untouched — and members the plan does not
  touch are not written at all (same ``updated_at``);
- no member created twice: one member per email; the server never refused a create as a
  duplicate (409: a create sent for an email that already had its member); the journal holds at
  most one create per email, and no op left pending;
- nothing sent for invalid rows: their new emails never reach the server, their existing
  members are not written;
- the last run's results have no failed or stale row, and every sheet row has its outcome;
- no secret (admin secret, any sheet password) in stdout/stderr, journal, results or
  rows-to-fix files.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from plabdata import Admin, load_members
from plabdata.emulator import EmulatorHandle
from plabdata.jobs._journal import Journal
from plabdata.members._plan import Plan, plan_member_changes
from plabdata.members._sheet import read_member_sheet

from .harness import CLI, Attempt, ChaosRun

SHORT_SEEDS = (1, 3)
EXISTING = 20
CREATES = 20
UPDATES = 10
UNCHANGED = 4
MISSING = 4  # members left out of the sheet in the delete variant
TEXT = ("name", "given_name", "family_name", "picture_url")
HEADERS = {
    "name": "Name",
    "given_name": "First name",
    "family_name": "Last name",
    "picture_url": "Picture",
    "password": "Password",
    "is_verified": "Verified",
    "metadata.team": "metadata.team",
    "metadata.tier": "metadata.tier",
}
#: A spreadsheet formula in a password cell: refused by the sheet check, so never sent.
FORMULA_PASSWORD = '=CONCAT("Q7#","zK42")'


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return str(value) or None


def _maybe(rng: random.Random, value: str, p: float = 0.6) -> str:
    return value if rng.random() < p else ""


def _draw_sheet(
    rng: random.Random, seed: int, current: pd.DataFrame, deletes: bool
) -> tuple[pd.DataFrame, list[int], list[str], dict[str, str]]:
    """The sheet; its invalid rows (sheet row numbers); emails that must never reach the
    server; the passwords it holds (label → value)."""
    rows: list[dict[str, str]] = []
    invalid: list[int] = []  # positions in ``rows``
    never: list[str] = []

    def add(email: str, **cells: str) -> int:
        rows.append({"Email": email, **{HEADERS[k]: v for k, v in cells.items()}})
        return len(rows) - 1

    for i in range(CREATES):
        email = f"chaos{seed}.new{i}@example.org"
        add(
            email.upper() if rng.random() < 0.2 else email,
            name=_maybe(rng, f"New Member {i}"),
            given_name=_maybe(rng, "New"),
            family_name=_maybe(rng, f"Member{i}"),
            picture_url=_maybe(rng, f"https://img.example.org/{seed}/{i}.png", 0.3),
            password=_maybe(rng, f"S{seed}pw{i}x{rng.randrange(10**9):09d}", 0.5),
            is_verified=rng.choice(["", "yes", "no"]),
            **{
                "metadata.team": _maybe(rng, rng.choice(["red", "blue"])),
                "metadata.tier": _maybe(rng, f"t{i % 3}", 0.4),
            },
        )
    members = current.sample(frac=1.0, random_state=rng.randrange(2**31)).to_dict("records")
    for i, member in enumerate(members[:UPDATES]):
        cells = dict.fromkeys((*TEXT, "metadata.team", "metadata.tier"), "")
        for name in rng.sample(list(cells), rng.randint(1, 4)):
            cells[name] = (
                f"https://img.example.org/u/{seed}/{i}.png"
                if name == "picture_url"
                else f"{name.split('.')[-1]} v{seed}.{i}"
            )
        add(str(member["email"]), **cells)
    kept = members[UPDATES : len(members) - (MISSING if deletes else 0)]
    for member in kept[:UNCHANGED]:
        add(str(member["email"]))  # blank cells keep every field: unchanged
    tail = kept[UNCHANGED:]
    if not deletes:
        flip, bad_picture, *tail = tail
        # is_verified of an existing member: the API cannot change it (reported, not applied)
        add(str(flip["email"]), is_verified="no" if flip["is_verified"] else "yes")
        invalid.append(add(str(bad_picture["email"]), name="Bad Picture", picture_url="ftp://nope"))
        invalid.append(add("not-an-email", name="Nobody"))
        never.append(f"chaos{seed}.formula@example.org")
        invalid.append(add(never[-1], name="Formula Password", password=FORMULA_PASSWORD))
        never.append(f"chaos{seed}.twice@example.org")
        for copy in range(2):
            invalid.append(
                add(
                    never[-1],
                    name=f"Twice {copy}",
                    password=f"S{seed}twice{copy}x{rng.randrange(10**9):09d}",
                )
            )
        never.append(f"chaos{seed}.maybe@example.org")
        invalid.append(add(never[-1], is_verified="maybe"))
    for member in tail:
        add(str(member["email"]), **{"metadata.tier": rng.choice(["", f"k{seed}"])})
    order = list(range(len(rows)))
    rng.shuffle(order)
    sheet = pd.DataFrame([rows[i] for i in order]).fillna("")
    row_of = {old: new + 2 for new, old in enumerate(order)}  # the header is row 1
    passwords = {
        f"the password on sheet row {row_of[i]}": r["Password"]
        for i, r in enumerate(rows)
        if r.get("Password")
    }
    return sheet, sorted(row_of[i] for i in invalid), never, passwords


def _members_state(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """email → the member as the API shows it (text fields, maps, flags)."""
    state = {}
    for record in frame.to_dict("records"):
        item = {str(k): v for k, v in record.items()}
        state[str(item["email"])] = {
            **{f: _text(item.get(f)) for f in TEXT},
            "metadata": {
                k[9:]: str(v)
                for k, v in item.items()
                if k.startswith("metadata.") and _text(v) is not None
            },
            "custom_fields": {
                k[14:]: str(v)
                for k, v in item.items()
                if k.startswith("custom_fields.") and _text(v) is not None
            },
            "is_verified": bool(item["is_verified"]),
            "sign_in_method": str(item["sign_in_method"]),
        }
    return state


def _target(initial: pd.DataFrame, plan: Plan) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The member base the plan leads to, and the emails it touches."""
    state = _members_state(initial)
    email_of = dict(zip(initial["member_id"], initial["email"], strict=True))
    touched: set[str] = set()
    for op in plan.to_frame().to_dict("records"):
        if op["op"] not in ("create", "update", "delete"):
            continue
        email = _text(op["email"]) or email_of[op["member_id"]]
        touched.add(email)
        if op["op"] == "delete":
            del state[email]
            continue
        if op["op"] == "create":
            state[email] = {
                **dict.fromkeys(TEXT),
                "metadata": {},
                "custom_fields": {},
                "is_verified": False,
                "sign_in_method": "email-and-password",
            }
        for name, value in op["after"].items():
            if name.startswith("metadata."):
                if _text(value) is None:
                    state[email]["metadata"].pop(name[9:], None)
                else:
                    state[email]["metadata"][name[9:]] = str(value)
            elif name == "is_verified":
                state[email]["is_verified"] = bool(value)
            else:
                state[email][name] = _text(value)
    return state, touched


@pytest.mark.chaos
def test_import_apply_under_chaos(
    emu: EmulatorHandle,
    tmp_path: Path,
    chaos_seed: int,
    chaos_long: bool,
    chaos_record: Callable[[dict[str, Any]], None],
) -> None:
    run = ChaosRun("import", chaos_seed, emu, tmp_path, long=chaos_long)
    deletes = chaos_seed % 3 == 0
    emu.seed(EXISTING, random_seed=chaos_seed)
    with Admin(emu.settings) as admin:
        initial = load_members(admin, progress=False)
    sheet_frame, invalid_rows, never, passwords = _draw_sheet(run.rng, chaos_seed, initial, deletes)
    sheet = tmp_path / "members.csv"
    sheet_frame.to_csv(sheet, index=False)
    run.inputs.add(sheet)
    run.secrets.update(passwords)
    plan = plan_member_changes(
        read_member_sheet(sheet), initial, delete_missing=deletes, plugin_id=emu.plugin_id
    )
    target, touched = _target(initial, plan)
    journal, results = tmp_path / "members.journal", tmp_path / "results.csv"
    command = [
        *CLI,
        "members",
        "import",
        str(sheet),
        "--apply",
        "--journal",
        str(journal),
        "--concurrency",
        "8",
        "--no-progress",
        "--out",
        str(results),
        "--failed-out",
        str(tmp_path / "to_fix.csv"),
        *(["--delete-missing"] if deletes else []),
    ]

    def finished(attempt: Attempt) -> bool:
        if not results.exists() or results.stat().st_mtime < attempt.started_at:
            return False  # this attempt wrote no results (it stopped on an error)
        statuses = pd.read_csv(results)["status"]
        return not statuses.isin(["failed", "stale"]).any()

    expected_requests = 2 + 2 * CREATES + UPDATES + (MISSING if deletes else 0)
    with run.faults(run.draw_faults()):
        last = run.until_complete(
            command, kills=run.draw_kills(expected_requests), finished=finished
        )

    # -- the member base equals the plan's target -------------------------------------------
    with Admin(emu.settings) as admin:
        final = load_members(admin, progress=False)
    run.check(final["email"].is_unique, "two members share an email")
    state = _members_state(final)
    for email in sorted(set(target) - set(state)):
        run.violate(f"{email}: planned to exist, missing")
    for email in sorted(set(state) - set(target)):
        run.violate(
            f"{email}: exists, but the plan does not lead to it"
            + (" (an invalid row's email)" if email in never else "")
        )
    for email in sorted(set(state) & set(target)):
        for name, want in target[email].items():
            got = state[email][name]
            run.check(got == want, f"{email}: {name} is {got!r}, the plan's target is {want!r}")
    before = dict(zip(initial["email"], initial["updated_at"], strict=True))
    after = dict(zip(final["email"], final["updated_at"], strict=True))
    for email in sorted(set(before) - touched):
        run.check(
            after.get(email) == before[email],
            f"{email}: written ({before[email]} → {after.get(email)}) though the plan "
            "does not touch it",
        )

    # -- no member created twice ------------------------------------------------------------
    run.check(
        emu.stats()["members"] == len(target),
        f"{emu.stats()['members']} members, the plan leads to {len(target)}",
    )
    run.check(
        run.stats.get("status409", 0) == 0,
        f"{run.stats.get('status409')} create(s) refused as duplicates (409): a create "
        "was sent for an email that already had its member",
    )
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as held:
        entries = held.frame()
    ops = pd.DataFrame([d if isinstance(d, dict) else {} for d in entries["detail"]])
    entries = entries.assign(op=ops.get("op"), email=ops.get("email"))
    creates = entries[
        (entries["op"] == "create") & entries["status"].isin(["done", "in-doubt-resolved"])
    ]
    twice = creates["email"][creates["email"].duplicated()]
    run.check(twice.empty, f"created twice according to the journal: {sorted(set(twice))}")
    left = entries[entries["status"] == "pending"]
    run.check(
        left.empty,
        f"{len(left)} op(s) left pending in the journal after the last run: "
        f"{left[['op', 'email']].to_dict('records')[:5]}",
    )

    # -- the last run's results --------------------------------------------------------------
    if finished(last):
        outcome = pd.read_csv(results)
        bad = outcome[outcome["status"].isin(["failed", "stale"])]
        run.check(bad.empty, f"failed/stale in the last run: {bad.to_dict('records')[:5]}")
        sheet_rows = set(range(2, len(sheet_frame) + 2))
        run.check(
            set(outcome["row"].dropna().astype(int)) == sheet_rows,
            "sheet rows without an outcome: "
            f"{sorted(sheet_rows - set(outcome['row'].dropna().astype(int)))}",
        )
        got_invalid = sorted(outcome.loc[outcome["status"] == "invalid", "row"].astype(int))
        run.check(
            got_invalid == invalid_rows,
            f"invalid rows {got_invalid}, the sheet's are {invalid_rows}",
        )
    run.scan()
    counts = plan.counts()
    chaos_record(
        run.figures(
            len(sheet_frame),
            creates=counts["create"],
            updates=counts["update"],
            deletes=counts["delete"],
            invalid=counts["invalid"],
        )
    )
    run.assert_clean()
