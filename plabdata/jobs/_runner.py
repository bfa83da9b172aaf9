"""The bounded concurrent runner every bulk job uses: lazy input, results as they finish.

>>> async def main():
...     return [r async for _, r in run_bounded(range(3), double, concurrency=2)]
"""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# --------------------------------------------------------------------------- bounded runner


async def run_bounded(
    items: Iterable[T] | AsyncIterable[T],
    fn: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
    on_result: Callable[[T, R | BaseException], None] | None = None,
) -> AsyncIterator[tuple[T, R | BaseException]]:
    """Run ``fn`` over ``items`` with at most ``concurrency`` in flight; yield as each finishes.

    Items are pulled lazily, so a generator of millions of rows keeps memory flat. Exceptions
    from ``fn`` are yielded, never raised; cancelling the consumer cancels what is in flight.

    Example:
        >>> async def main():
        ...     return [r async for _, r in run_bounded(range(3), double, concurrency=2)]
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    iterator: Any = aiter(items) if isinstance(items, AsyncIterable) else iter(items)
    is_async = isinstance(items, AsyncIterable)
    pending: dict[asyncio.Task[R], T] = {}
    exhausted = False

    async def next_item() -> tuple[bool, T | None]:
        try:
            if is_async:
                return True, await anext(iterator)
            return True, next(iterator)
        except (StopIteration, StopAsyncIteration):
            return False, None

    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                ok, item = await next_item()
                if not ok:
                    exhausted = True
                    break
                pending[asyncio.ensure_future(fn(item))] = item  # type: ignore[arg-type, assignment]
            if not pending:
                return
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                item = pending.pop(task)
                result: R | BaseException
                if task.cancelled():
                    raise asyncio.CancelledError
                exc = task.exception()
                result = exc if exc is not None else task.result()
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise exc
                if on_result is not None:
                    on_result(item, result)
                yield item, result
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
