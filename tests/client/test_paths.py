"""Hostile emails and ids in URL paths never reach another endpoint.

An id or email is one path segment, whatever it holds (``/ ? # % ..``, unicode). Two halves:

- the client encodes it as exactly one segment (checked on the raw path that left the client,
  through a recording pass-through transport — the emulator still answers every request);
- the server routes on the raw path and decodes each segment after splitting, so an encoded
  ``/`` cannot select another route (checked with plain httpx against the emulator).

A request that reached the member route for an unknown id answers 404 ``member-not-found``; a
misrouted one answers 404 ``not-found`` (no route) or, worse, 200 with another route's JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx
import pytest

import plabdata
from plabdata import Admin, Member, NotFound
from plabdata.client._core import AsyncAdmin
from plabdata.emulator import EmulatorHandle

HOSTILE_EMAILS = [
    "a+b/c?d#e@x.io",
    "../members@x.io",
    "..%2Fmembers@x.io",
    "per%cent@x.io",
    "100%25@x.io",
    "q?limit=1@x.io",
    "frag#ment@x.io",
    "back\\slash@x.io",
    "zoë.ünïcode@exämple.org",
    "名前@例え.jp",
    "semi;colon&amp=1@x.io",
]
MISSING = "mem_" + "0" * 40
# ``{real}`` is replaced by a real member's id: these must not find that member (or its data).
HOSTILE_IDS = [
    "mem_x/identities",
    "../members",
    "../../members",
    "{real}/identities",
    "../members/{real}",
    "{real}?x=1",
    "{real}#frag",
    "{real}%2Fidentities",
    "{real}%3Fx",
    "%2E%2E",
    "..%2F..%2F_emulator%2Fstats",
    "mem_ünï/../x",
    "...",
    "?",
    "#",
    "%",
    "/",
]
# httpx removes dot segments (RFC 3986) from the path it sends, so an id that *is* "." or
# ".." would leave the member route ("members/." is the member *list*): the client encodes
# them as %2E (plabdata/client.py ``_segment``).


@dataclass
class Sent:
    raw_path: str
    status: int
    code: str | None


class Recorder(httpx.AsyncBaseTransport):
    """Pass-through transport that remembers each request's raw path and the answer's code."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        code = None
        if response.status_code >= 400:
            try:
                code = httpx.Response(200, content=body).json().get("code")
            except ValueError:
                code = None
        self.sent.append(Sent(request.url.raw_path.decode("ascii"), response.status_code, code))
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def module_admin(emulator: EmulatorHandle) -> Iterator[tuple[Admin, Recorder]]:
    """One Admin for the module (clients are costly to build), its requests recorded."""
    recorder = Recorder()
    with plabdata.connect(emulator.settings) as admin:
        plain = admin.aio
        admin.aio = admin.run(_async_admin(admin, recorder))
        admin.run(plain.aclose())
        yield admin, recorder


@pytest.fixture
def recorded(emu: EmulatorHandle, module_admin: tuple[Admin, Recorder]) -> tuple[Admin, Recorder]:
    """The module's Admin on a reset emulator, with an empty record of requests."""
    module_admin[1].sent.clear()
    return module_admin


@pytest.fixture
def admin(recorded: tuple[Admin, Recorder]) -> Admin:
    return recorded[0]


async def _async_admin(admin: Admin, recorder: Recorder) -> AsyncAdmin:
    return AsyncAdmin(admin.settings, pools=1, transport=recorder)


def _segments_after(raw_path: str, prefix: str) -> list[str]:
    """The decoded segments of ``raw_path`` after ``prefix`` (split first, then decode)."""
    assert raw_path.startswith(prefix + "/"), raw_path
    return [unquote(part) for part in raw_path[len(prefix) + 1 :].split("/")]


def _path_of(url: str) -> str:
    return urlsplit(url).path


# ---------------------------------------------------------------------------- emails


@pytest.mark.parametrize("email", HOSTILE_EMAILS)
def test_hostile_email_round_trips_to_its_own_member(emu, recorded, email):
    admin, recorder = recorded
    bystander = admin.create_member("bystander@x.io", "pw-long-enough")
    created = admin.create_member(email, "pw-long-enough")
    assert created.email == email.lower()

    found = admin.get_member_by_email(email)
    assert isinstance(found, Member) and found.id == created.id and found.email == created.email
    assert admin.get_member(created.id) == found
    lookup = recorder.sent[-2]
    by_email = _path_of(emu.settings.members_url) + "/member/byEmail"
    assert _segments_after(lookup.raw_path, by_email) == [email]

    # Near misses find nothing, and nothing else: each got the member route's own 404.
    before = len(recorder.sent)
    for near in (email.split("@")[0], email.replace("@", "%40"), email + "/", "../" + email):
        assert admin.get_member_by_email(near) is None, near
    assert [(s.status, s.code) for s in recorder.sent[before:]] == [(404, "member-not-found")] * 4
    assert emu.stats()["members"] == 2
    assert admin.get_member(bystander.id) is not None


