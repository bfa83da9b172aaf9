"""The ``/_emulator`` control API: reset, seed, stats, events, plans, identities, validation."""

from __future__ import annotations

import httpx
import pytest

from plabdata.emulator import EmulatorHandle, Faults
from plabdata.errors import BadRequest, NotFound


def test_reset_deletes_data_and_counters_but_keeps_keys(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.seed(5)
    api.get(members_path + "/members")
    kid = emu.health()["kid"]
    emu.reset()
    stats = emu.stats()
    assert (stats["members"], stats["identities"], stats["events"], stats["requests"]) == (
        0,
        0,
        0,
        0,
    )
    assert emu.health()["kid"] == kid


def test_stats_count_requests_statuses_and_events(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    ids = emu.seed(3)
    api.get(members_path + f"/members/{ids[0]}")
    api.get(members_path + "/members/mem_nope")
    api.post("/events/create-custom", json={"eventSource": "slack", "memberId": ids[1]})
    stats = emu.stats()
    assert stats["members"] == 3
    assert stats["requests"] == 3
    assert stats["responsesByStatus"] == {"200": 2, "404": 1}
    assert stats["eventsBySource"]["SLACK"] >= 1
    assert stats["eventsByMember"][ids[1]] >= 1
    assert stats["events"] == sum(stats["eventsBySource"].values())


def test_events_filters(emu: EmulatorHandle, api: httpx.Client, members_path: str) -> None:
    member = api.post(
        members_path + "/members", json={"email": "ev@x.com", "password": "secret1"}
    ).json()
    for source in ("web", "api", "web"):
        api.post("/events/create-custom", json={"eventSource": source, "memberId": member["id"]})
    api.post("/events/create-custom", json={"eventSource": "web"})
    assert len(emu.events()) == 4
    assert len(emu.events(member_id=member["id"])) == 3
    assert len(emu.events(source="web")) == 3
    assert len(emu.events(member_id=member["id"], source="WEB")) == 2
    ids = [event["id"] for event in emu.events()]
    assert ids == sorted(ids)


def test_faults_round_trip(emu: EmulatorHandle) -> None:
    faults = Faults(
        latency_ms=1,
        jitter_ms=2,
        error_rate=0.1,
        rate_limit=1000,
        burst=50,
        drop_rate=0.2,
        random_seed=9,
    )
    assert emu.set_faults(faults) == faults
    assert emu.faults() == faults
    assert emu.set_faults(error_rate=0.3) == Faults(error_rate=0.3)  # replaces, not merges
    emu.clear_faults()
    assert emu.faults() == Faults()
    with pytest.raises(TypeError):
        emu.set_faults(faults, error_rate=0.1)


def test_plan_control(emu: EmulatorHandle) -> None:
    (member_id,) = emu.seed(1)
    emu.set_plan(member_id, "unlimited")
    assert emu.plan(member_id)["plan"] == "unlimited"
    with pytest.raises(BadRequest):
        emu.set_plan(member_id, "platinum")
    with pytest.raises(NotFound):
        emu.set_plan("mem_nope", "pro")


def test_set_identity_creates_and_updates(emu: EmulatorHandle, api: httpx.Client) -> None:
    (member_id,) = emu.seed(1)
    created = emu.set_identity(member_id, "microsoft", accessToken="a", lastUsedAtMs=5)
    assert created["provider"] == "microsoft" and created["providerUserId"]
    updated = emu.set_identity(
        member_id, "microsoft", access_token=None, refresh_token_revoked=True
    )
    assert "accessToken" not in updated and updated["lastUsedAtMs"] == 5
    assert updated["refreshTokenRevoked"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/seed", {"members": -1}, "invalid-members"),
        ("POST", "/seed", {"members": "10"}, "invalid-members"),
        ("POST", "/seed", {"members": 1, "randomSeed": 1.5}, "invalid-randomseed"),
        ("POST", "/seed", {"count": 1}, "invalid-field"),
        ("POST", "/seed", [1], "invalid-body"),
        ("PUT", "/faults", {"errorRate": None}, "invalid-faults"),
        ("POST", "/tokens", {}, "invalid-member-id"),
        ("POST", "/tokens", {"memberId": "m", "claims": []}, "invalid-claims"),
        ("POST", "/tokens", {"memberId": "m", "expiresIn": "1h"}, "invalid-expiresin"),
        ("PUT", "/members/m/plan", {"plan": 3}, "invalid-plan"),
        ("PUT", "/members/m/plan", {"plan": ["pro"]}, "invalid-plan"),  # unhashable: was a 500
        ("PUT", "/members/m/plan", {"plan": {"pro": 1}}, "invalid-plan"),
        ("PUT", "/profile", {"pageCap": 0}, "invalid-profile"),
        ("PUT", "/members/m/identities/google", {"lastUsedAtMs": 2**63}, "invalid-lastusedatms"),
        (
            "PUT",
            "/members/m/identities/google",
            {"accessTokenExpiresAtMs": -(2**63) - 1},
            "invalid-accesstokenexpiresatms",
        ),
        ("PUT", "/members/m/identities/google", {"accessToken": 1}, "invalid-accesstoken"),
        ("PUT", "/members/m/identities/google", {"lastUsedAtMs": "x"}, "invalid-lastusedatms"),
        (
            "PUT",
            "/members/m/identities/google",
            {"refreshTokenRevoked": 1},
            "invalid-refreshtokenrevoked",
        ),
        ("PUT", "/members/m/identities/google", {"secret": 1}, "invalid-field"),
        ("PUT", "/members/m/identities/orkut", {}, "invalid-provider"),
    ],
)
def test_control_validation(
    emu: EmulatorHandle, method: str, path: str, body: object, code: str
) -> None:
    response = httpx.request(method, emu.url + "/_emulator" + path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


def test_control_bad_json(emu: EmulatorHandle) -> None:
    response = httpx.post(emu.url + "/_emulator/seed", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-json"
