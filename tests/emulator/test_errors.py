"""Bad input never yields a 500 or a stack trace: every error is JSON with a code and message."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plabdata.emulator import ConnectionDropped, EmulatorHandle, Faults, create_app

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "email",
        "password",
        "isVerified",
        "metadata",
        "name",
        "givenName",
        "pictureUrl",
        "eventSource",
        "memberId",
        "location",
        "isInQuota",
        "countryCode",
    ]
)


def _headers(plugin_id: str) -> dict[str, str]:
    return {"X-PluginLab-Admin-Sdk-Secret": "s3cr3t-value", "X-PluginLab-Plugin-Id": plugin_id}


def _assert_clean_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["code"], str) and isinstance(body["message"], str)
        assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "raw", [b"{bad", b"", b"[]", b'"text"', b"null", b"\xff\xfe", b'{"email": "a@b.c",}']
)
def test_malformed_bodies_are_400(api: httpx.Client, members_path: str, raw: bytes) -> None:
    for method, path in [
        ("POST", members_path + "/members"),
        ("POST", "/events/create-custom"),
    ]:
        response = api.request(method, path, content=raw)
        assert response.status_code == 400
        assert response.json()["code"] in ("invalid-json", "invalid-body")


def test_unknown_route_and_wrong_method(api: httpx.Client, members_path: str) -> None:
    missing = api.get("/admin/v2/whatever")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not-found"
    wrong = api.put(members_path + "/members")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method-not-allowed"
    assert "GET" in wrong.headers["allow"]
    assert api.get("/_emulator/nothing").json()["code"] == "not-found"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(FIELDS, JSON_VALUES, max_size=5) | JSON_VALUES,
    target=st.sampled_from(["create", "patch", "event"]),
)
def test_random_bodies_never_500(emulator: EmulatorHandle, body: Any, target: str) -> None:
    members_path = f"/admin/plugins/{emulator.plugin_id}"
    with httpx.Client(base_url=emulator.url, headers=emulator.settings.headers()) as api:
        if target == "create":
            response = api.post(members_path + "/members", json=body)
        elif target == "patch":
            response = api.patch(members_path + "/members/mem_" + "a" * 40, json=body)
        else:
            response = api.post("/events/create-custom", json=body)
    _assert_clean_error(response)


def test_internal_errors_are_json_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(secret="s3cr3t-value")
    state = app.state.emulator

    def explode(*args: object) -> None:
        raise RuntimeError("disk on fire")

    state.store.count_members = explode

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
            return await client.get(
                f"/admin/plugins/{state.plugin_id}/members",
                headers=_headers(state.plugin_id),
            )

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json()["code"] == "internal-error"
    assert "disk on fire" not in response.text
    assert "disk on fire" in caplog.text
    assert state.counters.internal_errors == 1


def test_in_process_app_serves_the_contract_and_signals_drops() -> None:
    app = create_app(secret="s3cr3t-value", faults=Faults(drop_rate=1.0))
    plugin_id = app.state.emulator.plugin_id

    async def call() -> tuple[httpx.Response, Exception | None]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
            headers = _headers(plugin_id)
            listed = await client.get(f"/admin/plugins/{plugin_id}/members", headers=headers)
            try:
                await client.post(
                    "/events/create-custom",
                    headers=headers,
                    content=json.dumps({"eventSource": "a"}),
                )
            except ConnectionDropped as exc:
                return listed, exc
            return listed, None

    listed, dropped = asyncio.run(call())
    assert listed.status_code == 200
    assert isinstance(dropped, ConnectionDropped)
    assert len(app.state.emulator.store.events()) == 1
