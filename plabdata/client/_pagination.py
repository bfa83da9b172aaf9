"""Pagination of ``GET /members`` as a value: what to ask next, and whether the walk is sane.

:class:`MemberPager` does no I/O (dlt's way): the loop that uses it sends the request it
names, hands it the page, and stops when it says so. Everything that can go wrong with a
server that pages differently from the one the client was written for is decided here, from
what actually arrived — never from pages × the requested size:

- **Any page size.** PluginLab documents a cap of 50 and of 100; a server may answer a
  larger ``limit`` with a shorter page. A short page with a next cursor is simply followed.
- **Duplicates.** A member seen on an earlier page is not handed out again.
- **Loops.** A cursor seen twice, or :data:`STALL_PAGES` pages in a row that bring no new
  member (a server minting a fresh cursor for the same page), stop the walk with
  :class:`~plabdata.PaginationError`.
- **Overruns.** More members than the server's ``total`` can explain (it may grow while the
  walk runs, so with generous slack) stop it too.

    >>> pager = MemberPager(page_size=50)
    >>> pager.next_request()
    (50, None)
    >>> pager.update(MembersPage(items=[], total=0, next_page_token=None))
    []
    >>> pager.has_next
    False
"""

from __future__ import annotations

import re

from plabdata.client._records import Member, MembersPage
from plabdata.errors import PaginationError
from plabdata.wire import PAGE_SIZE

__all__ = ["STALL_PAGES", "MemberPager", "smaller_page_size"]

#: Pages in a row that bring no new member before the walk is declared a loop.
STALL_PAGES = 3


class MemberPager:
    """The state of one walk over every member.

    Args:
        page_size: the ``limit`` to ask for; :meth:`shrink` lowers it after a refusal.
        stall_pages: pages in a row without a new member that make the walk a loop.

    Attributes:
        pages: pages received so far.
        items: members received so far, duplicates included.
        total: the server's latest ``total``.
    """

    def __init__(self, page_size: int = PAGE_SIZE, *, stall_pages: int = STALL_PAGES) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.page_size = page_size
        self.stall_pages = stall_pages
        self.pages = 0
        self.items = 0
        self.total = 0
        self._max_total = 0
        self._cursor: str | None = None
        self._cursors: set[str] = set()
        self._ids: set[str] = set()
        self._stalled = 0
        self._finished = False

    def __repr__(self) -> str:
        return (
            f"MemberPager(page_size={self.page_size}, pages={self.pages}, "
            f"members={len(self._ids)}, total={self.total}, has_next={self.has_next})"
        )

    @property
    def has_next(self) -> bool:
        """True while there is a page to ask for."""
        return not self._finished

    @property
    def members_seen(self) -> int:
        """Distinct members received so far."""
        return len(self._ids)

    def next_request(self) -> tuple[int, str | None]:
        """``(limit, startAfter)`` of the next request (``startAfter`` None: the first page)."""
        if self._finished:
            raise PaginationError("the walk is over: there is no next page")
        return self.page_size, self._cursor

    def shrink(self, page_size: int) -> None:
        """Ask for ``page_size`` from now on (the server refused a larger one)."""
        if not 1 <= page_size < self.page_size:
            raise ValueError(f"cannot shrink pages of {self.page_size} to {page_size}")
        self.page_size = page_size

    def update(self, page: MembersPage) -> list[Member]:
        """Take in the page just received; returns its members not seen before.

        Raises:
            PaginationError: the server repeats a cursor, serves pages that bring nothing
                new, or returns more members than its ``total`` allows.
        """
        if self._finished:
            raise PaginationError("the walk is over: no page was asked for")
        self.pages += 1
        self.items += len(page.items)
        self.total = page.total
        self._max_total = max(self._max_total, page.total)
        new = [m for m in dict((m.id, m) for m in page.items).values() if m.id not in self._ids]
        self._ids.update(m.id for m in new)
        cursor = page.next_page_token
        if not cursor or not page.items:
            # An empty page ends the walk whatever its cursor: there is nothing after it.
            self._finished = True
            return new
        if cursor in self._cursors:
            raise PaginationError(
                f"the server returned the cursor {cursor!r} twice (page {self.pages}): "
                "stopping instead of walking in a loop"
            )
        self._cursors.add(cursor)
        self._stalled = 0 if new else self._stalled + 1
        if self._stalled >= self.stall_pages:
            raise PaginationError(
                f"{self._stalled} pages in a row brought no new member (page {self.pages}, "
                f"{len(self._ids)} members so far): the server seems to serve the same page "
                "under new cursors; stopping"
            )
        # total may grow while we walk; a walk beyond twice the largest total plus a few
        # pages is not growth but a server that never ends.
        allowed = 2 * self._max_total + 4 * max(self.page_size, len(page.items))
        if self.items > allowed:
            raise PaginationError(
                f"{self.items} members received in {self.pages} pages but the server reports "
                f"{page.total}: stopping"
            )
        self._cursor = cursor
        return new


_NUMBER = re.compile(r"\d+")


def smaller_page_size(asked: int, code: str | None, message: str | None) -> int | None:
    """The page size to retry with after a 400 to ``limit=asked``, or None to give up.

    Only a refusal that is about the limit counts (its code or message says ``limit``). A
    server that names its cap (``"limit must be an integer from 1 to 50"``) is taken at its
    word; otherwise a size above PluginLab's documented 50 drops to 50.

    Example:
        >>> smaller_page_size(100, "invalid-limit", "limit must be an integer from 1 to 50.")
        50
        >>> smaller_page_size(50, "invalid-cursor", "bad cursor") is None
        True
    """
    text = f"{code or ''} {message or ''}"
    if "limit" not in text.lower():
        return None
    named = [int(n) for n in _NUMBER.findall(message or "") if 1 < int(n) < asked]
    if named:
        return max(named)
    return PAGE_SIZE if asked > PAGE_SIZE else None
