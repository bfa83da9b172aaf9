"""Progress of a bulk job, as a small protocol: tqdm, the notebook widgets and tests plug in.

A job takes ``progress=``: ``True`` (a tqdm bar, the default), ``False`` (nothing), an object
with the :class:`Progress` methods, or a plain callback ``fn(done, total)`` called after
each row or op. The job drives it the same way whatever it is: :func:`open_progress` once,
then ``update`` as rows finish and ``close`` at the end (also on error).

    >>> seen = []
    >>> bar = open_progress(lambda done, total: seen.append((done, total)), "applying", 2)
    >>> bar.update(); bar.update(); bar.close(); seen
    [(1, 2), (2, 2)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Progress", "ProgressOption", "open_progress"]


@runtime_checkable
class Progress(Protocol):
    """What a job calls on its progress display."""

    def start(self, desc: str, total: int | None) -> None:
        """The job begins: ``total`` rows or ops (None: not known yet)."""

    def update(self, n: int = 1) -> None:
        """``n`` more rows or ops have their outcome."""

    def set_total(self, total: int | None) -> None:
        """The total became known, or grew."""

    def close(self) -> None:
        """The job ended (successfully or not)."""


#: What ``progress=`` accepts.
ProgressOption = bool | Progress | Callable[[int, int | None], None]


class _Quiet:
    def start(self, desc: str, total: int | None) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int | None) -> None:
        pass

    def close(self) -> None:
        pass


class _Tqdm:
    """A tqdm bar (``tqdm.auto``: a widget in Jupyter, text in a terminal)."""

    def __init__(self, unit: str, **options: Any) -> None:
        self._unit = unit
        self._options = options
        self._bar: Any = None

    def start(self, desc: str, total: int | None) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, unit=self._unit, leave=False, **self._options)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_total(self, total: int | None) -> None:
        self._bar.total = total
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


class _Callback:
    """``fn(done, total)`` after every update."""

    def __init__(self, fn: Callable[[int, int | None], None]) -> None:
        self._fn = fn
        self._done = 0
        self._total: int | None = None

    def start(self, desc: str, total: int | None) -> None:
        self._done, self._total = 0, total

    def update(self, n: int = 1) -> None:
        self._done += n
        self._fn(self._done, self._total)

    def set_total(self, total: int | None) -> None:
        self._total = total

    def close(self) -> None:
        pass


def open_progress(
    progress: ProgressOption,
    desc: str,
    total: int | None,
    *,
    unit: str = " rows",
    **tqdm_options: Any,
) -> Progress:
    """The started :class:`Progress` for a job's ``progress=`` argument.

    Example:
        >>> bar = open_progress(False, "applying", 10)
        >>> bar.update(3); bar.close()
    """
    shown: Progress
    if progress is True:
        shown = _Tqdm(unit, **tqdm_options)
    elif progress is False or progress is None:
        shown = _Quiet()
    elif isinstance(progress, Progress):
        shown = progress
    elif callable(progress):
        shown = _Callback(progress)
    else:
        raise TypeError(f"progress must be a bool, a Progress or fn(done, total), not {progress!r}")
    shown.start(desc, total)
    return shown
