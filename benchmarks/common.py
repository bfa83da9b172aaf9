"""Shared pieces of the benchmark scenarios: timing, the official client, result rows."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from plabdata.emulator import EmulatorHandle
from plabdata.emulator import official_app as emulator_official_app

#: The emulator settings every API-bound scenario uses (DESIGN.md's "measured facts").
LATENCY_MS = 50
RATE_LIMIT = 500


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def official_app(emu: EmulatorHandle) -> Any:
    """PluginLab's official client, pointed at the emulator."""
    return emulator_official_app(emu.settings)


@dataclass
class Timed:
    seconds: float
    calls: int

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else float("inf")


def time_calls(call: Callable[[Any], Any], items: Iterable[Any]) -> Timed:
    """Time ``call(item)`` for each item, one after another (the official client's shape)."""
    start = time.perf_counter()
    count = 0
    for item in items:
        call(item)
        count += 1
    return Timed(time.perf_counter() - start, count)


def row(
    scenario: str,
    work: str,
    *,
    plabdata_s: float,
    official_s: float | None,
    official_note: str = "",
    requests: int = 0,
    limit_rps: float | None = None,
    ideal_s: float | None = None,
    n429: int = 0,
    notes: str = "",
) -> dict[str, Any]:
    """One result row in the shape every scenario returns."""
    achieved = requests / plabdata_s if requests and plabdata_s else None
    return {
        "scenario": scenario,
        "work": work,
        "official_s": official_s,
        "official_note": official_note,
        "plabdata_s": plabdata_s,
        "ratio": (official_s / plabdata_s) if official_s and plabdata_s else None,
        "requests": requests,
        "limit_rps": limit_rps,
        "achieved_rps": achieved,
        "limit_fraction": (achieved / limit_rps) if achieved and limit_rps else None,
        "ideal_s": ideal_s,
        "ideal_fraction": (ideal_s / plabdata_s) if ideal_s and plabdata_s else None,
        "n429": n429,
        "peak_mb": peak_mb(),
        "notes": notes,
    }
