"""User-token verification (plabdata/auth/_tokens.py) against keys served by the emulator.

The attack tokens are crafted by hand here (another key, ``alg: none``, HS256 keyed with the
public key, tampered payloads, made-up ``kid`` values); the good ones are minted by the emulator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from plabdata.auth import _tokens as tokens_module
from plabdata.auth._tokens import (
    TokenPayload,
    TokenUser,
    TokenVerifier,
    verify_bearer,
    verify_token,
)
from plabdata.config import ENV_CERT_URL, ENV_PLUGIN_ID
from plabdata.emulator import EmulatorHandle
from plabdata.errors import (
    ApiError,
    ConfigError,
    TokenAudienceError,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenSignatureError,
)
from plabdata.wire import DEFAULT_ISSUER
from tests.auth.local_cert import AUDIENCE, CertServer, Signer, claims

DOCS = Path(__file__).resolve().parents[2] / "README.md"
# One TLS context for every test client: building one per httpx.Client costs ~0.2 s each.
_TLS = ssl.create_default_context()


# -- helpers -------------------------------------------------------------------------------------


def _mint(emu: EmulatorHandle, member_id: str, **overrides: Any) -> str:
    """An emulator token issued by PluginLab's issuer, whatever the emulator's profile mints."""
    return emu.mint_token(member_id, **{"iss": DEFAULT_ISSUER, **overrides})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _compact(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{head}.{body}.{_b64(signature)}"


class CertCounter:
    """An httpx client whose requests to the cert path are counted (independently of plabdata)."""

    def __init__(self, cert_url: str) -> None:
        self.path = httpx.URL(cert_url).path
        self.count = 0
        self.client = httpx.Client(
            event_hooks={"request": [self._on_request]}, timeout=10, verify=_TLS
        )

    def _on_request(self, request: httpx.Request) -> None:
        if request.url.path == self.path:
            self.count += 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def member_id(emu: EmulatorHandle) -> str:
    return emu.seed(3, random_seed=6)[0]


@pytest.fixture
def counter(emu: EmulatorHandle) -> Iterator[CertCounter]:
    counter = CertCounter(emu.settings.cert_url)
    yield counter
    counter.client.close()


@pytest.fixture
def verifier(emu: EmulatorHandle, counter: CertCounter) -> Iterator[TokenVerifier]:
    with TokenVerifier(emu.settings, http=counter.client) as verifier:
        yield verifier


@pytest.fixture
def token(emu: EmulatorHandle, member_id: str) -> str:
    return _mint(emu, member_id)


def _public_pem(emu: EmulatorHandle, fmt: serialization.PublicFormat) -> bytes:
    jwks = httpx.get(emu.settings.cert_url).json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    return bytes(key.public_bytes(serialization.Encoding.PEM, fmt))


# -- the good path -------------------------------------------------------------------------------


def test_valid_token_gives_typed_payload(
    emu: EmulatorHandle, member_id: str, token: str, verifier: TokenVerifier
) -> None:
    payload = verifier.verify(token)
    _, claims, _ = _segments(token)
    user = claims["user"]
    assert payload == TokenPayload(
        uid=member_id,
        iss=claims["iss"],
        aud=f"plugin:{emu.plugin_id}:admin",
        iat=claims["iat"],
        exp=claims["exp"],
        user=TokenUser(
            id=member_id,
            email=user["email"],
            name=user.get("name"),
            given_name=user.get("givenName"),
            plan_id=user.get("planId"),
            price_id=user.get("priceId"),
            family_name=user.get("familyName"),
        ),
    )
    assert payload.user.plan_id is not None
    assert payload.exp - payload.iat == 3600


def test_payload_agrees_with_the_official_client(
    official_app: Any, token: str, verifier: TokenVerifier
) -> None:
    ours = verifier.verify(token)
    theirs = official_app.get_auth().verify_token(token)
    assert (ours.uid, ours.iss, ours.aud, ours.iat, ours.exp) == (
        theirs.uid,
        theirs.iss,
        theirs.aud,
        theirs.iat,
        theirs.exp,
    )
    assert vars(theirs.user) == {
        "id": ours.user.id,
        "email": ours.user.email,
        "name": ours.user.name,
        "given_name": ours.user.given_name,
        "plan_id": ours.user.plan_id,
        "price_id": ours.user.price_id,
    }


def test_plan_change_shows_in_the_next_token(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier
) -> None:
    emu.set_plan(member_id, "free")
    free = verifier.verify(_mint(emu, member_id)).user
    emu.set_plan(member_id, "pro")
    pro = verifier.verify(_mint(emu, member_id)).user
    assert free.plan_id and pro.plan_id and pro.price_id
    assert (free.plan_id, free.price_id) != (pro.plan_id, pro.price_id)
    assert free.price_id is None


def test_jwks_is_fetched_once_for_many_verifications(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier, counter: CertCounter
) -> None:
    tokens = [_mint(emu, member_id, expires_in=600 + i) for i in range(5)]
    for _ in range(20):
        for token in tokens:
            verifier.verify(token)
    assert counter.count == 1
    assert verifier.fetches == 1


def test_jwks_is_refetched_after_the_ttl(
    emu: EmulatorHandle, token: str, counter: CertCounter
) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(emu.settings, ttl=60, http=counter.client, clock=clock)
    verifier.verify(token)
    clock.now += 59
    verifier.verify(token)
    assert counter.count == 1
    clock.now += 2
    verifier.verify(token)
    assert counter.count == 2


def test_module_verify_token_reuses_one_verifier(
    emu: EmulatorHandle, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "_shared", {})
    for _ in range(5):
        assert verify_token(token, settings=emu.settings).uid == _segments(token)[1]["uid"]
    assert verify_bearer(f"Bearer {token}", settings=emu.settings).uid
    (shared,) = tokens_module._shared.values()
    assert shared.fetches == 1


def test_module_verify_token_reads_the_environment_without_a_secret(
    emu: EmulatorHandle, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "_shared", {})
    monkeypatch.delenv("PLUGINLAB_SECRET", raising=False)
    monkeypatch.setenv(ENV_PLUGIN_ID, emu.plugin_id)
    monkeypatch.setenv(ENV_CERT_URL, emu.settings.cert_url)
    assert verify_token(token).aud == emu.settings.audience
    monkeypatch.setenv(ENV_PLUGIN_ID, "another-plugin")
    with pytest.raises(TokenAudienceError):
        verify_token(token)


def test_verifier_needs_a_complete_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PLUGIN_ID, raising=False)
    with pytest.raises(ConfigError):
        TokenVerifier(cert_url="https://example.test/cert")
    with pytest.raises(ConfigError):
        TokenVerifier()
    with pytest.raises(ConfigError):
        TokenVerifier(cert_url="https://example.test/cert", audience="a", leeway=-1)


def test_verifier_is_thread_safe_and_fetches_once(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier, counter: CertCounter
) -> None:
    tokens = [_mint(emu, member_id, expires_in=900 + i) for i in range(4)]
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        try:
            for i in range(50):
                assert verifier.verify(tokens[i % 4]).uid == member_id
        except BaseException as exc:  # collected and asserted on below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert counter.count == 1


# -- expiry and audience -------------------------------------------------------------------------


def test_expired_token(emu: EmulatorHandle, member_id: str, verifier: TokenVerifier) -> None:
    with pytest.raises(TokenExpired, match="expired"):
        verifier.verify(_mint(emu, member_id, expires_in=-120))


def test_leeway_covers_small_clock_skew(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier
) -> None:
    token = _mint(emu, member_id, expires_in=-5)
    assert verifier.verify(token).uid == member_id  # default leeway 30 s
    with pytest.raises(TokenExpired):
        verifier.verify(token, leeway=0)


def test_issued_in_the_future(emu: EmulatorHandle, member_id: str, verifier: TokenVerifier) -> None:
    future = int(time.time()) + 600
    token = _mint(emu, member_id, iat=future, exp=future + 3600)
    with pytest.raises(TokenExpired, match="not valid yet"):
        verifier.verify(token)
    near = int(time.time()) + 5
    assert verifier.verify(_mint(emu, member_id, iat=near)).iat == near


def test_wrong_audience(emu: EmulatorHandle, member_id: str, verifier: TokenVerifier) -> None:
    token = _mint(emu, member_id, aud="plugin:someone-else:admin")
    with pytest.raises(TokenAudienceError):
        verifier.verify(token)


def test_token_for_this_plugin_refused_by_another_plugin(
    emu: EmulatorHandle, token: str, counter: CertCounter
) -> None:
    other = TokenVerifier(emu.settings.replace(plugin_id="another-plugin"), http=counter.client)
    with pytest.raises(TokenAudienceError):
        other.verify(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "aud"])
def test_null_registered_claim_is_malformed(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier, claim: str
) -> None:
    null_claim: dict[str, Any] = {claim: None}
    token = _mint(emu, member_id, **null_claim)
    with pytest.raises(TokenMalformed):
        verifier.verify(token)


@pytest.mark.parametrize(
    "overrides",
    [
        {"uid": None},
        {"user": {"givenName": 3}},
        {"user": {"id": 5}},
        {"user": {"email": None}},
        {"user": {"planId": ["pro"]}},
        {"exp": "tomorrow"},
    ],
)
def test_claims_of_the_wrong_type_are_malformed(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier, overrides: dict[str, Any]
) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(_mint(emu, member_id, **overrides))


# -- signatures and algorithms -------------------------------------------------------------------


def test_tampered_payload(token: str, verifier: TokenVerifier) -> None:
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["user"]["planId"] = "enterprise-forever"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TokenSignatureError):
        verifier.verify(forged)


def test_tampered_signature(token: str, verifier: TokenVerifier) -> None:
    header, payload, signature = token.split(".")
    raw = bytearray(_unb64(signature))
    raw[10] ^= 0x01
    with pytest.raises(TokenSignatureError):
        verifier.verify(f"{header}.{payload}.{_b64(bytes(raw))}")


def test_signature_from_another_key(token: str, verifier: TokenVerifier) -> None:
    header, claims, _ = _segments(token)
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, intruder, algorithm="PS256", headers={"kid": header["kid"]})
    with pytest.raises(TokenSignatureError, match="does not verify"):
        verifier.verify(forged)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_alg_none_is_rejected(token: str, verifier: TokenVerifier, alg: str) -> None:
    header, claims, _ = _segments(token)
    for signature in (b"", b"x"):
        unsigned = _compact({**header, "alg": alg}, claims, signature)
        with pytest.raises(TokenSignatureError, match="not accepted"):
            verifier.verify(unsigned)


def test_missing_alg_is_rejected(token: str, verifier: TokenVerifier) -> None:
    header, claims, signature = _segments(token)
    del header["alg"]
    with pytest.raises(TokenSignatureError):
        verifier.verify(_compact(header, claims, _unb64(signature)))


@pytest.mark.parametrize(
    "fmt", [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1]
)
def test_hs256_keyed_with_the_public_key_is_rejected(
    emu: EmulatorHandle, token: str, verifier: TokenVerifier, fmt: serialization.PublicFormat
) -> None:
    # The classic algorithm-confusion attack: the attacker knows the public key (it is public)
    # and signs HS256 with its PEM text, hoping the verifier feeds the same "key" to HMAC.
    header, claims, _ = _segments(token)
    pem = _public_pem(emu, fmt)
    signing_input = ".".join(_compact({**header, "alg": "HS256"}, claims).split(".")[:2])
    for secret in (pem, pem.strip()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(TokenSignatureError, match="not accepted"):
            verifier.verify(f"{signing_input}.{_b64(mac)}")


@pytest.mark.parametrize("alg", ["RS256", "PS384", "PS512", "ES256", "HS512"])
def test_other_algorithms_are_rejected(token: str, verifier: TokenVerifier, alg: str) -> None:
    header, claims, _ = _segments(token)
    key: Any
    if alg.startswith("ES"):
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg.startswith("HS"):
        key = "a" * 64
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, key, algorithm=alg, headers={"kid": header["kid"]})
    with pytest.raises(TokenSignatureError, match="PS256"):
        verifier.verify(forged)


def test_jws_extensions_are_refused(token: str, verifier: TokenVerifier) -> None:
    header, claims, signature = _segments(token)
    for extra in ({"crit": ["exp"]}, {"b64": False}):
        with pytest.raises(TokenMalformed, match="extensions"):
            verifier.verify(_compact({**header, **extra}, claims, _unb64(signature)))


def test_not_before_in_the_future(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier
) -> None:
    with pytest.raises(TokenExpired, match="nbf"):
        verifier.verify(_mint(emu, member_id, nbf=int(time.time()) + 600))


def test_audience_list(emu: EmulatorHandle, member_id: str, verifier: TokenVerifier) -> None:
    ours = emu.settings.audience
    assert verifier.verify(_mint(emu, member_id, aud=["other", ours])).aud == ours
    with pytest.raises(TokenAudienceError):
        verifier.verify(_mint(emu, member_id, aud=["other", "plugin:x:admin"]))
    with pytest.raises(TokenMalformed):
        verifier.verify(_mint(emu, member_id, aud=[ours, 7]))


# -- the verified-token cache --------------------------------------------------------------------


def test_cached_token_still_expires(
    emu: EmulatorHandle, member_id: str, counter: CertCounter
) -> None:
    wall = FakeClock()
    wall.now = time.time()
    verifier = TokenVerifier(emu.settings, http=counter.client, wall_clock=wall)
    token = _mint(emu, member_id, expires_in=120)
    assert verifier.verify(token).uid == member_id
    assert verifier.verify(token).uid == member_id  # served from the cache
    wall.now += 120 + 31
    with pytest.raises(TokenExpired):
        verifier.verify(token)
    assert verifier.verify(token, leeway=60).uid == member_id


def test_cached_token_from_a_retired_key_is_refused(
    emu: EmulatorHandle, member_id: str, counter: CertCounter
) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(emu.settings, ttl=60, http=counter.client, clock=clock)
    token = _mint(emu, member_id)
    verifier.verify(token)
    emu.rotate_key()
    emu.rotate_key()  # the JWKS publishes two keys: the token's key is gone now
    assert verifier.verify(token).uid == member_id  # within the TTL the cached keys stand
    clock.now += 61
    with pytest.raises(TokenSignatureError, match="kid"):
        verifier.verify(token)


def test_cache_can_be_turned_off_and_is_bounded(emu: EmulatorHandle, member_id: str) -> None:
    tokens = [_mint(emu, member_id, expires_in=300 + i) for i in range(5)]
    with TokenVerifier(emu.settings, cache_size=0) as uncached:
        for token in tokens:
            uncached.verify(token)
        assert uncached._verified == {}
    with TokenVerifier(emu.settings, cache_size=3) as small:
        for token in tokens:
            small.verify(token)
        assert 1 <= len(small._verified) <= 3


# -- key rotation and unknown kids ---------------------------------------------------------------


def test_unknown_kid_after_rotation_refetches_once(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier, counter: CertCounter
) -> None:
    old = _mint(emu, member_id)
    verifier.verify(old)
    assert counter.count == 1
    emu.rotate_key()
    new = _mint(emu, member_id)
    assert _segments(new)[0]["kid"] != _segments(old)[0]["kid"]
    assert verifier.verify(new).uid == member_id
    assert counter.count == 2
    for token in (new, _mint(emu, member_id, expires_in=60), old):
        verifier.verify(token)  # the old key stays published: tokens in flight still verify
    assert counter.count == 2


def test_made_up_kids_cannot_hammer_the_cert_endpoint(
    emu: EmulatorHandle, token: str, counter: CertCounter
) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(emu.settings, http=counter.client, clock=clock)
    verifier.verify(token)
    header, claims, signature = _segments(token)
    for i in range(50):
        garbage = _compact({**header, "kid": f"made-up-{i}"}, claims, _unb64(signature))
        with pytest.raises(TokenSignatureError, match="kid"):
            verifier.verify(garbage)
    assert counter.count == 2  # the first fetch and one refetch for the first unknown kid
    clock.now += 10.5
    with pytest.raises(TokenSignatureError):
        verifier.verify(_compact({**header, "kid": "made-up-again"}, claims, _unb64(signature)))
    assert counter.count == 3
    assert verifier.verify(token).uid == claims["uid"]
    assert counter.count == 3


def test_cert_outage_keeps_the_previous_keys_for_a_while(
    emu: EmulatorHandle, token: str, counter: CertCounter, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    verifier = TokenVerifier(emu.settings, ttl=60, http=counter.client, clock=clock)
    verifier.verify(token)
    emu.set_faults(error_rate=1.0)
    clock.now += 61
    with caplog.at_level(logging.WARNING, logger="plabdata.tokens"):
        assert verifier.verify(token).uid  # stale keys, refresh failed
    assert counter.count == 2
    assert "keeping the previous keys" in caplog.text
    assert verifier.verify(token).uid  # no retry before min_refetch_interval
    assert counter.count == 2
    clock.now += 120  # beyond 2 × ttl: stale keys are no longer trusted
    with pytest.raises(ApiError) as info:
        verifier.verify(token)
    assert info.value.status >= 500
    emu.clear_faults()
    clock.now += 11
    assert verifier.verify(token).uid


def test_cert_endpoint_down_at_first_use_is_an_api_error(
    emu: EmulatorHandle, token: str, verifier: TokenVerifier
) -> None:
    emu.set_faults(error_rate=1.0)
    with pytest.raises(ApiError) as info:
        verifier.verify(token)
    assert not isinstance(info.value, TokenError)
    assert info.value.path == "/admin/v1/cert"


# -- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "...",
        "eyJ.eyJ.sig",
        "\x00.\x00.\x00",
        "ünïcödé.x.y",
        "a" * 20_000,
        "a." * 5000,
        b"\xff\xfe.a.b",
        "null.null.null",
        _b64(b"[1,2]") + ".e30.",
        _b64(b"not json") + ".e30.",
        _b64(b'"PS256"') + ".e30.",
    ],
)
def test_garbage_is_malformed(verifier: TokenVerifier, garbage: str | bytes) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(garbage)


@pytest.mark.parametrize("garbage", [None, 123, ["a", "b"]])
def test_non_string_tokens_are_malformed(verifier: TokenVerifier, garbage: Any) -> None:
    with pytest.raises(TokenMalformed):
        verifier.verify(garbage)


def test_garbage_payload_with_a_good_header_is_refused(token: str, verifier: TokenVerifier) -> None:
    header = token.split(".")[0]
    for payload in ("", "!!!!", _b64(b"not json"), _b64(b"[]")):
        with pytest.raises(TokenError):
            verifier.verify(f"{header}.{payload}.{token.split('.')[2]}")


def test_non_string_kid_is_malformed(token: str, verifier: TokenVerifier) -> None:
    header, claims, signature = _segments(token)
    with pytest.raises(TokenMalformed, match="header"):
        verifier.verify(_compact({**header, "kid": 42}, claims, _unb64(signature)))


def test_payload_without_user_is_malformed(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    # The emulator always mints a ``user`` claim, so this one needs its own key and JWKS.
    signer = signers[0]
    verifier = TokenVerifier(cert_url=cert_server.url, audience=AUDIENCE)
    good = signer.sign(claims(user={"id": "u", "email": "e@x.test"}))
    assert verifier.verify(good).user.email == "e@x.test"
    no_user = claims()
    del no_user["user"]
    with pytest.raises(TokenMalformed, match="'user'"):
        verifier.verify(signer.sign(no_user))
    no_iss = claims()
    del no_iss["iss"]
    with pytest.raises(TokenMalformed, match="'iss'"):
        verifier.verify(signer.sign(no_iss))
    no_kid = signer.sign(claims(uid="u"), kid=None)
    assert "kid" not in _segments(no_kid)[0]
    assert verifier.verify(no_kid).uid == "u"  # without kid, every published key is tried
    verifier.close()


# -- messages, Bearer headers --------------------------------------------------------------------


def test_messages_never_contain_the_token(
    emu: EmulatorHandle, member_id: str, verifier: TokenVerifier
) -> None:
    samples = [
        _mint(emu, member_id, expires_in=-3600),
        _mint(emu, member_id, aud="plugin:x:admin"),
        _mint(emu, member_id, user={"email": None}),
    ]
    header, payload, signature = samples[0].split(".")
    samples.append(f"{header}.{payload}x.{signature}")
    for token in samples:
        with pytest.raises(TokenError) as info:
            verifier.verify(token)
        text = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
        for part in token.split("."):
            assert part[:24] not in text


@pytest.mark.parametrize(
    "value", ["Bearer {t}", "bearer {t}", "BEARER {t}", "  Bearer   {t}  ", "Bearer {t}\r\n"]
)
def test_bearer_header_is_parsed(token: str, verifier: TokenVerifier, value: str) -> None:
    assert verifier.verify_bearer(value.format(t=token)).uid


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        " ",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token {t}",
        "{t}",
        "Bearer {t} extra",
    ],
)
def test_bad_bearer_header_is_malformed(token: str, verifier: TokenVerifier, value: str) -> None:
    header = value.format(t=token) if value else value
    with pytest.raises(TokenMalformed):
        verifier.verify_bearer(header)


# -- the handler snippets in the README -----------------------------------------------------------


def _snippets() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return {
        "flask": next(b for b in blocks if "from flask import" in b),
        "fastapi": next(b for b in blocks if "from fastapi import" in b),
    }


@pytest.fixture
def snippet_env(
    emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], dict[str, Any]]:
    """Run a snippet with the emulator's settings in the environment and plabdata's exports."""
    for line in emu.settings.export_lines():
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLUGINLAB_WEBHOOK_SECRET", "whsec_docs")

    def run(source: str) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": "handlers_snippet"}
        exec(compile(source, str(DOCS), "exec"), namespace)
        return namespace

    return run


def test_flask_handler_snippet_works(
    emu: EmulatorHandle, member_id: str, snippet_env: Callable[[str], dict[str, Any]]
) -> None:
    from plabdata.auth._webhooks import WebhookHeader, sign_webhook

    client = snippet_env(_snippets()["flask"])["app"].test_client()
    token = _mint(emu, member_id)
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json()["member_id"] == member_id
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers={"Authorization": f"Bearer {token}x"}).status_code == 401

    body = json.dumps({"memberId": member_id, "note": "é"}).encode()
    headers = {
        WebhookHeader.Signature.lower(): sign_webhook(body, "whsec_docs"),
        WebhookHeader.Event: "member.updated",
        WebhookHeader.DeliveryId: "dlv_9",
        WebhookHeader.HookId: "hook_9",
        WebhookHeader.PluginId: emu.plugin_id,
        WebhookHeader.Timestamp: str(int(time.time() * 1000)),
    }
    delivered = client.post("/pluginlab/webhook", data=body, headers=headers)
    assert delivered.status_code == 204
    forged = client.post("/pluginlab/webhook", data=body + b" ", headers=headers)
    assert forged.status_code == 400


def test_fastapi_handler_snippet_compiles() -> None:
    source = _snippets()["fastapi"]
    code = compile(source, str(DOCS), "exec")
    assert {"verify_bearer", "parse_webhook", "body"} <= set(code.co_names) | {
        name for const in code.co_consts if hasattr(const, "co_names") for name in const.co_names
    }


def test_fastapi_handler_snippet_serves(
    emu: EmulatorHandle, member_id: str, snippet_env: Callable[[str], dict[str, Any]]
) -> None:
    pytest.importorskip("fastapi")  # not a plabdata dependency; the snippet is compiled above
    from fastapi.testclient import TestClient

    client = TestClient(snippet_env(_snippets()["fastapi"])["app"])
    token = _mint(emu, member_id)
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["member_id"] == member_id
    assert client.get("/me").status_code == 401
