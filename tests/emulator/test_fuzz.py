"""Fuzz every contract and control route: nothing but an injected fault is ever a 5xx.

Hypothesis drives the app in-process (``httpx.ASGITransport``) with odd methods, path
segments, query strings, headers and bodies — lone surrogate escapes, 100,000 ``[``,
integers of thousands of digits, NaN, non-UTF-8 bytes, empty and huge bodies, wrong types.
Every answer must be below 500 unless it is an injected fault, every refusal must be
``{code, message}`` JSON, and the safety net must never have fired
(``counters.internal_errors == 0``). A few of the nastiest bodies also go over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plabdata.emulator import ConnectionDropped, EmulatorHandle, Faults, Profile, create_app
from plabdata.emulator.model import member_id_for
from plabdata.emulator.state import EmulatorState
from plabdata.wire import PLUGIN_ID_HEADER, SECRET_HEADER

SECRET = "fuzz-secret"
PLUGIN = "plg_fuzz"
EMAIL = "fuzz@example.com"

MEMBER_ID = member_id_for(EMAIL, PLUGIN)

#: A valid body per write route: the fuzzer keeps, drops or spoils each field, so the odd
#: values get past auth and parsing to the validation and storage behind them.
MEMBER_BODY = {"email": "new@example.com", "password": "secret12", "isVerified": True}
PATCH_BODY = {"name": "N", "givenName": "G", "familyName": "F", "pictureUrl": "https://p"}
EVENT_BODY = {
    "eventSource": "web",
    "memberId": MEMBER_ID,
    "location": {"countryCode": "US", "subdivisionCode": "CA"},
    "isInQuota": True,
}
FAULTS_BODY = {"errorRate": 0.2, "rateLimit": 100, "burst": 10, "dropRate": 0.2, "randomSeed": 3}
PROFILE_BODY = {
    "pageCap": 100,
    "overCap": "short",
    "issuer": "https://issuer.test",
    "userClaims": "snake",
    "eventResponse": "text",
    "minPasswordLength": 1,
}
#: Claims override anything, even into values PyJWT's own encoder refuses (iss not a string).
TOKEN_BODY = {
    "memberId": MEMBER_ID,
    "expiresIn": 60,
    "claims": {"iss": 5, "user": {"a": 1}, "exp": 1e300},
}
IDENTITY_BODY = {
    "providerUserId": "u1",
    "accessToken": "a",
    "refreshToken": "r",
    "accessTokenExpiresAtMs": 1,
    "refreshTokenExpiresAtMs": 2,
    "lastUsedAtMs": 3,
    "refreshTokenRevoked": False,
}

#: Every route (``{plugin}``, ``{member}``, ``{email}``, ``{provider}`` filled per example).
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/admin/plugins/{plugin}/members", {}),
    ("POST", "/admin/plugins/{plugin}/members", {**MEMBER_BODY, "metadata": {"k": "v"}}),
    ("GET", "/admin/plugins/{plugin}/members/{member}", {}),
    ("PATCH", "/admin/plugins/{plugin}/members/{member}", {**PATCH_BODY, "metadata": {}}),
    ("DELETE", "/admin/plugins/{plugin}/members/{member}", {}),
    ("GET", "/admin/plugins/{plugin}/member/byEmail/{email}", {}),
    ("GET", "/admin/plugins/{plugin}/members/{member}/identities", {}),
    ("POST", "/admin/plugins/{plugin}/members/{member}/identities/{provider}/refresh", {}),
    ("POST", "/events/create-custom", EVENT_BODY),
    ("GET", "/v1/admin/members/{member}/quota-usage", {}),
    ("GET", "/admin/v1/cert", {}),
    ("GET", "/_emulator/health", {}),
    ("POST", "/_emulator/reset", {}),
    ("POST", "/_emulator/seed", {"members": 2, "randomSeed": 1}),
    ("GET", "/_emulator/faults", {}),
    ("PUT", "/_emulator/faults", FAULTS_BODY),
    ("GET", "/_emulator/profile", {}),
    ("PUT", "/_emulator/profile", PROFILE_BODY),
    ("GET", "/_emulator/stats", {}),
    ("POST", "/_emulator/tokens", TOKEN_BODY),
    ("POST", "/_emulator/keys/rotate", {}),
    ("GET", "/_emulator/members/{member}/plan", {}),
    ("PUT", "/_emulator/members/{member}/plan", {"plan": "pro"}),
    ("PUT", "/_emulator/members/{member}/identities/{provider}", IDENTITY_BODY),
    ("GET", "/_emulator/events", {}),
    ("GET", "/{odd}", {}),
    ("POST", "/admin/plugins/{plugin}/{odd}/{odd}", {}),
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

#: Field names of every body, for bodies built from scratch. Not latencyMs or jitterMs: they
#: would only make the following requests slow (their bounds are tested in test_faults.py).
FIELDS = sorted(
    {
        *MEMBER_BODY,
        *PATCH_BODY,
        *EVENT_BODY,
        *FAULTS_BODY,
        *PROFILE_BODY,
        *TOKEN_BODY,
        *IDENTITY_BODY,
        *("metadata", "members", "randomSeed", "plan", "countryCode", "user", "iss", "exp"),
    }
)

ODD_TEXT = st.sampled_from(
    [
        "",
        "\ud800",
        "a\udfffb@x.io",
        "\ud800@x.io",
        "\x00",
        "None",
        "null",
        "用户@例子.中国",
        "x" * 100_000,
        "short",
        "google",
        "no-content",
        "pro",
        EMAIL,
        MEMBER_ID,
    ]
) | st.text(max_size=12)
#: Small integers (valid seeds, limits…) or ones beyond every bound: never a mid-size seed
#: count that would make one example seed half a million members.
ODD_INTS = (
    st.integers(-3, 60)
    | st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30])
    | st.integers(10**7, 10**400)
)
ODD_FLOATS = st.floats() | st.sampled_from([0.5, 1e-320, 1e308, -0.0])
SCALARS = st.none() | st.booleans() | ODD_INTS | ODD_FLOATS | ODD_TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | ODD_TEXT, children, max_size=4)
    ),
    max_leaves=8,
)
#: Nested values a route can receive after parsing (100,000 levels fail in the parser: raw).
DEEP = st.sampled_from([33, 500]).map(lambda depth: json.loads("[" * depth + "]" * depth))
RAW_BODIES = st.sampled_from(
    [
        b"",
        b"   ",
        b"\xff\xfe\x00",
        b"\xc3\x28",
        b'{"email": "\xed\xa0\x80@x.io", "password": "secret12"}',
        b"[" * 100_000,
        b'{"a":' * 5_000,
        b"9" * 5_000,
        b'{"members": ' + b"9" * 4_000 + b"}",
        b'{"errorRate": NaN}',
        b'{"rateLimit": Infinity}',
        b'{"email": "a@b.c",}',
        b"\xef\xbb\xbf{}",
    ]
) | st.binary(max_size=48)


#: The values most likely to break a route, each drawn often on its own.
NASTY = (
    st.sampled_from(
        [
            "\ud800",
            "\ud800@x.io",
            "a\udfff@x.io",
            {"k": "\udbff"},
            {"\ud800": "v"},
            ["\udc00"],
            "x" * 100_000,
            "",
            2**63,
            -(2**63) - 1,
            10**300,
            1e308,
            -0.0,
            float("inf"),
            float("nan"),
            True,
            None,
            [],
            {},
            {"countryCode": "US", "subdivisionCode": "\ud800"},
            {"user": "u", "iss": 5, "exp": "soon", "aud": None, "iat": 1e300},
            {"user": "\ud800"},
            1e300,
        ]
    )
    | DEEP
)


def _dumps(value: Any) -> bytes:
    # ensure_ascii writes a lone surrogate as its \ud800 escape, as a JSON client would.
    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def spoiled(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    """``template`` with each field kept, dropped or replaced by an odd value, maybe more."""
    body: dict[str, Any] = {}
    for key, value in template.items():
        choice = draw(st.integers(0, 4))
        if choice == 0:
            continue
        body[key] = value if choice < 3 else draw(NASTY if choice == 3 else JSON_VALUES)
    body.update(draw(st.dictionaries(st.sampled_from(FIELDS) | ODD_TEXT, JSON_VALUES, max_size=2)))
    return _dumps(body)


def bodies(template: dict[str, Any]) -> st.SearchStrategy[bytes | None]:
    """Mostly the route's own body spoiled, else any JSON, raw bytes or none at all."""
    return st.one_of(
        spoiled(template),
        spoiled(template),
        JSON_VALUES.map(_dumps),
        RAW_BODIES,
        st.none(),
    )


