"""Reading members back around an apply: before the writes (the members to update or delete,
as they are now) and after them (the verify read-back).

Both choose between one GET per member and one walk of every page by the time each would take
(:func:`prefer_walk`): pages are sequential, GETs run ``concurrency`` at a time, and both share
the rate limit.

    >>> found = await fetch_members(aio, ["mem_…"], count=10_000, concurrency=8)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterable
from typing import Generic, Protocol, TypeVar

from plabdata.client._core import AsyncAdmin
from plabdata.client._records import Member
from plabdata.errors import PlabdataError
from plabdata.jobs._runner import run_bounded

#: Ops are handed to the writers in batches of this many (one journal commit each).
BEGIN_CHUNK = 32


class _HasMember(Protocol):
    member_id: str | None


Op = TypeVar("Op", bound=_HasMember)


def prefer_walk(
    aio: AsyncAdmin, count: int, wanted: int, concurrency: int, *, beside: int = 0
) -> bool:
    """Whether one walk of every page reads ``wanted`` members sooner than one GET each.

    ``count`` members in all; ``beside`` other requests (the writes) share the rate limit with
    the reads, which a walk overlaps. With the client's measured latency and rate, the times
    compare as: walk ``max(pages × latency, (pages + beside) ÷ rate)``; GETs
    ``max((wanted + beside) ÷ rate, wanted × latency ÷ concurrency)``. Before any answer has
    been timed, round trips decide (pages against ``wanted ÷ concurrency``)."""
    pages = math.ceil(max(count, 1) / aio.page_size)
    latency, rate = aio.latency, aio.limiter.rate
    if latency is None:
        return pages < wanted / concurrency
    walk = max(pages * latency, (pages + beside) / rate)
    gets = max((wanted + beside) / rate, wanted * latency / concurrency)
    return walk < gets


class Live(Generic[Op]):
    """The members to update or delete, read just before: one walk of all pages in the
    background when :func:`prefer_walk` says it is sooner than one GET each, else a GET
    inside each op. Ops whose page has arrived are handed
    out at once, so the walk overlaps the writes instead of preceding them."""

    def __init__(
        self, aio: AsyncAdmin, member_ids: list[str], count: int, concurrency: int
    ) -> None:
        self.aio = aio
        self.found: dict[str, Member] = {}
        self.pages: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self.failed: PlabdataError | None = None
        walk = prefer_walk(aio, count, len(member_ids), concurrency, beside=len(member_ids))
        self.task = asyncio.ensure_future(self._walk(set(member_ids))) if walk else None

    async def _walk(self, wanted: set[str]) -> None:
        try:
            async for page in self.aio.iter_member_pages():
                hits = [m.id for m in page.items if m.id in wanted]
                self.found.update((m.id, m) for m in page.items if m.id in wanted)
                self.pages.put_nowait(hits)
        except PlabdataError as exc:  # the ops left fall back to one GET each
            self.failed = exc
        finally:
            self.pages.put_nowait(None)

    async def ordered(self, first: list[Op], rest: list[Op]) -> AsyncIterator[list[Op]]:
        """Batches of ops: ``first`` at once, then ``rest`` as their members are read."""
        for start in range(0, len(first), BEGIN_CHUNK):
            yield first[start : start + BEGIN_CHUNK]
        waiting = {op.member_id: op for op in rest}
        if self.task is not None and not self.task.done():
            while (hits := await self.pages.get()) is not None:
                ready = [waiting.pop(h) for h in hits if h in waiting]
                if ready:
                    yield ready
        left = list(waiting.values())
        for start in range(0, len(left), BEGIN_CHUNK):
            yield left[start : start + BEGIN_CHUNK]

    async def member(self, member_id: str) -> Member | None:
        """The member as it is now (None: it does not exist)."""
        if member_id in self.found:
            return self.found[member_id]
        if self.task is not None:
            await self.task
            if self.failed is None:
                return None
        return await self.aio.get_member(member_id)

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def fetch_members(
    aio: AsyncAdmin, member_ids: Iterable[str], count: int, concurrency: int
) -> dict[str, Member | PlabdataError | None]:
    """The given members now (None when absent, the error when unreadable): one GET each, or
    one walk of all pages when :func:`prefer_walk` says it is sooner. A failed walk falls back
    to GETs."""
    wanted = list(dict.fromkeys(member_ids))
    if not wanted:
        return {}
    if prefer_walk(aio, count, len(wanted), concurrency):
        found: dict[str, Member | PlabdataError | None] = dict.fromkeys(wanted)
        index = set(wanted)
        try:
            async for page in aio.iter_member_pages():
                for member in page.items:
                    if member.id in index:
                        found[member.id] = member
            return found
        except PlabdataError:
            pass
    out: dict[str, Member | PlabdataError | None] = {}
    async for member_id, result in run_bounded(wanted, aio.get_member, concurrency=concurrency):
        if isinstance(result, BaseException) and not isinstance(result, PlabdataError):
            raise result
        out[member_id] = result
    return out
