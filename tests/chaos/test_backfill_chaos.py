"""The backfill job — ``plabdata events backfill LOG --apply --journal J`` — under every fault at
once, killed (SIGKILL, SIGINT) at seeded points and run again until it completes.

The log is drawn from the seed: rows of seeded members with a location and a quota flag or
not, repeats of earlier rows (identical events that must each count), and invalid rows (an
unknown email, an unparsable timestamp, an unknown country, a bad yes/no). Valid rows carry
their own event source (``S<row>``, shared only by a row and its repeats) and invalid ones an
``X<row>`` source, so the server's per-source counts say which rows arrived, and how often.
Seeds ≡ 2 (mod 4) run with ``--on-in-doubt retry``.

Invariants:

- every row accounted for exactly once: the last run's per-row table has each input row once,
  with one status; its invalid rows are exactly the log's; each valid row's journal entry
  agrees (sent ⇔ sent / already-done, in-doubt ⇔ pending / in-doubt);
- the server's count per source and per member is at least the rows reported sent and at
  most that plus the rows reported in doubt (``skip``: never more; ``retry``: at most the
  journal's attempts); no event of any other source appeared;
- nothing sent for invalid rows: no ``X`` source reached the server, and no journal entry
  exists for them;
- no admin secret in stdout/stderr, journal, per-row report or rejected rows.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from plabdata import Admin, load_members
from plabdata.emulator import EmulatorHandle
from plabdata.events._report import read_rows
from plabdata.jobs._journal import Journal

from .harness import CLI, Attempt, ChaosRun

SHORT_SEEDS = (1, 2)
MEMBERS = 40
ROWS = 300
DONE = ("sent", "already-done")
BREAKS = ("unknown email", "unparsable timestamp", "unknown country", "bad yes/no")


def _draw_log(rng: random.Random, emails: list[str]) -> tuple[pd.DataFrame, list[int]]:
    """The log and its invalid rows (row numbers as the report gives them: header = 1)."""
    rows: list[dict[str, str]] = []
    invalid: list[int] = []
    for i in range(ROWS):
        roll = rng.random()
        if roll < 0.06 and rows:
            rows.append(dict(rng.choice([r for r in rows if r["event_source"][0] == "S"])))
            continue
        row = {
            "timestamp": f"2026-10-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
            "email": rng.choice(emails),
            "event_source": f"S{i:05d}",
            "country_code": rng.choice(["", "", "US", "FR", "DE"]),
            "is_in_quota": rng.choice(["", "", "yes", "no"]),
        }
        if roll > 0.93:
            row["event_source"] = f"X{i:05d}"
            broken = rng.choice(BREAKS)
            if broken == "unknown email":
                row["email"] = f"ghost{i}@nowhere.example"
            elif broken == "unparsable timestamp":
                row["timestamp"] = "the day before yesterday"
            elif broken == "unknown country":
                row["country_code"] = "ZZ"
            else:
                row["is_in_quota"] = "maybe"
            invalid.append(i + 2)
        rows.append(row)
    return pd.DataFrame(rows), invalid


def _delta(after: dict[str, int], before: dict[str, int]) -> Counter[str]:
    return Counter({k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)})


@pytest.mark.chaos
def test_backfill_under_chaos(
    emu: EmulatorHandle,
    tmp_path: Path,
    chaos_seed: int,
    chaos_long: bool,
    chaos_record: Callable[[dict[str, Any]], None],
) -> None:
    run = ChaosRun("backfill", chaos_seed, emu, tmp_path, long=chaos_long)
    on_in_doubt = "retry" if chaos_seed % 4 == 2 else "skip"
    emu.seed(MEMBERS, random_seed=chaos_seed)
    with Admin(emu.settings) as admin:
        emails = load_members(admin, progress=False)["email"].tolist()
    log_frame, invalid_rows = _draw_log(run.rng, emails)
    log = tmp_path / "web_ui.csv"
    log_frame.to_csv(log, index=False)
    run.inputs.add(log)
    journal, report = tmp_path / "web_ui.journal.sqlite", tmp_path / "rows.parquet"
    command = [
        *CLI,
        "events",
        "backfill",
        str(log),
        "--apply",
        "--no-progress",
        "--journal",
        str(journal),
        "--report",
        str(report),
        "--rejects",
        str(tmp_path / "rejected.csv"),
        "--concurrency",
        "8",
        "--on-in-doubt",
        on_in_doubt,
    ]

    def finished(attempt: Attempt) -> bool:
        if not report.exists() or report.stat().st_mtime < attempt.started_at:
            return False  # this attempt wrote no report (it stopped on an error)
        return not (read_rows(report)["status"] == "failed").any()

    before = emu.stats()
    with run.faults(run.draw_faults()):
        last = run.until_complete(command, kills=run.draw_kills(ROWS + 2), finished=finished)
    after = emu.stats()
    by_source = _delta(after["eventsBySource"], before["eventsBySource"])
    by_member = _delta(after["eventsByMember"], before["eventsByMember"])
    with Journal(journal, plugin_id=emu.plugin_id, job="events") as held:
        entries = held.frame().set_index("key")

    in_doubt = beyond_sent = 0
    if not finished(last):
        run.violate("no complete per-row report from the last run")
    else:
        rows = read_rows(report)
        # -- every row accounted for exactly once ------------------------------------------
        run.check(
            len(rows) == ROWS
            and rows["row"].is_unique
            and set(rows["row"]) == set(range(2, ROWS + 2)),
            f"the per-row table has {len(rows)} rows for {ROWS} input rows "
            f"({rows['row'].duplicated().sum()} repeated)",
        )
        unknown = set(rows["status"]) - {*DONE, "in-doubt", "invalid"}
        run.check(not unknown, f"unexpected statuses in the last run: {unknown}")
        got_invalid = sorted(rows.loc[rows["status"] == "invalid", "row"])
        run.check(
            got_invalid == invalid_rows,
            f"invalid rows {got_invalid[:20]}, the log's are {invalid_rows[:20]}",
        )
        valid = rows[rows["status"] != "invalid"]
        journaled = entries.reindex(valid["fingerprint"])
        status = pd.Series(journaled["status"].to_numpy(), index=valid.index)
        agree = (valid["status"].isin(DONE) & (status == "sent")) | (
            (valid["status"] == "in-doubt") & status.isin(["pending", "in-doubt"])
        )
        run.check(
            bool(agree.all()),
            "journal and report disagree on rows "
            f"{valid.loc[~agree, 'row'].tolist()[:20]}: "
            f"{list(zip(valid.loc[~agree, 'status'], status[~agree], strict=True))[:5]}",
        )
        extra = set(entries.index) - set(valid["fingerprint"])
        run.check(
            not extra,
            f"{len(extra)} journal entries match no valid row (sent for an "
            "invalid row, or a fingerprint that changed between runs)",
        )
        in_doubt = int((rows["status"] == "in-doubt").sum())
        if on_in_doubt == "skip":
            run.check(
                not rows["maybe_doubled"].fillna(False).any(),
                "rows marked maybe-doubled with on_in_doubt='skip'",
            )

        # -- the server's counts: sent ≤ count ≤ sent + in doubt (retry: ≤ attempts) ----------
        attempts = pd.Series(journaled["attempts"].fillna(0).to_numpy(), index=valid.index)
        tally = pd.DataFrame(
            {
                "source": valid["event_source"].str.upper(),
                "member": valid["member_id"],
                "done": valid["status"].isin(DONE).astype(int),
                "doubt": (valid["status"] == "in-doubt").astype(int),
                "attempts": attempts,
            }
        )
        for key, counted in (("source", by_source), ("member", by_member)):
            sums = tally.groupby(key)[["done", "doubt", "attempts"]].sum()
            for name, item in sums.iterrows():
                got = counted.get(str(name), 0)
                most = item["done"] + item["doubt"] if on_in_doubt == "skip" else item["attempts"]
                run.check(
                    item["done"] <= got <= most,
                    f"{key} {name}: the server counted {got} events for {item['done']} "
                    f"rows reported sent and {item['doubt']} in doubt "
                    f"({item['attempts']} attempts)",
                )
            if key == "source":
                beyond_sent = sum(counted.get(str(n), 0) for n in sums.index) - sums["done"].sum()
            strangers = set(counted) - {str(n) for n in sums.index}
            run.check(not strangers, f"events of {key}s no valid row has: {sorted(strangers)[:20]}")
    sent_for_invalid = sorted(s for s in by_source if s.startswith("X"))
    run.check(not sent_for_invalid, f"events sent for invalid rows: {sent_for_invalid[:20]}")
    run.scan()
    # in_doubt: rows the last run left in doubt; beyond_sent: events the server holds beyond
    # the rows reported sent (in-doubt rows that did arrive, and, with retry, doubles).
    chaos_record(
        run.figures(
            ROWS, in_doubt=in_doubt, beyond_sent=int(beyond_sent), retry=int(on_in_doubt == "retry")
        )
    )
    run.assert_clean()
