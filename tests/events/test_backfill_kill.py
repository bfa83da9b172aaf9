"""A backfill killed mid-way (SIGKILL, or Ctrl-C) and resumed: nothing lost, nothing doubled.

The upload runs as ``plabdata events backfill --apply`` in a child process; the test kills it
once part of the rows reached the emulator, then resumes in-process. Each row has its own
event source, so the server's per-source counts show exactly which rows arrived, and how often.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from plabdata.client._sync import Admin
from plabdata.emulator import EmulatorHandle
from plabdata.events._backfill import backfill_events
from plabdata.jobs._journal import Journal
from plabdata.members._loaders import load_members

ROWS = 400
CONCURRENCY = 8


def _log(emails: list[str], path: Path) -> None:
    pd.DataFrame(
        {
            "timestamp": [
                f"2026-10-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z" for i in range(ROWS)
            ],
            "email": [emails[i % len(emails)] for i in range(ROWS)],
            "event_source": [f"K{i:05d}" for i in range(ROWS)],
        }
    ).to_csv(path, index=False)


def _arrived(emu: EmulatorHandle) -> dict[str, int]:
    counts = emu.stats()["eventsBySource"]
    return {k: v for k, v in counts.items() if k.startswith("K0")}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_run_resumes_without_losing_or_doubling_rows(
    emu: EmulatorHandle, tmp_path: Path, sig: signal.Signals
) -> None:
    emu.seed(10)
    settings = emu.settings
    with Admin(settings) as admin:
        emails = load_members(admin, progress=False)["email"].tolist()
    log, journal = tmp_path / "log.csv", tmp_path / "log.journal.sqlite"
    _log(emails, log)
    emu.set_faults(latency_ms=15, jitter_ms=10)  # keep requests in flight when the kill lands
    env = {
        **os.environ,
        **dict(line.removeprefix("export ").split("=", 1) for line in settings.export_lines()),
    }
    env["PLABDATA_RATE_LIMIT"] = "400"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from plabdata.cli import main; main()",
            "events",
            "backfill",
            str(log),
            "--apply",
            "--no-progress",
            "--journal",
            str(journal),
            "--concurrency",
            str(CONCURRENCY),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while sum(_arrived(emu).values()) < ROWS // 4:
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, "the backfill made no progress"
        time.sleep(0.02)
    child.send_signal(sig)
    child.wait(timeout=30)
    arrived_at_kill = sum(_arrived(emu).values())
    assert arrived_at_kill < ROWS, "killed too late to test anything"

    with Journal(journal, plugin_id=settings.plugin_id, job="events") as held:
        pending = held.pending_keys()
        statuses = held.counts()
    # A kill loses at most what was in flight (plus, for SIGKILL, outcomes not yet committed:
    # they are committed with every begin, so at most one more round of requests).
    limit = CONCURRENCY if sig == signal.SIGINT else 2 * CONCURRENCY
    assert len(pending) <= limit
    assert statuses.get("sent", 0) >= arrived_at_kill - limit

    emu.clear_faults()
    with Admin(settings.replace(rate_limit=2000)) as admin:
        report = backfill_events(admin, log, journal=journal, progress=False)
    assert report.counts.get("in-doubt", 0) == len(pending)
    assert sum(report.counts.values()) == ROWS
    assert set(report.counts) <= {"sent", "already-done", "in-doubt"}

    arrived = _arrived(emu)
    assert max(arrived.values()) == 1  # no row reached the server twice
    rows = report.rows()
    source = "K" + (rows["row"] - 2).astype(str).str.zfill(5)
    done = source[rows["status"].isin(["sent", "already-done"])]
    assert all(arrived.get(s) == 1 for s in done)  # the journal's "done" is the server's truth
    doubtful = source[rows["status"] == "in-doubt"]
    # In-doubt rows reached the server at most once; the total holds no surprise.
    assert sum(arrived.values()) == len(done) + sum(arrived.get(s, 0) for s in doubtful)
