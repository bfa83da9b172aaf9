"""Months of member-base history in seconds, from an emulator that can let time pass.

:func:`build_history` is the demo's and the notebook's history step: it winds the emulator's
clock back, seeds demo members, then takes a snapshot, lets a week pass (with the emulator's
seeded churn: signups, deletions, plan moves, new identities, usage) and snapshots again,
week after week, until the clock is back at today. The library never imports the emulator:
anything with the four control methods of :class:`TimeMachine` will do (an
``EmulatorHandle`` has them).

    >>> with running() as emu, emulator_admin(emu) as admin:      # doctest: +SKIP
    ...     history = build_history(emu, admin, "out/snapshots", weeks=12)
    >>> print(history.summary())
    13 snapshots, 2026-09-09 → 2026-12-02: 500 → 583 members (+312 joined, −229 left) → out/…
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from plabdata.client._sync import Admin
from plabdata.members._snapshots import SnapshotResult, snapshot_member_base

__all__ = ["BuiltHistory", "TimeMachine", "build_history"]

WEEK_DAYS = 7


class TimeMachine(Protocol):
    """What :func:`build_history` needs of an emulator (``EmulatorHandle`` has it all)."""

    def reset(self) -> None:
        """Delete all data and return to the wall clock."""

    def seed(self, n: int, random_seed: int = 0) -> list[str]:
        """Add ``n`` demo members."""

    def set_clock(
        self, now_ms: int | None = None, *, days_ago: float | None = None
    ) -> dict[str, Any]:
        """Set the clock (back only while empty)."""

    def advance(
        self, days: float = 7, *, churn: bool = True, random_seed: int = 0
    ) -> dict[str, Any]:
        """Let ``days`` pass, with churn."""


@dataclass
class BuiltHistory:
    """What :func:`build_history` wrote.

    Attributes:
        store: the snapshot store.
        snapshots: one result per snapshot taken, oldest first.
        churn: what the emulator changed each week (its ``advance`` answers' ``churn``).
    """

    store: Path
    snapshots: list[SnapshotResult] = field(default_factory=list)
    churn: list[dict[str, int]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many snapshots, over which dates, and how the base moved."""
        if not self.snapshots:
            return f"no snapshots → {self.store}"
        first, last = self.snapshots[0], self.snapshots[-1]
        joined = sum(week.get("signups", 0) for week in self.churn)
        left = sum(week.get("deletions", 0) for week in self.churn)
        return (
            f"{len(self.snapshots)} snapshots, {first.at:%Y-%m-%d} → {last.at:%Y-%m-%d}: "
            f"{first.members:,} → {last.members:,} members (+{joined:,} joined, "
            f"−{left:,} left) → {self.store}"
        )


def build_history(
    emulator: TimeMachine,
    admin: Admin,
    store: str | PathLike[str],
    *,
    weeks: int = 12,
    members: int | None = 500,
    random_seed: int = 0,
    plan_names: Mapping[int, str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> BuiltHistory:
    """Build ``weeks`` weeks of history from an emulator: ``weeks + 1`` weekly snapshots.

    Args:
        emulator: the emulator's control handle (``EmulatorHandle``).
        admin: a connection to the same emulator.
        store: the snapshot store to write (e.g. inside the demo's output folder).
        weeks: weeks of history.
        members: with a number, the emulator is **reset**, its clock set ``weeks`` weeks
            back and that many demo members seeded, so the last snapshot is today. With
            None, its data stays and the weeks run on from its clock (into its future).
        random_seed: seed of the demo members and of the churn.
        plan_names: names of the plans' limits (e.g. ``{100: "free", 5000: "pro"}``).
        echo: called with one line per snapshot.

    Example:
        >>> history = build_history(emu, admin, "snapshots", weeks=12)
        >>> member_timeline(history.store).filter(regex=r"^plan\\.").plot.area()
    """
    if weeks < 0:
        raise ValueError("weeks must be 0 or more")
    if members is not None:
        emulator.reset()
        emulator.set_clock(days_ago=weeks * WEEK_DAYS)
        emulator.seed(members, random_seed)
    built = BuiltHistory(Path(store))

    def snapshot() -> None:
        result = snapshot_member_base(admin, store, plan_names=plan_names)
        built.snapshots.append(result)
        if echo is not None:
            echo(result.summary())

    snapshot()
    for _ in range(weeks):
        answer = emulator.advance(days=WEEK_DAYS, churn=True, random_seed=random_seed)
        built.churn.append(dict(answer.get("churn", {})))
        snapshot()
    return built
