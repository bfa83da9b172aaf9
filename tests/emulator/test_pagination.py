"""Member pagination: limits, cursors, and walks that stay exact while others change the base."""

from __future__ import annotations

import random
import threading

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plabdata.emulator import EmulatorHandle, Profile
from plabdata.emulator.contract import decode_cursor, encode_cursor


def _walk(api: httpx.Client, members_path: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor = "None"
    while True:
        page = api.get(members_path + "/members", params={"limit": limit, "startAfter": cursor})
        assert page.status_code == 200, page.text
        body = page.json()
        ids.extend(member["id"] for member in body["items"])
        if body["nextPageToken"] is None:
            return ids
        cursor = body["nextPageToken"]


@pytest.mark.parametrize(
    ("limit", "profile"),
    [
        (1, Profile()),
        (7, Profile()),
        (50, Profile()),
        (50, Profile(page_cap=100)),
        (100, Profile(page_cap=100)),  # the Python SDK page's "up to 100"
        (100, Profile(over_cap="short")),  # pages of 50 for a limit of 100
    ],
)
def test_full_walk_matches_total(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, limit: int, profile: Profile
) -> None:
    emu.set_profile(profile)
    emu.seed(150)
    ids = _walk(api, members_path, limit)
    assert len(ids) == len(set(ids)) == 150
    assert ids == sorted(ids)  # keyset order: member id


def test_exact_multiple_has_no_empty_last_page(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.seed(20)
    first = api.get(members_path + "/members?limit=10").json()
    second = api.get(
        members_path + "/members", params={"limit": 10, "startAfter": first["nextPageToken"]}
    ).json()
    assert len(second["items"]) == 10
    assert second["nextPageToken"] is None
    assert second["total"] == 20


def test_empty_base(api: httpx.Client, members_path: str) -> None:
    body = api.get(members_path + "/members").json()
    assert body == {"items": [], "total": 0, "nextPageToken": None}


@pytest.mark.parametrize(
    "query",
    [
        "limit=2",  # absent
        "limit=2&startAfter=",  # empty
        "limit=2&startAfter",  # empty, without even an '='
        "limit=2&startAfter=None",  # the official client's first page ([SDK041])
        "limit=2&startAfter=null",  # the RESTful API article's "null for the first request"
    ],
)
def test_first_page_markers(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, query: str
) -> None:
    ids = sorted(emu.seed(3))
    body = api.get(members_path + f"/members?{query}").json()
    assert [member["id"] for member in body["items"]] == ids[:2]
    assert body["nextPageToken"] is not None


def test_default_limit_is_50(emu: EmulatorHandle, api: httpx.Client, members_path: str) -> None:
    emu.seed(51)
    assert len(api.get(members_path + "/members").json()["items"]) == 50


ABOVE_THE_CAP = ["51", "101", "9" * 5_000]  # 5,000 digits: more than int() will parse


@pytest.mark.parametrize(
    "limit",
    ["0", "00", "-1", "abc", "", "1.5", "１", "1e2", " 5", *ABOVE_THE_CAP],
    ids=lambda limit: limit if len(limit) < 10 else f"{len(limit)}-digits",
)
@pytest.mark.parametrize("over_cap", ["reject", "short"])
def test_bad_limit_is_400(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, limit: str, over_cap: str
) -> None:
    emu.set_profile(over_cap=over_cap)
    response = api.get(members_path + "/members", params={"limit": limit})
    if over_cap == "short" and limit in ABOVE_THE_CAP:
        assert response.status_code == 200  # a short page (see the short-mode test)
        return
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid-limit"
    assert "50" in response.json()["message"]


@pytest.mark.parametrize(("cap", "limit"), [(50, 51), (50, 100), (100, 101), (100, 1000)])
def test_reject_mode_refuses_a_limit_above_the_cap_naming_it(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, cap: int, limit: int
) -> None:
    emu.set_profile(page_cap=cap, over_cap="reject")
    emu.seed(3)
    response = api.get(members_path + "/members", params={"limit": limit})
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid-limit",
        "message": f"limit must be an integer from 1 to {cap}.",
    }
    # The cap itself is served.
    assert api.get(members_path + "/members", params={"limit": cap}).status_code == 200


@pytest.mark.parametrize(("cap", "limit"), [(50, 51), (50, 100), (100, 150), (50, int("9" * 40))])
def test_short_mode_serves_a_page_of_the_cap_silently(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, cap: int, limit: int
) -> None:
    emu.set_profile(page_cap=cap, over_cap="short")
    ids = sorted(emu.seed(cap + 10))
    response = api.get(members_path + "/members", params={"limit": limit, "startAfter": "None"})
    assert response.status_code == 200
    body = response.json()
    assert [member["id"] for member in body["items"]] == ids[:cap]
    assert body["total"] == cap + 10
    assert body["nextPageToken"] is not None  # the rest is one cursor away
    rest = api.get(
        members_path + "/members", params={"limit": limit, "startAfter": body["nextPageToken"]}
    ).json()
    assert [member["id"] for member in rest["items"]] == ids[cap:]
    assert rest["nextPageToken"] is None
    # Nothing on the answer says it was shortened: no warning header, the same keys.
    assert set(body) == {"items", "total", "nextPageToken"}
    assert not any("warn" in name.lower() for name in response.headers)


def test_default_limit_never_exceeds_a_lower_cap(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_profile(page_cap=10)
    emu.seed(12)
    assert len(api.get(members_path + "/members").json()["items"]) == 10


@pytest.mark.parametrize(
    "cursor", ["garbage!", "bWVtX3g", "NULL", "none", encode_cursor("mem_x"), "dj E6", "%%%", "é"]
)
def test_bad_cursor_is_400(api: httpx.Client, members_path: str, cursor: str) -> None:
    response = api.get(members_path + "/members", params={"startAfter": cursor})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-cursor"


def test_cursor_is_url_safe_and_round_trips() -> None:
    member_id = "mem_" + "ab" * 20
    token = encode_cursor(member_id)
    assert token.replace("-", "").replace("_", "").isalnum()
    assert decode_cursor(token) == member_id


def test_cursor_of_a_deleted_member_still_works(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.seed(10)
    first = api.get(members_path + "/members?limit=5").json()
    api.delete(members_path + f"/members/{first['items'][-1]['id']}")
    rest = api.get(
        members_path + "/members", params={"limit": 5, "startAfter": first["nextPageToken"]}
    ).json()
    assert len(rest["items"]) == 5  # the cursor's member is gone; the rest are all there
    assert rest["nextPageToken"] is None
    assert rest["total"] == 9


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limit=st.integers(min_value=1, max_value=9),
    operations=st.lists(
        st.tuples(st.sampled_from(["create", "delete"]), st.integers(0, 10**6)), max_size=40
    ),
)
def test_walk_interleaved_with_changes_never_skips_or_repeats_stable_members(
    emulator: EmulatorHandle, limit: int, operations: list[tuple[str, int]]
) -> None:
    emulator.reset()
    stable = set(emulator.seed(25))
    members_path = f"/admin/plugins/{emulator.plugin_id}"
    volatile: list[str] = []
    seen: list[str] = []
    with httpx.Client(base_url=emulator.url, headers=emulator.settings.headers()) as api:
        cursor, ops = "None", iter(operations)
        while True:
            # Between two pages, apply a couple of changes to members outside the stable set.
            for kind, number in (next(ops, ("none", 0)), next(ops, ("none", 0))):
                if kind == "create":
                    created = api.post(
                        members_path + "/members",
                        json={"email": f"v{number}@volatile.test", "password": "secret1"},
                    )
                    if created.status_code == 201:
                        volatile.append(created.json()["id"])
                elif kind == "delete" and volatile:
                    victim = volatile.pop(number % len(volatile))
                    assert api.delete(members_path + f"/members/{victim}").status_code == 200
            page = api.get(
                members_path + "/members", params={"limit": limit, "startAfter": cursor}
            ).json()
            seen.extend(member["id"] for member in page["items"])
            if page["nextPageToken"] is None:
                break
            cursor = page["nextPageToken"]
    assert len(seen) == len(set(seen)), "a member came twice"
    assert stable <= set(seen), "a stable member was skipped"


def test_walk_while_another_thread_creates_and_deletes(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    stable = set(emu.seed(200))
    stop = threading.Event()
    rng = random.Random(42)

    def churn() -> None:
        created: list[str] = []
        with httpx.Client(base_url=emu.url, headers=emu.settings.headers()) as other:
            while not stop.is_set():
                if created and rng.random() < 0.4:
                    other.delete(
                        members_path + f"/members/{created.pop(rng.randrange(len(created)))}"
                    )
                else:
                    body = {"email": f"c{rng.randrange(10**9)}@churn.test", "password": "secret1"}
                    response = other.post(members_path + "/members", json=body)
                    if response.status_code == 201:
                        created.append(response.json()["id"])

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        seen = _walk(api, members_path, 3)
    finally:
        stop.set()
        worker.join()
    assert len(seen) == len(set(seen))
    assert stable <= set(seen)
