"""Fault knobs: latency, injected 5xx errors, the rate limit, and drop-after-commit."""

from __future__ import annotations

import time

import httpx
import pluginlab_admin
import pytest
import requests

from plabdata.emulator import EmulatorHandle, Faults
from plabdata.emulator.faults import FaultInjector, FaultsInvalid


def _statuses(api: httpx.Client, members_path: str, n: int) -> list[int]:
    return [api.get(members_path + "/members?limit=1").status_code for _ in range(n)]


def test_no_faults_by_default(emu: EmulatorHandle, api: httpx.Client, members_path: str) -> None:
    assert emu.faults() == Faults()
    response = api.get(members_path + "/members")
    assert response.status_code == 200
    assert not any(name.lower().startswith("ratelimit") for name in response.headers)


def test_latency_delays_at_least_the_fixed_part(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_faults(latency_ms=150, jitter_ms=50)
    started = time.perf_counter()
    assert api.get(members_path + "/members").status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_control_routes_bypass_faults(emu: EmulatorHandle) -> None:
    emu.set_faults(error_rate=1.0, rate_limit=1, burst=1, latency_ms=0)
    for _ in range(5):
        emu.stats()
    assert emu.stats()["requests"] == 0


def test_error_rate_gives_a_seeded_mix_of_5xx(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_faults(error_rate=0.5, random_seed=7)
    first = _statuses(api, members_path, 60)
    emu.set_faults(error_rate=0.5, random_seed=7)
    second = _statuses(api, members_path, 60)
    assert first == second
    assert {500, 502, 503, 200} == set(first)
    emu.set_faults(error_rate=0.5, random_seed=8)
    third = _statuses(api, members_path, 60)
    assert third != first
    injected = sum(status != 200 for status in first + second + third)
    assert emu.stats()["injectedErrors"] == injected


def test_injected_error_body_and_nothing_processed(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_faults(error_rate=1.0)
    response = api.post(members_path + "/members", json={"email": "e@x.com", "password": "secret1"})
    assert response.status_code in (500, 502, 503)
    assert response.json()["code"] == "injected-fault"
    emu.clear_faults()
    assert api.get(members_path + "/member/byEmail/e@x.com").status_code == 404


def test_injected_errors_come_before_auth(emu: EmulatorHandle) -> None:
    emu.set_faults(error_rate=1.0)
    response = httpx.get(f"{emu.url}/admin/plugins/{emu.plugin_id}/members")
    assert response.status_code in (500, 502, 503)


def test_rate_limit_answers_429_with_retry_after_and_headers(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_faults(rate_limit=0.2, burst=3)  # slow refill: robust on a loaded machine
    responses = [api.get(members_path + "/members") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    for response in responses:
        # The sustained rate (1 per 5 s), not the burst, with the burst in the policy.
        assert response.headers["RateLimit-Limit"] == "1"
        assert response.headers["RateLimit-Policy"] == "1;w=5;burst=3"
        assert int(response.headers["RateLimit-Remaining"]) >= 0
        assert int(response.headers["RateLimit-Reset"]) >= 0
    assert [r.headers["RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    limited = responses[-1]
    assert limited.json()["code"] == "rate-limited"
    assert limited.headers["Retry-After"].isdigit() and int(limited.headers["Retry-After"]) >= 1
    assert emu.stats()["rateLimited"] == 1


def test_rate_limit_headers_on_error_responses_too(emu: EmulatorHandle) -> None:
    emu.set_faults(rate_limit=100)
    response = httpx.get(f"{emu.url}/admin/plugins/{emu.plugin_id}/members")
    assert response.status_code == 401
    assert "RateLimit-Remaining" in response.headers


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    injector = FaultInjector(Faults(rate_limit=2, burst=2), clock=lambda: now[0])
    assert [injector.admit("p").allowed for _ in range(3)] == [True, True, False]
    refused = injector.admit("p")
    assert refused.retry_after == 1
    now[0] += 0.5
    assert injector.admit("p").allowed
    assert not injector.admit("p").allowed
    assert injector.admit("other-plugin").allowed  # buckets are per plugin id
    slow = FaultInjector(Faults(rate_limit=0.25), clock=lambda: now[0])
    assert slow.admit("p").allowed
    assert slow.admit("p").retry_after == 4


@pytest.mark.parametrize(
    "knobs",
    [
        {"latency_ms": -1},
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"rate_limit": 0},
        {"burst": 5},
        {"rate_limit": 5, "burst": 0.5},
        {"random_seed": "x"},
        {"error_rate": "0.5"},
    ],
)
def test_invalid_faults_are_refused(emu: EmulatorHandle, knobs: dict[str, object]) -> None:
    with pytest.raises(FaultsInvalid):
        Faults(**knobs)  # type: ignore[arg-type]
    body = {_camel(key): value for key, value in knobs.items()}
    response = httpx.put(emu.url + "/_emulator/faults", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-faults"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_non_finite_knobs_are_refused(emu: EmulatorHandle) -> None:
    # NaN and Infinity are not JSON; 1e400 is, but parses to an infinity no answer can carry.
    for raw in (b'{"latencyMs": Infinity}', b'{"rateLimit": NaN}', b'{"errorRate": 1e400}'):
        response = httpx.put(emu.url + "/_emulator/faults", content=raw)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid-json"
    with pytest.raises(FaultsInvalid):
        Faults(latency_ms=float("inf"))


@pytest.mark.parametrize(
    "knobs",
    [
        {"rateLimit": 1e-320},  # 1 / rate is infinite: math.ceil of it raised OverflowError
        {"rateLimit": 0.0001},
        {"rateLimit": 1e10},
        {"rateLimit": 10, "burst": 1e10},
        {"latencyMs": 3_600_001},  # an hour at most: 1e300 ms overflows the loop's timer
        {"jitterMs": 10**400},  # an int float() cannot hold: was an OverflowError
        {"errorRate": 10**400},
    ],
)
def test_knobs_beyond_their_bounds_are_refused(
    emu: EmulatorHandle, knobs: dict[str, object]
) -> None:
    response = httpx.put(emu.url + "/_emulator/faults", json=knobs)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid-faults"
    assert emu.faults() == Faults()


def test_the_slowest_rate_limit_still_answers(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_faults(rate_limit=0.001, burst=1)
    assert api.get(members_path + "/members").status_code == 200
    refused = api.get(members_path + "/members")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1000"
    assert refused.headers["RateLimit-Policy"] == "1;w=1000;burst=1"
    assert emu.stats()["internalErrors"] == 0


def test_unknown_fault_key_is_refused(emu: EmulatorHandle) -> None:
    response = httpx.put(emu.url + "/_emulator/faults", json={"latency": 5})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-faults"


def test_drop_after_commit_with_httpx(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        api.post(members_path + "/members", json={"email": "d@x.com", "password": "secret1"})
    # Reads are never dropped, and the write was committed.
    found = api.get(members_path + "/member/byEmail/d@x.com")
    assert found.status_code == 200
    member_id = found.json()["id"]
    with pytest.raises(httpx.RemoteProtocolError):
        api.patch(members_path + f"/members/{member_id}", json={"name": "Dropped"})
    assert api.get(members_path + f"/members/{member_id}").json()["name"] == "Dropped"
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/events/create-custom", json={"eventSource": "web", "memberId": member_id})
    assert len(emu.events(member_id=member_id)) == 1
    with pytest.raises(httpx.RemoteProtocolError):
        api.delete(members_path + f"/members/{member_id}")
    assert api.get(members_path + f"/members/{member_id}").status_code == 404
    # A refused write is answered normally.
    assert api.delete(members_path + f"/members/{member_id}").status_code == 404
    stats = emu.stats()
    assert stats["drops"] == 4
    assert stats["internalErrors"] == 0


def test_drop_after_commit_with_the_official_client(
    emu: EmulatorHandle, official_app: pluginlab_admin.App
) -> None:
    emu.set_faults(drop_rate=1.0)
    auth = official_app.get_auth()
    with pytest.raises(requests.ConnectionError):
        auth.create_member("official@x.com", "secret1")
    emu.clear_faults()
    assert auth.get_member_by_email("official@x.com") is not None


def test_drops_are_seeded(emu: EmulatorHandle, api: httpx.Client, members_path: str) -> None:
    def run() -> list[bool]:
        emu.reset()
        emu.set_faults(drop_rate=0.5, random_seed=3)
        outcomes = []
        for i in range(16):
            try:
                api.post("/events/create-custom", json={"eventSource": f"s{i}"})
                outcomes.append(False)
            except httpx.RemoteProtocolError:
                outcomes.append(True)
        assert len(emu.events()) == 16  # every write committed, answered or not
        return outcomes

    first = run()
    assert first == run()
    assert any(first) and not all(first)
