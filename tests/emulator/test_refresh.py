"""Refreshing an identity's access token (google, gitlab) and the provider's refusals."""

from __future__ import annotations

import httpx
import pytest

from plabdata.emulator import EmulatorHandle
from plabdata.emulator.model import REFRESH_FAILED_MESSAGE, now_ms


@pytest.fixture
def member_id(api: httpx.Client, members_path: str) -> str:
    body = {"email": "oauth@example.com", "password": "secret1"}
    return str(api.post(members_path + "/members", json=body).json()["id"])


def _refresh(api: httpx.Client, members_path: str, member_id: str, provider: str) -> httpx.Response:
    return api.post(members_path + f"/members/{member_id}/identities/{provider}/refresh")


@pytest.mark.parametrize("provider", ["google", "gitlab"])
def test_refresh_gives_a_new_token_valid_for_an_hour(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, member_id: str, provider: str
) -> None:
    emu.set_identity(
        member_id,
        provider,
        provider_user_id="u1",
        access_token="old",
        refresh_token="r1",
        access_token_expires_at_ms=1,
    )
    before = now_ms()
    response = _refresh(api, members_path, member_id, provider)
    assert response.status_code == 200, response.text
    identity = response.json()
    assert identity["provider"] == provider and identity["providerUserId"] == "u1"
    assert identity["accessToken"] != "old"
    assert before + 3_600_000 <= identity["accessTokenExpiresAtMs"] <= now_ms() + 3_600_000
    listed = api.get(members_path + f"/members/{member_id}/identities").json()
    assert listed[provider]["accessToken"] == identity["accessToken"]
    assert "refreshTokenRevoked" not in listed[provider]


@pytest.mark.parametrize(
    "fields",
    [
        {"refresh_token_revoked": True},
        {"refresh_token_expires_at_ms": 1000},
        {"refresh_token": None},
    ],
)
def test_refused_refresh_is_422(
    emu: EmulatorHandle,
    api: httpx.Client,
    members_path: str,
    member_id: str,
    fields: dict[str, object],
) -> None:
    emu.set_identity(member_id, "google", provider_user_id="u1", refresh_token="r1")
    emu.set_identity(member_id, "google", **fields)
    response = _refresh(api, members_path, member_id, "google")
    assert response.status_code == 422
    assert response.json() == {"code": "refresh-token-failed", "message": REFRESH_FAILED_MESSAGE}


@pytest.mark.parametrize("provider", ["github", "microsoft"])
def test_refresh_not_supported(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, member_id: str, provider: str
) -> None:
    emu.set_identity(member_id, provider, provider_user_id="u1", refresh_token="r")
    response = _refresh(api, members_path, member_id, provider)
    assert response.status_code == 400
    assert response.json()["code"] == "refresh-not-supported"


def test_refresh_without_identity_or_member_is_404(
    api: httpx.Client, members_path: str, member_id: str
) -> None:
    response = _refresh(api, members_path, member_id, "google")
    assert response.status_code == 404
    assert response.json()["code"] == "identity-not-found"
    assert _refresh(api, members_path, "mem_" + "1" * 40, "gitlab").status_code == 404


def test_unknown_provider_is_400(api: httpx.Client, members_path: str, member_id: str) -> None:
    response = _refresh(api, members_path, member_id, "myspace")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-provider"


def test_seeded_identities_include_refreshable_and_revoked(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.seed(400)
    emu.set_profile(page_cap=100)  # the Python SDK page's reading: one page of 100 members
    outcomes: dict[int, int] = {}
    for event in api.get(members_path + "/members?limit=100").json()["items"]:
        if event["auth"]["signInMethod"] in ("google", "gitlab"):
            response = _refresh(api, members_path, event["id"], event["auth"]["signInMethod"])
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
    assert outcomes.get(200, 0) > 0
    assert set(outcomes) <= {200, 422}
