"""The official ``pluginlab_admin`` 0.4.1 client, through every public method, against the emulator.

This is the emulator's proof that it speaks PluginLab's language: the client is used as
published, unchanged, under every documented reading the emulator can play (each value of
each :class:`Profile` setting appears in at least one profile below).
"""

from __future__ import annotations

import pluginlab_admin
import pytest
from pluginlab_admin import EventLocation

from plabdata.emulator import EmulatorHandle, Profile

PROFILES = {
    "strictest": Profile(),
    "sdk-page-100": Profile(page_cap=100),
    "short-pages": Profile(over_cap="short"),
    "article-readings": Profile(
        page_cap=100,
        over_cap="short",
        user_claims="snake",
        event_response="empty",
        min_password_length=1,
    ),
    "event-text": Profile(event_response="text"),
    "event-created": Profile(event_response="created"),
    "event-no-content": Profile(event_response="no-content"),
    "other-issuer": Profile(issuer="https://issuer.example"),
}


@pytest.fixture(autouse=True, params=list(PROFILES.values()), ids=list(PROFILES))
def profile(request: pytest.FixtureRequest, emu: EmulatorHandle) -> Profile:
    """Each test runs once per profile (after ``emu`` has restored the default)."""
    return emu.set_profile(request.param)


def test_list_all_members_in_pages_starting_from_literal_none(
    emu: EmulatorHandle, official_app: pluginlab_admin.App
) -> None:
    seeded = set(emu.seed(123))
    auth = official_app.get_auth()
    seen: list[str] = []
    cursor = None  # the client sends startAfter=None on the first page
    pages = 0
    while True:
        page = auth.get_members(limit=50, start_after=cursor)
        pages += 1
        assert page.total == 123
        seen.extend(member.id for member in page.items)
        cursor = page.next_page_cursor
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 123
    assert set(seen) == seeded


def test_default_limit_is_fifty(emu: EmulatorHandle, official_app: pluginlab_admin.App) -> None:
    emu.seed(60)
    page = official_app.get_auth().get_members()
    assert len(page.items) == 50
    assert page.next_page_cursor is not None


def test_get_by_id_and_by_email_and_missing_is_none(
    emu: EmulatorHandle, official_app: pluginlab_admin.App
) -> None:
    auth = official_app.get_auth()
    created = auth.create_member("Grace.Hopper+navy@Example.com", "cobol-1959")
    by_id = auth.get_member_by_id(created.id)
    by_email = auth.get_member_by_email("grace.hopper+navy@example.com")
    assert by_id is not None and by_email is not None
    assert by_id == by_email == created
    assert created.auth.email == "grace.hopper+navy@example.com"
    assert auth.get_member_by_id("mem_" + "0" * 40) is None
    assert auth.get_member_by_email("nobody@example.com") is None


def test_create_update_delete(official_app: pluginlab_admin.App) -> None:
    auth = official_app.get_auth()
    member = auth.create_member(
        "ada@example.com", "analytical", is_verified=True, metadata={"origin": "backend-sdk"}
    )
    assert member.id.startswith("mem_") and len(member.id) == 44
    assert member.auth.sign_in_method == "email-and-password"
    assert member.auth.has_password and member.auth.is_verified
    assert member.metadata == {"origin": "backend-sdk"}
    assert member.custom_fields == {}
    assert member.name is None

    updated = auth.update_member(
        member.id,
        name="Ada Lovelace",
        given_name="Ada",
        family_name="Lovelace",
        picture_url="https://example.com/ada.png",
        metadata={},
    )
    assert (updated.name, updated.given_name, updated.family_name) == (
        "Ada Lovelace",
        "Ada",
        "Lovelace",
    )
    assert updated.picture_url == "https://example.com/ada.png"
    assert updated.metadata == {}
    assert updated.updated_at_ms > member.updated_at_ms

    auth.delete_member(member.id)
    assert auth.get_member_by_id(member.id) is None


def test_the_sdk_pages_own_create_example(
    official_app: pluginlab_admin.App, profile: Profile
) -> None:
    """[PYDOC]'s example, verbatim: its 5-character password passes only a lenient rule."""
    auth = official_app.get_auth()
    example = {
        "email": "johndoe@example.com",
        "password": "12345",
        "is_verified": True,
        "metadata": {"origin": "backend-sdk"},
    }
    if profile.min_password_length > 5:
        with pytest.raises(Exception, match="weak-password"):
            auth.create_member(**example)
        assert auth.get_member_by_email("johndoe@example.com") is None
    else:
        member = auth.create_member(**example)
        assert member.auth.has_password and member.metadata == {"origin": "backend-sdk"}


def test_identities_of_an_oauth_member(
    emu: EmulatorHandle, official_app: pluginlab_admin.App
) -> None:
    emu.seed(60)
    auth = official_app.get_auth()
    members = auth.get_members().items
    oauth = [m for m in members if m.auth.sign_in_method in ("google", "github", "gitlab")]
    assert oauth, "the demo data has OAuth members"
    member = oauth[0]
    identities = auth.get_member_identities(member.id)
    identity = getattr(identities, member.auth.sign_in_method)
    assert identity is not None
    assert identity.provider == member.auth.sign_in_method
    assert identity.provider_user_id
    assert identity.access_token


def test_custom_events_and_quota_usage(
    emu: EmulatorHandle, official_app: pluginlab_admin.App
) -> None:
    member = official_app.get_auth().create_member("quota@example.com", "pass-word")
    events = official_app.get_event()
    events.create_custom("web_ui")  # no member: no quota touched
    events.create_custom("WEB_UI", member_id=member.id)
    events.create_custom("api", member_id=member.id, location=EventLocation("us", "ca"))
    events.create_custom("api", member_id=member.id, location=EventLocation("FR"))
    events.create_custom("api", member_id=member.id, is_in_quota=False)

    usage = official_app.get_monetization().get_member_quota_usage(member.id)
    assert usage.usage_count == 3
    assert usage.usage_limit == 100
    assert not usage.is_unlimited and not usage.is_over_limit
    assert 1 <= usage.reset_in_days <= 31

    stored = emu.events(member_id=member.id)
    assert [e["eventSource"] for e in stored] == ["WEB_UI", "API", "API", "API"]
    assert stored[1]["countryCode"] == "US" and stored[1]["subdivisionCode"] == "CA"
    assert stored[2]["countryCode"] == "FR" and stored[2]["subdivisionCode"] is None
    assert len(emu.events()) == 5


def test_verify_token_on_a_minted_token(
    emu: EmulatorHandle, official_app: pluginlab_admin.App, profile: Profile
) -> None:
    auth = official_app.get_auth()
    member = auth.create_member("token@example.com", "pass-word")
    auth.update_member(member.id, name="Tok En", given_name="Tok")
    token = emu.mint_token(member.id)
    if profile.user_claims == "snake":
        # The SDK checks signature, audience and expiry, then reads user["id"]: the payload of
        # the "Verifying ID Tokens" article ([TOK2]) has no user.id, so 0.4.1 cannot read it.
        with pytest.raises(KeyError, match="'id'"):
            auth.verify_token(token)
        return
    payload = auth.verify_token(token)
    assert payload.iss == profile.issuer  # 0.4.1 does not check iss; it passes it on
    assert payload.uid == member.id
    assert payload.aud == f"plugin:{emu.plugin_id}:admin"
    assert payload.user.email == "token@example.com"
    assert payload.user.name == "Tok En" and payload.user.given_name == "Tok"
    assert payload.user.plan_id == emu.plan(member.id)["planId"]
    assert payload.exp - payload.iat == 3600
