"""The emulator's clock: the wall clock plus an offset that only ever moves it forward.

Every time the emulator stamps or compares — ``createdAtMs``, ``updatedAtMs``, an event's
arrival, the calendar month of a quota, the ``Date`` header of every answer — comes from
:meth:`Clock.now_ms`. ``POST /_emulator/clock/advance`` moves it forward (applying churn on
the way, see :mod:`plabdata.emulator.churn`), so months of history build in seconds.

The clock never goes backwards while the emulator holds data: setting an earlier time is
refused (:class:`ClockBackwards`) unless the store is empty — after a reset, or before the
first seed (``serve --start-days-ago``). The offset is kept in the store, so a server
restarted on the same database file keeps its time; a reset returns to the wall clock.

User tokens are the exception: they are stamped with the wall clock, because the servers
that verify them (``TokenVerifier``, PyJWT) check ``exp`` and ``iat`` against theirs.

    >>> clock = Clock(Store())
    >>> clock.advance(7 * DAY_MS)[1] - clock.now_ms() <= 0
    True
"""

from __future__ import annotations

from datetime import UTC, datetime

from plabdata.emulator.model import now_ms as wall_clock_ms
from plabdata.emulator.store import Store

DAY_MS = 86_400_000
#: The store setting holding the offset (cleared by a reset: ``clock:%``).
OFFSET_KEY = "clock:offset_ms"


class ClockBackwards(Exception):
    """An earlier time was asked for while the emulator holds data."""


def iso(at_ms: int) -> str:
    """``2026-12-02T06:24:35.123Z`` for an epoch-millisecond time."""
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"


class Clock:
    """Wall-clock time plus a forward-only offset, kept in the store.

    Args:
        store: where the offset lives (read once here; written on every change).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.offset_ms = int(store.get_meta(OFFSET_KEY) or 0)

    def now_ms(self) -> int:
        """The emulator's time in epoch milliseconds."""
        return wall_clock_ms() + self.offset_ms

    def reload(self) -> None:
        """Re-read the offset (after a reset cleared it: back to the wall clock)."""
        self.offset_ms = int(self.store.get_meta(OFFSET_KEY) or 0)

    def _save(self) -> None:
        self.store.set_meta(OFFSET_KEY, str(self.offset_ms))

    def advance(self, ms: int) -> tuple[int, int]:
        """Move forward by ``ms`` (> 0); returns the time before and after."""
        if ms <= 0:
            raise ValueError("the clock only moves forward")
        before = self.now_ms()
        self.offset_ms += ms
        self._save()
        return before, before + ms

    def set(self, at_ms: int) -> int:
        """Move to ``at_ms``; returns the new time.

        Raises:
            ClockBackwards: ``at_ms`` is earlier than now and the store holds members or
                events (their times would then lie in the future).
        """
        now = self.now_ms()
        if at_ms < now and not self.store.is_empty():
            raise ClockBackwards(
                f"the clock is at {iso(now)} and the emulator holds data: it only moves "
                "forward (reset the emulator first to start its history earlier)"
            )
        self.offset_ms += at_ms - now
        self._save()
        return at_ms

    def to_json(self) -> dict[str, object]:
        """Control-API view: ``{nowMs, now, offsetMs}``."""
        now = self.now_ms()
        return {"nowMs": now, "now": iso(now), "offsetMs": self.offset_ms}
