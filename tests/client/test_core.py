"""AsyncAdmin / Admin against the emulator: the contract, errors, retries, redaction."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

import plabdata
from plabdata.client._core import AsyncAdmin
from plabdata.client._retry import is_in_doubt, track
from plabdata.errors import AuthError, Conflict, PaginationError, RefreshTokenFailed


@pytest.fixture
def admin(emu):
    with plabdata.connect(emu.settings) as admin:
        yield admin


def test_single_calls_round_trip(emu, admin):
    created = admin.create_member("Ada@Example.com", "correct horse", metadata={"team": "a"})
    assert created.email == "ada@example.com"
    assert created.metadata == {"team": "a"}
    assert admin.get_member(created.id) == created
    assert admin.get_member_by_email("ada@example.com") == created
    assert admin.get_member("mem_" + "0" * 40) is None
    assert admin.get_member_by_email("nobody@example.com") is None

    updated = admin.update_member(created.id, name="Ada L", metadata={"team": "b"})
    assert (updated.name, updated.metadata) == ("Ada L", {"team": "b"})
    assert updated.updated_at_ms > created.updated_at_ms

    quota = admin.get_quota_usage(created.id)
    assert quota.usage_count == 0
    admin.create_event("web_ui", member_id=created.id, country_code="FR")
    assert admin.get_quota_usage(created.id).usage_count == 1

    admin.delete_member(created.id)
    assert admin.get_member(created.id) is None
    with pytest.raises(plabdata.NotFound):
        admin.delete_member(created.id)


@pytest.mark.parametrize(
    "email",
    ["a+b@x.io", "a+b/c?d#e@x.io", "per%cent@x.io", "zoë.ünïcode@exämple.org", "sp.ace/..@x.io"],
)
def test_hostile_emails_reach_the_right_endpoint(emu, admin, email):
    created = admin.create_member(email, "long-enough-password")
    found = admin.get_member_by_email(email)
    assert found is not None and found.id == created.id
    # A path-traversal look-alike must not resolve to another route or member.
    assert admin.get_member_by_email("../members") is None
    assert admin.get_member(f"{created.id}/identities") is None  # needs raw-path routing


def test_duplicate_create_is_a_conflict(emu, admin):
    admin.create_member("dup@example.com", "long-enough-password")
    with pytest.raises(Conflict) as info:
        admin.create_member("dup@example.com", "long-enough-password")
    assert info.value.status == 409 and info.value.code == "member-already-exists"
    assert info.value.method == "POST" and info.value.path.endswith("/members")


def test_identities_and_refresh(emu, admin):
    emu.seed(60)
    members = plabdata.load_members(admin, progress=False)
    google = members[members.sign_in_method == "google"].member_id.iloc[0]
    identities = admin.get_identities(google)
    assert "google" in identities
    assert "tok" not in repr(identities) or "**********" in repr(identities)
    # Seeded refresh tokens are sometimes revoked or expired: make this one a good one.
    emu.set_identity(
        google, "google", refreshTokenExpiresAtMs=4_102_444_800_000, refreshTokenRevoked=False
    )
    refreshed = admin.refresh_identity_token(google, "google")
    assert refreshed.access_token is not None
    assert refreshed.access_token != identities["google"].access_token
    emu.set_identity(google, "google", refreshTokenRevoked=True)
    with pytest.raises(RefreshTokenFailed):
        admin.refresh_identity_token(google, "google")


def test_secret_never_shown(emu, caplog):
    secret = emu.secret.reveal()
    caplog.set_level(logging.DEBUG)
    wrong = emu.settings.replace(secret=plabdata.Secret(secret + "x"))
    with plabdata.connect(wrong) as admin:
        with pytest.raises(AuthError) as info:
            admin.get_member_by_email("a@b.io")
        texts = [str(info.value), repr(info.value), repr(admin), repr(admin.settings), caplog.text]
    with plabdata.connect(emu.settings) as admin:
        admin.create_member("logged@example.com", "hunter2-password")
        texts.append(caplog.text)
    assert info.value.status == 401
    for text in texts:
        assert secret not in text
        assert "hunter2-password" not in text


def test_reads_retry_through_server_errors(emu, admin):
    emu.seed(20)
    emu.set_faults(error_rate=0.3, random_seed=7)
    with track() as trace:
        members = plabdata.load_members(admin, page_size=5, progress=False)
    assert len(members) == 20
    assert trace.attempts > 4  # some pages were retried
    assert emu.stats()["injectedErrors"] > 0


def test_create_after_drop_is_resolved_not_duplicated(emu, admin):
    emu.set_faults(drop_rate=1.0, random_seed=1)
    with track() as trace:
        member = admin.create_member("dropped@example.com", "long-enough-password")
    emu.clear_faults()
    assert trace.in_doubt_resolved
    assert member.email == "dropped@example.com"
    assert emu.stats()["members"] == 1


def test_event_after_drop_is_in_doubt_not_resent(emu, admin):
    emu.set_faults(drop_rate=1.0, random_seed=1)
    with pytest.raises(plabdata.TransportError) as info:
        admin.create_event("WEB_UI")
    emu.clear_faults()
    assert is_in_doubt(info.value)
    assert len(emu.events()) == 1  # committed once, never re-sent


def test_rate_limit_is_learned_and_kept(emu):
    emu.set_faults(rate_limit=20, burst=20)
    settings = emu.settings.replace(rate_limit=200.0)

    async def burst() -> AsyncAdmin:
        async with AsyncAdmin(settings) as aio:
            await asyncio.gather(*(aio.get_member_by_email(f"x{i}@x.io") for i in range(60)))
            return aio

    aio = asyncio.run(burst())
    assert aio.limiter.target == pytest.approx(20 * 0.97)
    assert aio.requests_sent >= 60
    # Every call succeeded (retrying any 429), and the limiter settled under the limit.
    assert aio.limiter.rate <= 20


def test_admin_works_inside_a_running_event_loop(emu):
    """A Jupyter cell runs inside an event loop: the sync facade must still work there."""

    async def cell() -> int:
        with plabdata.connect(emu.settings) as admin:
            admin.create_member("loop@example.com", "long-enough-password")
            return len(plabdata.load_members(admin, progress=False))

    assert asyncio.run(cell()) == 1


def _looping_transport(total: int) -> httpx.MockTransport:
    # The emulator cannot misbehave this way; a mock is the only honest source of a bad cursor.
    def handler(request: httpx.Request) -> httpx.Response:
        item = {
            "id": "mem_" + "1" * 40,
            "auth": {
                "email": "a@x.io",
                "isVerified": True,
                "hasPassword": True,
                "signInMethod": "google",
            },
            "customFields": {},
            "metadata": {},
            "createdAtMs": 1,
            "updatedAtMs": 1,
        }
        return httpx.Response(200, json={"items": [item], "total": total, "nextPageToken": "same"})

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("total", [1, 10_000])
def test_pagination_cannot_loop_forever(total):
    settings = plabdata.Settings(plugin_id="p", secret="s", auth_url="http://mock")

    async def walk() -> int:
        pages = 0
        async with AsyncAdmin(settings, transport=_looping_transport(total)) as aio:
            async for _ in aio.iter_member_pages(1):
                pages += 1
        return pages

    with pytest.raises(PaginationError):
        asyncio.run(walk())