SEGMENTS = st.sampled_from(
    [
        "",
        "..",
        "%2F",
        "%2f..%2f",
        "%00",
        "%ff",
        "%ed%a0%80",
        "%zz",
        "mem_" + "0" * 40,
        "a" * 5_000,
        "ü",
        "gitlab",
        "github",
        "orkut",
        "plg_other",
    ]
) | st.text(max_size=12)
QUERY_KEYS = st.sampled_from(["limit", "startAfter", "memberId", "source"]) | st.text(max_size=5)
QUERY_VALUES = st.sampled_from(
    ["", "None", "null", "0", "1", "50", "51", "100", "101", "-1", "1e3", "١٢", "9" * 5_000]
) | st.text(max_size=12)
HEADER_BYTES = st.binary(max_size=40).filter(lambda raw: not set(raw) & {0, 10, 13})
#: The right credentials most of the time, so most requests get past the auth check.
SECRETS = st.sampled_from([SECRET, SECRET, SECRET, None, "wrong", "é"])
PLUGIN_IDS = st.one_of(
    st.just(PLUGIN),
    st.just(PLUGIN),
    st.just(PLUGIN),
    st.sampled_from([None, "plg_other"]),
    HEADER_BYTES,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One request: a route's method (or any), its path with real or odd segments, the rest."""
    method, template, body = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 5)) == 0:
        method = draw(st.sampled_from(METHODS))
    real = {"plugin": PLUGIN, "member": MEMBER_ID, "email": EMAIL, "provider": "google"}
    path = template
    for name, value in [*real.items(), ("odd", None)]:
        while "{" + name + "}" in path:
            segment = value if value is not None and draw(st.booleans()) else draw(SEGMENTS)
            # Keep deliberate %-escapes; encode what httpx would refuse in a URL.
            path = path.replace("{" + name + "}", quote(segment, safe="%@+"), 1)
    headers: list[tuple[bytes, bytes]] = []
    secret = draw(SECRETS)
    if secret is not None:
        headers.append((SECRET_HEADER.encode(), secret.encode("latin-1")))
    plugin = draw(PLUGIN_IDS)
    if plugin is not None:
        value = plugin if isinstance(plugin, bytes) else plugin.encode()
        headers.append((PLUGIN_ID_HEADER.encode(), value))
    content_type = draw(st.sampled_from([None, b"application/json", b"text/plain"]) | HEADER_BYTES)
    if content_type is not None:
        headers.append((b"content-type", content_type))
    return {
        "method": method,
        "url": path,
        "params": draw(st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=3)),
        "headers": headers,
        "content": draw(bodies(body)),
    }


