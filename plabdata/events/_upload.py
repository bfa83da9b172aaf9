"""The upload half of a backfill: rows to requests, each journaled before it leaves.

``upload`` pulls checked chunks lazily (each read and checked off the event loop), turns
their rows into requests under :func:`~plabdata.jobs._runner.run_bounded` — so the client's
shared rate limiter paces them — and hands every outcome to the run (journal, report).

Before a request leaves, its fingerprint is marked ``pending`` in the journal. Marks of rows
starting at the same moment share one durable commit (:class:`Marks`), made on a worker
thread so an fsync never stalls requests in flight.

    >>> await upload(admin.aio, run, checked_chunks, concurrency=48)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple, Protocol

import pyarrow as pa

from plabdata.client._core import AsyncAdmin
from plabdata.client._retry import track
from plabdata.errors import AuthError, JournalError, PlabdataError
from plabdata.jobs._journal import Journal
from plabdata.jobs._runner import run_bounded

__all__ = ["Item", "Marks", "upload"]


class Item(NamedTuple):
    """One row to send."""

    file: str
    row: int
    timestamp: Any
    fingerprint: str
    member_id: str | None
    event_source: str
    country_code: str | None
    subdivision_code: str | None
    is_in_quota: bool
    was_in_doubt: bool


def items_of(table: pa.Table) -> Iterator[Item]:
    columns = {}
    for name in Item._fields:
        column = table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        columns[name] = column.to_pylist()
    for values in zip(*(columns[name] for name in Item._fields), strict=True):
        yield Item(*values)


class Recorder(Protocol):
    """What the upload needs from the run it serves (``_backfill.Run``): the journal, the
    in-doubt choice, and where each row's outcome goes."""

    @property
    def journal(self) -> Journal | None: ...

    @property
    def on_in_doubt(self) -> str: ...

    def record(self, item: Item, result: object, doubled: bool) -> None: ...


class Marks:
    """Group-commits ``pending`` marks: rows starting together share one durable commit."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.queue: list[tuple[str, dict[str, Any], asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def mark(self, item: Item) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        detail = {
            "file": item.file,
            "row": item.row,
            "member_id": item.member_id,
            "event_source": item.event_source,
        }
        self.queue.append((item.fingerprint, detail, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._drain())
        await future

    async def _drain(self) -> None:
        while self.queue:
            batch, self.queue = self.queue, []
            try:
                await asyncio.to_thread(self.journal.begin, [(k, d) for k, d, _ in batch])
            except BaseException as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for *_, future in batch:
                if not future.done():
                    future.set_result(None)


async def upload(
    aio: AsyncAdmin, run: Recorder, send: Iterator[pa.Table], *, concurrency: int
) -> None:
    assert run.journal is not None
    marks = Marks(run.journal)

    fatal: PlabdataError | None = None

    async def items() -> AsyncIterator[Item]:
        while fatal is None:
            # Reading and checking the next chunk runs off the event loop (pyarrow releases
            # the GIL), so requests in flight keep flowing meanwhile.
            table = await asyncio.to_thread(next, send, None)
            if table is None:
                return
            for item in items_of(table):
                if fatal is not None:
                    return
                yield item

    async def send_one(item: Item) -> bool:
        """Send one row: journaled pending before every attempt, retried by the client's
        policy (in doubt: only with ``on_in_doubt="retry"``, with backoff). Returns whether
        the event may have been recorded twice."""
        with track() as trace:
            try:
                await aio.create_event(
                    item.event_source,
                    member_id=item.member_id,
                    country_code=item.country_code,
                    subdivision_code=item.subdivision_code if item.country_code else None,
                    is_in_quota=item.is_in_quota,
                    retry_in_doubt=run.on_in_doubt == "retry",
                    before_attempt=lambda: marks.mark(item),
                )
            except PlabdataError as exc:
                raise _Failed(exc, item.was_in_doubt) from exc
        return item.was_in_doubt or trace.in_doubt_attempts > 0

    # Refused credentials fail every row alike, and a journal that cannot be written makes
    # sending unsafe: either stops the feed; the requests in flight finish and are recorded.
    async for item, result in run_bounded(items(), send_one, concurrency=concurrency):
        if isinstance(result, JournalError):
            fatal = fatal or result
            continue
        if isinstance(result, _Failed):
            run.record(item, result.cause, result.doubled)
            if isinstance(result.cause, AuthError):
                fatal = fatal or result.cause
        elif isinstance(result, BaseException):
            run.record(item, result, item.was_in_doubt)
        else:
            run.record(item, None, bool(result))
    if fatal is not None:
        raise fatal


class _Failed(Exception):
    def __init__(self, cause: PlabdataError, doubled: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.doubled = doubled
