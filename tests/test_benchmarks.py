"""The benchmark harness runs end to end (a smoke run: it asserts nothing about speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_print_and_write_the_side_by_side_table(tmp_path):
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((out / "results.json").read_text())["rows"]
    scenarios = {row["scenario"] for row in rows}
    assert {
        "list all members",
        "all identities",
        "all quota usage",
        "apply creates",
        "apply updates",
        "backfill upload",
        "backfill dry run",
        "plan member changes",
        "tokens-localhost",
    } <= scenarios
    for row in rows:
        assert row["plabdata_s"] > 0, row["scenario"]
        if row["official_s"] is not None:
            assert row["ratio"] is not None
    table = (out / "results.md").read_text()
    assert "| list all members |" in table and "official (s)" in table
    assert "| list all members |" in done.stdout
