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
from plabdata.emulator._http import MAX_JSON_DEPTH

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


def _nested(levels: int) -> bytes:
    """An object whose ``nested`` field nests arrays so that the body is ``levels`` deep."""
    inner = levels - 1
    return b'{"nested": ' + b"[" * inner + b"]" * inner + b"}"


def test_nesting_is_bounded_at_max_json_depth(api: httpx.Client, members_path: str) -> None:
    at_bound = api.post(members_path + "/members", content=_nested(MAX_JSON_DEPTH))
    assert at_bound.json()["code"] == "invalid-field"  # parsed: refused for what it says
    beyond = api.post(members_path + "/members", content=_nested(MAX_JSON_DEPTH + 1))
    assert beyond.status_code == 400
    assert beyond.json() == {
        "code": "invalid-json",
        "message": f"The request body is not valid JSON: arrays and objects nest deeper than "
        f"{MAX_JSON_DEPTH} levels.",
    }


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"email": "\\ud800@x.io", "password": "secret12"}', "lone surrogate"),
        (b'{"metadata": {"\\udfff": "v"}}', "lone surrogate"),
        (b'{"metadata": {"k": ["\\udbff\\udbff"]}}', "lone surrogate"),
        (b"[" * 100_000, "nest too deep"),
        (b'{"isVerified": NaN}', "NaN is not a JSON value"),
        (b'{"isVerified": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"isVerified": 1e400}', "64-bit float"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b'{"email": "\xed\xa0\x80@x.io"}', "not UTF-8"),  # a surrogate encoded as bytes
    ],
)
def test_what_no_store_can_hold_is_invalid_json(
    emu: EmulatorHandle, api: httpx.Client, members_path: str, raw: bytes, detail: str
) -> None:
    response = api.post(members_path + "/members", content=raw)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-json"
    assert detail in response.json()["message"]
    assert emu.stats()["internalErrors"] == 0


def test_a_surrogate_pair_is_a_character_not_a_lone_surrogate(
    api: httpx.Client, members_path: str
) -> None:
    raw = b'{"email": "\\ud83d\\ude00@x.io", "password": "secret12"}'
    response = api.post(members_path + "/members", content=raw)
    assert response.status_code == 201
    assert response.json()["auth"]["email"] == "\U0001f600@x.io"


def test_a_failing_fault_step_still_answers_json(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(secret="s3cr3t-value")
    state = app.state.emulator

    def explode(plugin_id: str) -> None:
        raise RuntimeError("bucket on fire")

    state.faults.admit = explode

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
            return await client.get(
                f"/admin/plugins/{state.plugin_id}/members", headers=_headers(state.plugin_id)
            )

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json()["code"] == "internal-error"  # not starlette's bare text
    assert "bucket on fire" in caplog.text and "bucket on fire" not in response.text
    assert state.counters.internal_errors == 1


def test_a_client_gone_before_its_body_is_not_an_internal_error() -> None:
    app = create_app(secret="s3cr3t-value")
    state = app.state.emulator
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/admin/plugins/{state.plugin_id}/members",
        "raw_path": f"/admin/plugins/{state.plugin_id}/members".encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in _headers(state.plugin_id).items()],
        "server": ("emu", 80),
        "client": ("test", 1),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent == []
    assert state.counters.internal_errors == 0