def _check(response: httpx.Response, method: str, state: EmulatorState) -> None:
    """Below 500 unless injected; refusals are ``{code, message}``; the net never fired."""
    assert state.counters.internal_errors == 0, (method, response.request.url, response.text)
    if response.status_code >= 500:
        assert response.json()["code"] == "injected-fault", response.text
        assert state.counters.injected_errors > 0
    if response.status_code >= 400 and method != "HEAD":
        body = response.json()
        assert isinstance(body["code"], str) and isinstance(body["message"], str), body
        assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[Any]:
    """One in-process app for the module (each new app makes an RSA key, which is slow)."""
    app = create_app(secret=SECRET, plugin_id=PLUGIN)
    yield app
    app.state.emulator.close()


async def _send_all(app: Any, batch: list[dict[str, Any]]) -> None:
    state: EmulatorState = app.state.emulator
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emu") as client:
        # The member the real segments name, back again after any fuzzed reset or delete.
        await client.post(
            f"/admin/plugins/{PLUGIN}/members",
            headers={SECRET_HEADER: SECRET, PLUGIN_ID_HEADER: PLUGIN},
            json={"email": EMAIL, "password": "secret12"},
        )
        for request in batch:
            try:
                response = await client.request(**request)
            except ConnectionDropped:
                continue  # an injected drop-after-commit: a fault, not a failure
            _check(response, request["method"], state)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(requests(), min_size=1, max_size=3))
