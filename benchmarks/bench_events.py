"""Event backfill vs the official client: uploading events, and dry-running a big log.

- **Upload**: 100,000 events (quick: 3,000) from a Parquet log, through
  ``backfill_events`` (journaled, fingerprinted, concurrent under the shared rate limiter)
  against the emulator in its own process at 50 ms latency and a 500 req/s limit. The
  official ``pluginlab_admin`` loop — ``App(...).get_event().create_custom(...)``, one call at
  a time — would take over an hour: it is timed on a sample of 1,000 calls (quick: 50) and
  compared as calls/s, extrapolated to the same work.
- **Dry run**: validation, email resolution and fingerprinting of a generated 5,000,000-row
  Parquet log (quick: 500,000) with the per-row report streamed to Parquet, in a child
  process whose peak RSS is the figure reported. No network: members are given.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import plabdata
from benchmarks.common import LATENCY_MS, RATE_LIMIT, official_app, row, time_calls
from plabdata.emulator import Faults, running
from plabdata.events._backfill import backfill_events

SOURCES = np.array(["WEB_UI", "MOBILE", "API", "EXTENSION"])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "IN", "BR"])


def write_log(path: Path, emails: np.ndarray, rows: int, *, bad_every: int = 0) -> None:
    """A synthetic web-UI log, written in slices so generating it stays small too."""
    rng = np.random.default_rng(11)
    start = pd.Timestamp("2026-10-01", tz="UTC").value // 1_000_000
    writer: pq.ParquetWriter | None = None
    step = 500_000
    for first in range(0, rows, step):
        n = min(step, rows - first)
        country = COUNTRIES[rng.integers(0, len(COUNTRIES), n)]
        if bad_every:
            country[::bad_every] = "XX"
        table = pa.table(
            {
                "timestamp": pa.array(
                    start + np.sort(rng.integers(0, 30 * 86_400_000, n)), pa.timestamp("ms", "UTC")
                ),
                "email": pa.array(emails[rng.integers(0, len(emails), n)]),
                "source": pa.array(SOURCES[rng.integers(0, len(SOURCES), n)]),
                "country": pa.array(country),
                "region": pa.array(["CA" if c == "US" else None for c in country.tolist()]),
                "in_quota": pa.array(rng.random(n) < 0.9),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    assert writer is not None
    writer.close()


def _upload(quick: bool) -> dict[str, Any]:
    n = 3_000 if quick else 100_000
    sample = 50 if quick else 1_000
    n_members = 200 if quick else 2_000
    faults = Faults(latency_ms=LATENCY_MS, rate_limit=RATE_LIMIT)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(seed=n_members, mode="process", faults=faults) as emu,
        plabdata.connect(emu.settings) as admin,
    ):
        members = plabdata.load_members(admin, progress=False)
        log = Path(tmp) / "events.parquet"
        write_log(log, members["email"].to_numpy(dtype=object), n)
        sent, throttled = admin.aio.requests_sent, admin.aio.limiter.throttled
        start = time.perf_counter()
        report = backfill_events(
            admin, log, journal=Path(tmp) / "events.journal.sqlite", members=members,
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        requests = admin.aio.requests_sent - sent
        assert report.counts == {"sent": n}, report.counts
        event = official_app(emu).get_event()
        ids = members["member_id"].tolist()
        timed = time_calls(
            lambda i: event.create_custom("WEB_UI", member_id=ids[i % len(ids)]), range(sample)
        )
    return row(
        "backfill upload",
        f"{n:,} events",
        plabdata_s=seconds,
        official_s=n / timed.rate,
        official_note=f"sampled {timed.calls:,} calls ({timed.rate:.1f}/s), extrapolated",
        requests=requests,
        limit_rps=RATE_LIMIT,
        ideal_s=n / RATE_LIMIT,
        n429=admin.aio.limiter.throttled - throttled,
        notes=f"{n / seconds:.0f} events/s vs official {timed.rate:.1f} calls/s; "
        f"concurrency {admin.settings.concurrency}; every row journaled",
    )


_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd
    from plabdata import Admin, Settings, backfill_events

    log, members_path, report_path = sys.argv[1:4]
    members = pd.read_parquet(members_path)
    admin = Admin(Settings(plugin_id="plg_bench", secret="offline"))
    start = time.perf_counter()
    report = backfill_events(admin, log, journal=None, dry_run=True, members=members,
                             progress=False, report_path=report_path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": report.total_rows, "counts": report.counts,
                      "peak_mb": peak}))
    """
)


def _dry_run(quick: bool) -> dict[str, Any]:
    n = 500_000 if quick else 5_000_000
    with tempfile.TemporaryDirectory() as tmp:
        members = pd.DataFrame(
            {
                "member_id": pd.array([f"mem_{i:040x}" for i in range(20_000)], dtype="string"),
                "email": pd.array([f"user{i}@example.com" for i in range(20_000)], dtype="string"),
            }
        )
        members.to_parquet(Path(tmp) / "members.parquet")
        log = Path(tmp) / "big.parquet"
        write_log(log, members["email"].to_numpy(dtype=object), n, bad_every=2_000)
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(log), str(Path(tmp) / "members.parquet"),
             str(Path(tmp) / "rows.parquet")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["rows"] == n
    rate = n / result["seconds"]
    out = row(
        "backfill dry run",
        f"{n:,}-row Parquet log",
        plabdata_s=result["seconds"],
        official_s=None,
        official_note="no equivalent",
        notes=f"{rate:,.0f} rows/s validated, resolved, fingerprinted, report written; "
        f"peak RSS of the dry-run process {result['peak_mb']:.0f} MB (interpreter included); "
        f"{result['counts'].get('invalid', 0):,} invalid rows",
    )
    out["peak_mb"] = result["peak_mb"]
    out["rows_per_s"] = rate
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The event scenarios (see the module docs)."""
    return [_upload(quick), _dry_run(quick)]


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
