"""``Profile``: which documented reading the emulator plays, and how to select it.

The behaviours each setting selects are tested beside their routes (pagination, tokens,
events, members); here: the value itself, its JSON form, the control API and ``running``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from plabdata.emulator import EmulatorHandle, Profile, running
from plabdata.emulator.profile import ProfileInvalid
from plabdata.wire import DEFAULT_ISSUER

EVERY_SETTING = Profile(
    page_cap=100,
    over_cap="short",
    issuer="https://issuer.example",
    user_claims="snake",
    event_response="no-content",
    min_password_length=1,
)


def test_defaults_are_the_strictest_documented_reading() -> None:
    assert Profile() == Profile(
        page_cap=50,  # [REST] "between 1 and 50", against [PYDOC]'s "up to 100"
        over_cap="reject",
        issuer=DEFAULT_ISSUER,  # [TOK1] requires it
        user_claims="camel",  # both SDKs
        event_response="json",
        min_password_length=6,
    )


def test_json_names_are_camel_case_and_round_trip() -> None:
    assert EVERY_SETTING.to_json() == {
        "pageCap": 100,
        "overCap": "short",
        "issuer": "https://issuer.example",
        "userClaims": "snake",
        "eventResponse": "no-content",
        "minPasswordLength": 1,
    }
    assert Profile.from_json(EVERY_SETTING.to_json()) == EVERY_SETTING
    assert Profile.from_json({}) == Profile()
    assert Profile.from_json({"overCap": "short"}) == Profile(over_cap="short")


BAD_SETTINGS: list[dict[str, Any]] = [
    {"pageCap": 0},
    {"pageCap": 101},
    {"pageCap": "50"},
    {"pageCap": True},
    {"pageCap": 50.0},
    {"overCap": "clamp"},
    {"overCap": None},
    {"issuer": ""},
    {"issuer": "   "},
    {"issuer": 5},
    {"issuer": "x" * 2049},
    {"userClaims": "kebab"},
    {"userClaims": ["camel"]},
    {"eventResponse": "xml"},
    {"eventResponse": 204},
    {"minPasswordLength": 0},
    {"minPasswordLength": 1.5},
    {"minPasswordLength": 10**30},
    {"page_cap": 100},
    {"latencyMs": 5},
]


@pytest.mark.parametrize("body", BAD_SETTINGS)
def test_bad_settings_are_refused_by_the_value_and_the_control_api(
    emu: EmulatorHandle, body: dict[str, Any]
) -> None:
    with pytest.raises(ProfileInvalid):
        Profile.from_json(body)
    emu.set_profile(EVERY_SETTING)
    response = httpx.put(emu.url + "/_emulator/profile", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-profile"
    assert response.json()["message"]
    assert emu.profile() == EVERY_SETTING  # a refused profile changes nothing


@pytest.mark.parametrize("raw", [b"[]", b"{bad", b'{"issuer": "\\ud800"}', b"[" * 100_000])
def test_unparsable_profile_bodies_are_400(emu: EmulatorHandle, raw: bytes) -> None:
    response = httpx.put(emu.url + "/_emulator/profile", content=raw)
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid-json", "invalid-body")
    assert emu.profile() == Profile()


def test_control_api_round_trips_and_replaces(emu: EmulatorHandle) -> None:
    assert emu.profile() == Profile()
    assert httpx.get(emu.url + "/_emulator/profile").json() == Profile().to_json()
    assert emu.set_profile(EVERY_SETTING) == EVERY_SETTING
    assert emu.profile() == EVERY_SETTING
    # A PUT replaces the whole profile: absent settings go back to their defaults.
    assert emu.set_profile(page_cap=100) == Profile(page_cap=100)
    assert httpx.put(emu.url + "/_emulator/profile", content=b"").json() == Profile().to_json()
    with pytest.raises(TypeError):
        emu.set_profile(EVERY_SETTING, page_cap=100)


def test_handle_checks_settings_before_sending(emu: EmulatorHandle) -> None:
    with pytest.raises(ProfileInvalid, match="page_cap"):
        emu.set_profile(page_cap=0)
    assert emu.profile() == Profile()


def test_reset_keeps_the_profile(emu: EmulatorHandle) -> None:
    emu.set_profile(EVERY_SETTING)
    emu.reset()
    assert emu.profile() == EVERY_SETTING


def test_running_starts_with_the_given_profile() -> None:
    with running(seed=120, profile=Profile(page_cap=100, over_cap="short")) as emu:
        assert emu.profile() == Profile(page_cap=100, over_cap="short")
        page = httpx.get(
            f"{emu.url}/admin/plugins/{emu.plugin_id}/members?limit=150",
            headers=emu.settings.headers(),
        ).json()
        assert len(page["items"]) == 100 and page["nextPageToken"] is not None
