"""The chaos runs' tally: each run's figures ride on its test report, summed per job at the end.

``chaos_record`` (``tests/chaos/conftest.py``) puts a run's figures in the report's
``user_properties``; the root ``tests/conftest.py`` collects them from every report — pytest-xdist
sends workers' reports to the controller — and prints one line per job.
"""

from __future__ import annotations

from typing import Any

#: The ``user_properties`` name of one run's figures.
CHAOS_PROPERTY = "chaos-run"
#: The figures summed per job, in the order printed.
SUMMED = (
    "attempts",
    "kills",
    "sigkill",
    "sigint",
    "rows",
    "requests",
    "injected_5xx",
    "status_429",
    "drops",
    "storms",
    "mistakes",
    "violations",
    "seconds",
)


def summary_lines(records: list[dict[str, Any]]) -> list[str]:
    """The table: a header, then one line per job with its runs and summed figures."""
    lines = [f"{'job':<17} runs  " + "  ".join(f"{k:>12}" for k in SUMMED)]
    for job in sorted({r["job"] for r in records}):
        mine = [r for r in records if r["job"] == job]
        sums = "  ".join(f"{sum(r.get(k, 0) for r in mine):>12,.0f}" for k in SUMMED)
        lines.append(f"{job:<17} {len(mine):>4}  {sums}")
    return lines