def test_hostile_emails_do_not_collide(emu, admin):
    ids = {admin.create_member(email, "pw-long-enough").id for email in HOSTILE_EMAILS}
    assert len(ids) == len(HOSTILE_EMAILS) == emu.stats()["members"]
    for email in HOSTILE_EMAILS:
        found = admin.get_member_by_email(email)
        assert found is not None and found.email == email.lower()


# ---------------------------------------------------------------------------- ids


@pytest.fixture
def real_member(admin: Admin, emu: EmulatorHandle) -> Member:
    member = admin.create_member("real@x.io", "pw-long-enough")
    emu.set_identity(member.id, "google", refreshToken="rt-real", accessTokenExpiresAtMs=1)
    return member


@pytest.mark.parametrize("template", HOSTILE_IDS)
def test_hostile_id_stays_one_segment_on_the_member_routes(emu, recorded, real_member, template):
    admin, recorder = recorded
    hostile = template.replace("{real}", real_member.id)
    members = _path_of(emu.settings.members_url) + "/members"
    quota = _path_of(emu.settings.monetization_url) + "/admin/members"
    start = len(recorder.sent)

    assert admin.get_member(hostile) is None
    assert admin.get_member_by_email(hostile) is None
    for call in (
        lambda: admin.get_identities(hostile),
        lambda: admin.get_quota_usage(hostile),
        lambda: admin.refresh_identity_token(hostile, "google"),
        lambda: admin.update_member(hostile, name="pwned"),
        lambda: admin.delete_member(hostile),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.code == "member-not-found", caught.value

    sent = recorder.sent[start:]
    paths = [s.raw_path for s in sent]
    assert _segments_after(paths[0], members) == [hostile]
    assert _segments_after(paths[2], members) == [hostile, "identities"]
    assert _segments_after(paths[3], quota) == [hostile, "quota-usage"]
    assert _segments_after(paths[4], members) == [hostile, "identities", "google", "refresh"]
    assert _segments_after(paths[5], members) == [hostile]
    assert [(s.status, s.code) for s in sent] == [(404, "member-not-found")] * 7

    # The real member was not touched by any of it.
    assert admin.get_member(real_member.id) == real_member
    assert admin.get_identities(real_member.id)["google"].access_token_expires_at_ms == 1


@pytest.mark.parametrize(
    "hostile",
    [".", "..", "./x"],
)
@pytest.mark.parametrize("call", ["get_member", "get_identities", "delete_member"])
def test_dot_segment_ids_stay_on_the_member_route(emu, recorded, real_member, hostile, call):
    admin, recorder = recorded
    members = _path_of(emu.settings.members_url) + "/members"
    try:
        # today get_member(".") reaches the member *list* and fails to parse it
        assert getattr(admin, call)(hostile) is None
    except NotFound:
        assert call != "get_member"
    except Exception as exc:
        pytest.fail(f"{call}({hostile!r}) raised {exc!r}")
    sent = recorder.sent[-1]
    assert (sent.status, sent.code) == (404, "member-not-found"), sent
    assert _segments_after(sent.raw_path, members)[0] == hostile
    assert admin.get_member(real_member.id) == real_member


# ---------------------------------------------------------------------------- server routing


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("/members/{real}%2Fidentities", "No member with id {real}/identities"),
        ("/members/{real}%2fidentities", "No member with id {real}/identities"),
        ("/members/..%2Fmembers", "No member with id ../members"),
        ("/members/{real}%3Fx=1", "No member with id {real}?x=1"),
        ("/members/{real}%23frag", "No member with id {real}#frag"),
        ("/members/%2E%2E", "No member with id .."),
        ("/members/{real}%2Fidentities%2Fgoogle%2Frefresh", "No member with id {real}/"),
        ("/member/byEmail/..%2Fmembers", "No member with that email"),
        ("/member/byEmail/..%2F..%2F..%2F_emulator%2Fstats", "No member with that email"),
    ],
)
def test_emulator_routes_on_the_raw_path(emu, real_member, suffix, message):
    """An encoded ``/`` is part of the segment: it never selects another route."""
    settings = emu.settings
    url = settings.members_url + suffix.replace("{real}", real_member.id)
    response = httpx.get(url, headers=settings.headers())
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "member-not-found"
    assert message.replace("{real}", real_member.id) in response.json()["message"]
    # and the un-encoded form does reach the other route, so the test can tell them apart
    plain = httpx.get(
        f"{settings.members_url}/members/{real_member.id}/identities", headers=settings.headers()
    )
    assert plain.status_code == 200 and "google" in plain.json()


def test_control_api_is_not_reachable_through_contract_paths(emu, real_member):
    settings = emu.settings
    for suffix in (
        "/members/..%2F..%2F..%2F..%2F_emulator%2Freset",
        "/members/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F_emulator%2Freset",
    ):
        response = httpx.delete(settings.members_url + suffix, headers=settings.headers())
        assert response.status_code == 404
        assert response.json()["code"] == "member-not-found"
    assert emu.stats()["members"] == 1
