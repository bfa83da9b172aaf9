"""Member walks: the I/O-free pager alone, then every documented page cap over real HTTP."""

from __future__ import annotations

import pytest

import plabdata
from plabdata.client._pagination import MemberPager, smaller_page_size
from plabdata.client._records import Member, MembersPage
from plabdata.emulator import EmulatorHandle, Profile
from plabdata.errors import PaginationError


def _member(n: int) -> Member:
    return Member(f"mem_{n:040x}", f"m{n}@x.io", True, True, "google")


def _page(ids: list[int], cursor: str | None, total: int = 10) -> MembersPage:
    return MembersPage([_member(i) for i in ids], total, cursor)


# ------------------------------------------------------------------ the pager, no I/O


def test_first_request_has_no_cursor_and_follows_the_next():
    pager = MemberPager(page_size=3)
    assert pager.next_request() == (3, None)
    assert [m.id for m in pager.update(_page([1, 2, 3], "c1"))] == [
        _member(i).id for i in (1, 2, 3)
    ]
    assert pager.next_request() == (3, "c1")
    pager.update(_page([4], None))
    assert not pager.has_next and pager.members_seen == 4
    with pytest.raises(PaginationError):
        pager.next_request()


def test_short_pages_with_a_cursor_are_followed():
    pager = MemberPager(page_size=100)  # the server serves 2 at a time, silently
    for start in range(0, 10, 2):
        pager.update(_page([start, start + 1], f"c{start}" if start < 8 else None))
    assert pager.members_seen == 10 and not pager.has_next


def test_members_seen_before_are_not_handed_out_twice():
    pager = MemberPager(page_size=2)
    pager.update(_page([1, 2], "a"))
    assert [m.id for m in pager.update(_page([2, 3], "b"))] == [_member(3).id]


def test_a_repeated_cursor_stops_the_walk():
    pager = MemberPager(page_size=1)
    pager.update(_page([1], "same"))
    with pytest.raises(PaginationError, match="twice"):
        pager.update(_page([2], "same"))


def test_fresh_cursors_for_the_same_page_stop_after_a_few_pages():
    pager = MemberPager(page_size=2, stall_pages=3)
    pager.update(_page([1, 2], "c0"))
    pager.update(_page([1, 2], "c1"))
    pager.update(_page([1, 2], "c2"))
    with pytest.raises(PaginationError, match="no new member"):
        pager.update(_page([1, 2], "c3"))


def test_endless_new_members_beyond_total_stop():
    pager = MemberPager(page_size=5)
    with pytest.raises(PaginationError, match="reports 10"):
        for n in range(100):
            pager.update(_page(list(range(n * 5, n * 5 + 5)), f"c{n}", total=10))


def test_an_empty_page_ends_the_walk_whatever_its_cursor():
    pager = MemberPager()
    pager.update(_page([1], "c"))
    pager.update(_page([], "d"))
    assert not pager.has_next


@pytest.mark.parametrize(
    ("asked", "code", "message", "expected"),
    [
        (100, "invalid-limit", "limit must be an integer from 1 to 50.", 50),
        (50, "invalid-limit", "limit must be between 1 and 25", 25),
        (100, "bad-request", "limit too large", 50),
        (50, "invalid-limit", "limit too large", None),
        (100, "invalid-cursor", "startAfter 12 is not a cursor", None),
    ],
)
def test_smaller_page_size(asked, code, message, expected):
    assert smaller_page_size(asked, code, message) == expected


# ------------------------------------------------------------------ every reading, over HTTP

PROFILES = [
    Profile(page_cap=50, over_cap="reject"),
    Profile(page_cap=50, over_cap="short"),
    Profile(page_cap=100, over_cap="reject"),
    Profile(page_cap=20, over_cap="short"),
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"cap{p.page_cap}-{p.over_cap}")
@pytest.mark.parametrize("page_size", [None, 100, 7])
def test_load_members_walks_any_page_cap(emu: EmulatorHandle, profile, page_size):
    emu.seed(1000)
    emu.set_profile(profile)
    with plabdata.connect(emu.settings) as admin:
        members = plabdata.load_members(admin, page_size=page_size, progress=False)
    assert len(members) == members["member_id"].nunique() == 1000


def test_a_refused_page_size_drops_to_the_cap_once_and_is_remembered(emu: EmulatorHandle):
    emu.seed(120)
    with plabdata.connect(emu.settings) as admin:
        first = plabdata.load_members(admin, page_size=100, progress=False)
        assert admin.aio.page_size == 50
        again = plabdata.load_members(admin, page_size=100, progress=False)
    assert len(first) == len(again) == 120
    # One 400 in the session: the second walk asks for the size the server accepted.
    assert emu.stats()["responsesByStatus"].get("400") == 1
    assert emu.stats()["responsesByStatus"]["200"] == 6


def test_default_walk_asks_for_50_and_never_meets_a_400(emu: EmulatorHandle):
    emu.seed(101)
    with plabdata.connect(emu.settings) as admin:
        assert len(plabdata.load_members(admin, progress=False)) == 101
    stats = emu.stats()["responsesByStatus"]
    assert "400" not in stats and stats["200"] == 3


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"cap{p.page_cap}-{p.over_cap}")
def test_member_base_and_export_under_every_cap(emu: EmulatorHandle, profile, tmp_path):
    emu.seed(180)
    emu.set_profile(profile)
    with plabdata.connect(emu.settings) as admin:
        base = plabdata.load_member_base(admin, progress=False)
    assert len(base) == 180
    assert base["quota_usage_limit"].notna().all()
    assert base["n_identities"].sum() == emu.stats()["identities"]
