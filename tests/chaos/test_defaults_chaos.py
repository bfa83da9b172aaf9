"""The two bulk jobs as a hurried operator runs them: default options only (no ``--journal``,
no ``--report``, no ``--rejects``), dated exports that overlap under other names, a folder
holding plabdata's own files, and the ordinary mistakes of a first week — each under every
fault at once, killed (SIGKILL, SIGINT) at seeded points and run again until it completes.

Backfill: the log drawn by ``test_backfill_chaos`` is cut into two dated exports that overlap
by a third; the first is backfilled alone, then the folder holding both (and the first one's
rejects file) is. Import: the sheet drawn by ``test_import_chaos`` is applied, then a second
dated copy of it with more changes. Before, between and after, seeded mistakes are made: an
output set to an input or to the journal, an empty path, an inverted or ambiguous window, a
``--delete-missing`` with a sheet one stray quote has damaged.

Invariants:

- every mistake is refused: exit non-zero with its message, no traceback, no request (or,
  for a damaged sheet, no member written), every input byte-identical;
- backfill: each event counted at most once per export it is in (the server holds, per
  event source, between the rows the default journal holds as sent and those plus the ones
  in doubt, and never more than the larger export has), nothing for invalid rows, plabdata's
  own files in the folder skipped;
- import: the member base ends equal to the second sheet's plan; no member created twice
  (no 409, one member per email); a re-plan of the second sheet has nothing to do;
- no secret in any output.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from plabdata import Admin, load_members, plan_member_changes, read_member_sheet
from plabdata.emulator import EmulatorHandle
from plabdata.jobs._journal import Journal
from plabdata.jobs._places import default_journal

from .harness import CLI, Attempt, ChaosRun
from .test_backfill_chaos import MEMBERS, ROWS, _draw_log
from .test_import_chaos import EXISTING, _draw_sheet, _members_state, _target

SHORT_SEEDS = (1,)


def _home_env(run: ChaosRun) -> dict[str, str]:
    return {"PLABDATA_HOME": str(run.workdir / "plabdata-home")}


def _backfill_done(attempt: Attempt) -> bool:
    """It ran to its end and its summary line (``N rows: sent …``) has no failed row."""
    text = attempt.stdout.read_text(errors="replace")
    line = re.search(r"^[\d,]+ rows: .*$", text, re.MULTILINE)
    return attempt.signal is None and line is not None and "failed" not in line.group(0)


def _import_done(attempt: Attempt) -> bool:
    """It ran to its end, printed its results (or had nothing to do), none failed or stale."""
    text = attempt.stdout.read_text(errors="replace")
    error = re.search(r"^error: .*$", attempt.stderr.read_text(errors="replace"), re.MULTILINE)
    bad = error is not None and ("failed" in error.group(0) or "stale" in error.group(0))
    ended = "results:" in text or "Nothing to do" in text
    return attempt.signal is None and ended and not bad


# ---------------------------------------------------------------------------- backfill


@pytest.mark.chaos
def test_backfill_with_defaults_and_overlapping_exports(
    emu: EmulatorHandle,
    tmp_path: Path,
    chaos_seed: int,
    chaos_long: bool,
    chaos_record: Callable[[dict[str, Any]], None],
) -> None:
    run = ChaosRun("backfill-defaults", chaos_seed, emu, tmp_path, long=chaos_long)
    on_in_doubt = "retry" if chaos_seed % 4 == 2 else "skip"
    emu.seed(MEMBERS, random_seed=chaos_seed)
    with Admin(emu.settings) as admin:
        emails = load_members(admin, progress=False)["email"].tolist()
    frame, _ = _draw_log(run.rng, emails)
    exports = tmp_path / "exports"
    exports.mkdir()
    cut = ROWS // 3
    first, second = exports / "events_2026-10-01.csv", exports / "events_2026-10-02.csv"
    frame.iloc[: 2 * cut].to_csv(first, index=False)
    frame.iloc[cut:].to_csv(second, index=False)
    run.inputs.update({first, second})
    backfill = [*CLI, "events", "backfill"]
    tail = ["--apply", "--no-progress", "--concurrency", "8", "--on-in-doubt", on_in_doubt]
    journal = default_journal(emu.plugin_id, "events", env=_home_env(run))

    _backfill_mistakes(run, backfill, first, journal, before_journal=True)
    with run.faults(run.draw_faults()):
        run.until_complete(
            [*backfill, str(first), *tail],
            kills=run.draw_kills(2 * cut),
            finished=_backfill_done,
        )
    _backfill_mistakes(run, backfill, first, journal, before_journal=False)
    with run.faults(run.draw_faults()):
        last = run.until_complete(
            [*backfill, str(exports), *tail],
            kills=run.draw_kills(ROWS - 2 * cut),
            finished=_backfill_done,
        )
    # The folder holds the first export's rejects file (and copies kept aside): none of it
    # may be read as a log, so the last run saw exactly the two exports' rows.
    said = last.stdout.read_text(errors="replace")
    rows_seen = 2 * cut + (ROWS - cut)
    run.check(
        f"{rows_seen:,} rows:" in said,
        f"the folder run did not read exactly the {rows_seen} rows of the two exports:\n"
        f"{said[:1500]}",
    )

    after = emu.stats()
    ours = re.compile(r"[SX]\d{5}")  # the sources the drawn log uses (the seed has others)
    counted = Counter({k: v for k, v in after["eventsBySource"].items() if ours.fullmatch(k)})
    run.check(
        not [s for s in counted if s.startswith("X")],
        f"events sent for invalid rows: {sorted(s for s in counted if s.startswith('X'))[:10]}",
    )
    with Journal(journal, plugin_id=emu.plugin_id, job="events") as held:
        entries = held.frame()
    source = entries["detail"].map(lambda d: str(d.get("event_source", "")).upper())
    sent = Counter(source[entries["status"] == "sent"])
    doubt = Counter(source[entries["status"].isin(["pending", "in-doubt"])])
    attempts = Counter()
    for name, n in zip(source, entries["attempts"], strict=True):
        attempts[name] += int(n)

    # Identical rows are told apart by their order within one export, so an event in both
    # exports is one event: a source has as many events as the larger export has rows of it.
    def per_source(part: pd.DataFrame) -> Counter[str]:
        return Counter(part.loc[part["event_source"].str.startswith("S"), "event_source"])

    in_first, in_second = per_source(frame.iloc[: 2 * cut]), per_source(frame.iloc[cut:])
    for name in set(in_first) | set(in_second):
        expected = max(in_first[name], in_second[name])
        got = counted.get(name, 0)
        top = sent[name] + doubt[name] if on_in_doubt == "skip" else attempts[name]
        run.check(
            sent[name] + doubt[name] == expected,
            f"source {name}: {sent[name]} rows journaled sent and {doubt[name]} in doubt "
            f"for {expected} events (lost or doubled in the journal)",
        )
        run.check(
            sent[name] <= got <= top,
            f"source {name}: the server counted {got} for {sent[name]} rows journaled sent, "
            f"{doubt[name]} in doubt, {attempts[name]} attempts",
        )
    strangers = set(counted) - set(in_first) - set(in_second)
    run.check(not strangers, f"events of sources no row has: {sorted(strangers)[:10]}")
    run.scan()
    chaos_record(
        run.figures(
            ROWS + cut,
            in_doubt=int(sum(doubt.values())),
            beyond_sent=int(sum(counted.values()) - sum(sent.values())),
            retry=int(on_in_doubt == "retry"),
        )
    )
    run.assert_clean()


def _backfill_mistakes(
    run: ChaosRun, backfill: list[str], log: Path, journal: Path, *, before_journal: bool
) -> None:
    mistakes = [
        ([*backfill, "", "--apply"], "empty path"),
        ([*backfill, str(log), "--apply", "--rejects", str(log)], "would destroy the input"),
        ([*backfill, str(log), "--apply", "--report", str(log)], "would destroy the input"),
        ([*backfill, str(log), "--apply", "--journal", str(log)], "is the input"),
        (
            [*backfill, str(log), "--apply", "--since", "2026-10-20", "--until", "2026-10-01"],
            "not before",
        ),
        ([*backfill, str(log), "--apply", "--since", "03/04/2026"], "ISO 8601"),
    ]
    if not before_journal:
        mistakes.append(
            ([*backfill, str(log), "--apply", "--report", str(journal)], "would destroy")
        )
    for command, expect in run.rng.sample(mistakes, 2):
        run.mistake(command, expect)


# ---------------------------------------------------------------------------- import


@pytest.mark.chaos
def test_import_with_defaults_and_a_second_dated_sheet(
    emu: EmulatorHandle,
    tmp_path: Path,
    chaos_seed: int,
    chaos_long: bool,
    chaos_record: Callable[[dict[str, Any]], None],
) -> None:
    run = ChaosRun("import-defaults", chaos_seed, emu, tmp_path, long=chaos_long)
    emu.seed(EXISTING, random_seed=chaos_seed)
    with Admin(emu.settings) as admin:
        initial = load_members(admin, progress=False)
    frame, _, _, passwords = _draw_sheet(run.rng, chaos_seed, initial, False)
    run.secrets.update(passwords)
    sheets = tmp_path / "exports"
    sheets.mkdir()
    first = sheets / "members_2026-12-01.csv"
    frame.to_csv(first, index=False)
    run.inputs.add(first)
    imports = [*CLI, "members", "import"]
    tail = ["--apply", "--no-progress", "--concurrency", "8"]

    _import_mistakes(run, imports, first, random.Random(run.rng.random()))
    with run.faults(run.draw_faults()):
        run.until_complete(
            [*imports, str(first), *tail],
            kills=run.draw_kills(60),
            finished=_import_done,
        )

    # The next day's export: the same rows in another order, three names changed.
    second = sheets / "members_2026-12-02.csv"
    later = frame.sample(frac=1.0, random_state=chaos_seed).reset_index(drop=True)
    for i in run.rng.sample(range(len(later)), 3):
        later.loc[i, "Name"] = f"Renamed {chaos_seed}.{i}"
    later.to_csv(second, index=False)
    run.inputs.add(second)
    with Admin(emu.settings) as admin:
        between = load_members(admin, progress=False)
    plan = plan_member_changes(read_member_sheet(second), between, plugin_id=emu.plugin_id)
    target, touched = _target(between, plan)
    with run.faults(run.draw_faults()):
        run.until_complete(
            [*imports, str(second), *tail],
            kills=run.draw_kills(10),
            finished=_import_done,
        )

    with Admin(emu.settings) as admin:
        final = load_members(admin, progress=False)
    state = _members_state(final)
    run.check(final["email"].str.lower().is_unique, "two members share an email (created twice)")
    run.check(run.stats.get("status409", 0) == 0, "a create was refused as a duplicate (409)")
    wrong = {
        email: (state.get(email), want)
        for email, want in target.items()
        if state.get(email) != want
    }
    run.check(
        not wrong, f"{len(wrong)} members differ from the plan's target: {list(wrong.items())[:3]}"
    )
    run.check(
        set(state) == set(target), f"members {sorted(set(state) ^ set(target))[:10]} unexpected"
    )
    stamps = dict(zip(between["email"], between["updated_at"], strict=True))
    untouched = [
        e
        for e, t in zip(final["email"], final["updated_at"], strict=True)
        if e not in touched and e in stamps and stamps[e] != t
    ]
    run.check(not untouched, f"members the plan does not touch were written: {untouched[:5]}")
    again = plan_member_changes(read_member_sheet(second), final, plugin_id=emu.plugin_id)
    run.check(again.is_empty, f"a re-plan of the second sheet is not empty: {again!r}")
    journal = default_journal(emu.plugin_id, "members", env=_home_env(run))
    with Journal(journal, plugin_id=emu.plugin_id, job="members") as held:
        pending = held.pending_keys()
    run.check(not pending, f"{len(pending)} ops left pending in the default journal")
    run.scan()
    chaos_record(run.figures(2 * len(frame)))
    run.assert_clean()


def _import_mistakes(run: ChaosRun, imports: list[str], sheet: Path, rng: random.Random) -> None:
    damaged = run.workdir / "exports" / "members_damaged.csv"
    text = sheet.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = len(text) // 3
    text[cut] = text[cut].replace(",", ',"', 1)  # one stray quote swallows the rows after it
    damaged.write_text("".join(text), encoding="utf-8")
    run.inputs.add(damaged)
    mistakes = [
        ([*imports, str(sheet), "--apply", "--out", str(sheet)], "would destroy the input", False),
        ([*imports, str(sheet), "--apply", "--failed-out", str(sheet)], "would destroy", False),
        ([*imports, str(sheet), "--apply", "--journal", str(sheet)], "is the input", False),
        ([*imports, str(sheet), "--apply", "--journal", ""], "empty", False),
        ([*imports, str(damaged), "--apply", "--delete-missing"], "refusing to plan deletes", True),
    ]
    for command, expect, reads in rng.sample(mistakes, 2):
        run.mistake(command, expect, reads=reads)