def test_no_route_answers_5xx_to_anything(fuzz_app: Any, batch: list[dict[str, Any]]) -> None:
    state: EmulatorState = fuzz_app.state.emulator
    try:
        asyncio.run(_send_all(fuzz_app, batch))
    finally:
        # Knobs one example sets (error rate, page cap…) must not leak into the next.
        state.faults.configure(Faults())
        state.profile = Profile()
    assert state.counters.internal_errors == 0


SURROGATE_MEMBER = b'{"email": "\\ud800@x.io", "password": "secret12"}'


@pytest.mark.parametrize(
    ("method", "path", "content", "code"),
    [
        ("POST", "/admin/plugins/{plugin}/members", SURROGATE_MEMBER, "invalid-json"),
        ("POST", "/admin/plugins/{plugin}/members", b'{"\\udfff": 1}', "invalid-json"),
        (
            "PATCH",
            "/admin/plugins/{plugin}/members/m",
            b'{"metadata": {"k": "\\udbff"}}',
            "invalid-json",
        ),
        ("POST", "/events/create-custom", b"[" * 100_000, "invalid-json"),
        (
            "POST",
            "/events/create-custom",
            b'{"eventSource": ' + b"[" * 40 + b"]" * 40 + b"}",
            "invalid-json",
        ),
        ("POST", "/admin/plugins/{plugin}/members", b"\xff\xfe{}", "invalid-json"),
        (
            "POST",
            "/admin/plugins/{plugin}/members",
            b'{"email": "\xed\xa0\x80@x.io"}',
            "invalid-json",
        ),
        (
            "POST",
            "/admin/plugins/{plugin}/members",
            b'{"isVerified": ' + b"9" * 5_000 + b"}",
            "invalid-json",
        ),
        ("GET", "/admin/plugins/{plugin}/members?limit=" + "9" * 5_000, b"", "invalid-limit"),
        ("PUT", "/_emulator/faults", b'{"errorRate": NaN}', "invalid-json"),
        ("PUT", "/_emulator/faults", b'{"rateLimit": 1e-320}', "invalid-faults"),
        ("PUT", "/_emulator/faults", b'{"latencyMs": ' + b"9" * 400 + b"}", "invalid-faults"),
        ("PUT", "/_emulator/profile", b'{"issuer": "\\ud800"}', "invalid-json"),
        ("PUT", "/_emulator/members/{member}/plan", b'{"plan": ["pro"]}', "invalid-plan"),
        (
            "PUT",
            "/_emulator/members/{member}/identities/google",
            b'{"lastUsedAtMs": 9223372036854775808}',
            "invalid-lastusedatms",
        ),
    ],
)
def test_nasty_bodies_over_real_http_are_400(
    emu: EmulatorHandle, method: str, path: str, content: bytes, code: str
) -> None:
    (member_id,) = emu.seed(1)
    url = emu.url + path.format(plugin=emu.plugin_id, member=member_id)
    response = httpx.request(method, url, headers=emu.settings.headers(), content=content)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert emu.stats()["internalErrors"] == 0
