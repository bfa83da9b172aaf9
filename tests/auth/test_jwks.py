"""The key cache (plabdata/auth/_jwks.py): one fetch in flight, a total deadline, shared failures.

Every test here runs against a real TCP server on loopback (``cert_server``, tests/auth/conftest)
that serves a JWKS, or accepts and never answers, or trickles its answer a byte a second. The
bounds on elapsed time are generous multiples of the deadline: what they catch is the old
behaviour, where the k-th of n concurrent verifications waited k fetches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from plabdata.auth._jwks import DEFAULT_FETCH_TIMEOUT, MAX_JWKS_BYTES, parse_jwks
from plabdata.auth._tokens import TokenVerifier
from plabdata.config import ENV_CERT_URL
from plabdata.errors import ApiError, ConfigError, TokenError, TokenSignatureError, TransportError
from tests.auth.local_cert import AUDIENCE, CertServer, Signer, claims

THREADS = 20


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verifier(server: CertServer, **options: Any) -> TokenVerifier:
    return TokenVerifier(cert_url=server.url, audience=AUDIENCE, **options)


def _concurrently(call: Callable[[], object], n: int = THREADS) -> list[tuple[object, float]]:
    """Run ``call`` in ``n`` threads released together: (result or exception, seconds) each."""
    start = threading.Barrier(n)
    outcomes: list[tuple[object, float]] = []
    lock = threading.Lock()

    def work() -> None:
        start.wait()
        began = time.monotonic()
        try:
            result: object = call()
        except Exception as exc:  # collected and asserted on by the test
            result = exc
        with lock:
            outcomes.append((result, time.monotonic() - began))

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == n, "a verification hung"
    return outcomes


def _transport_errors(outcomes: list[tuple[object, float]]) -> list[TransportError]:
    errors = [result for result, _ in outcomes]
    assert all(isinstance(e, TransportError) for e in errors), errors
    assert not any(isinstance(e, TokenError) for e in errors)
    return [e for e in errors if isinstance(e, TransportError)]


# -- cold start ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "deadline"), [("silent", 1.0), ("trickle", 2.0), ("trickle-body", 2.0)]
)
def test_cold_start_against_a_stalled_cert_endpoint_is_one_shared_bounded_fetch(
    cert_server: CertServer, signers: tuple[Signer, Signer], mode: str, deadline: float
) -> None:
    # "trickle" sends one byte a second from the status line on: each read returns within
    # httpx's per-read timeout, so only a total deadline stops it.
    cert_server.mode = mode
    token = signers[0].sign(claims())
    with _verifier(cert_server, fetch_timeout=deadline) as verifier:
        outcomes = _concurrently(lambda: verifier.verify(token))
        errors = _transport_errors(outcomes)
        # All twenty within a few deadlines; queued one after another they would take 20×.
        assert max(seconds for _, seconds in outcomes) < 4 * deadline
        assert cert_server.connections == 1
        assert verifier.fetches == 1
        assert all(cert_server.url in str(e) and ENV_CERT_URL in str(e) for e in errors)
        assert {e.path for e in errors} == {"/admin/v1/cert"}
        # The abandoned download's connection is shut, not left to trickle on in a thread.
        assert cert_server.wait_for(lambda s: s.hung_up == 1)
        assert _workers_finish()


def _workers_finish(timeout: float = 10.0) -> bool:
    """True once no JWKS download thread is left running (each ends soon after its deadline)."""
    until = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name == "plabdata-jwks-fetch":
            thread.join(max(0.0, until - time.monotonic()))
            if thread.is_alive():
                return False
    return True


def test_a_failed_fetch_is_remembered_then_retried(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    clock = FakeClock()
    cert_server.mode = "silent"
    token = signers[0].sign(claims())
    with _verifier(cert_server, fetch_timeout=1.0, clock=clock) as verifier:
        with pytest.raises(TransportError):
            verifier.verify(token)
        for _ in range(50):  # within the interval: the same answer, without a request
            with pytest.raises(TransportError, match="within 1 s"):
                verifier.verify(token)
        assert cert_server.connections == 1
        cert_server.mode = "jwks"
        clock.now += verifier.min_refetch_interval + 0.1
        assert verifier.verify(token).uid == "mem_local"
        assert cert_server.connections == 2
        assert verifier.fetches == 2


def test_an_error_status_is_an_api_error_shared_by_the_waiters(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    cert_server.mode = "status"
    token = signers[0].sign(claims())
    with _verifier(cert_server) as verifier:
        outcomes = _concurrently(lambda: verifier.verify(token))
    errors = [result for result, _ in outcomes]
    assert all(isinstance(e, ApiError) and e.status == 503 for e in errors), errors
    assert all(cert_server.url in str(e) for e in errors)
    assert cert_server.connections == 1


def test_each_waiter_raises_its_own_copy_of_the_shared_failure(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    cert_server.mode = "silent"
    token = signers[0].sign(claims())
    with _verifier(cert_server, fetch_timeout=1.0) as verifier:
        errors = _transport_errors(_concurrently(lambda: verifier.verify(token), n=5))
    assert len({id(e) for e in errors}) == 5
    assert {str(e) for e in errors} == {str(errors[0])}


def test_a_working_endpoint_is_fetched_once_by_concurrent_cold_starts(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    token = signers[0].sign(claims())
    with _verifier(cert_server) as verifier:
        outcomes = _concurrently(lambda: verifier.verify(token).user.plan_id)
    assert [result for result, _ in outcomes] == ["pro"] * THREADS
    assert cert_server.connections == 1


# -- refresh and rotation --------------------------------------------------------------------


def test_refresh_against_a_stalled_endpoint_keeps_serving_the_old_keys(
    cert_server: CertServer, signers: tuple[Signer, Signer], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    token = signers[0].sign(claims())
    with _verifier(cert_server, ttl=60, fetch_timeout=1.0, clock=clock) as verifier:
        verifier.verify(token)
        cert_server.mode = "silent"
        clock.now += 61
        with caplog.at_level(logging.WARNING, logger="plabdata.tokens"):
            outcomes = _concurrently(lambda: verifier.verify(token).uid)
        assert [result for result, _ in outcomes] == ["mem_local"] * THREADS
        assert max(seconds for _, seconds in outcomes) < 4.0
        assert cert_server.connections == 2  # the first fetch, and one refresh for all
        assert "keeping the previous keys" in caplog.text


def test_unknown_kid_refetch_against_a_stalled_endpoint_is_shared_and_bounded(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    clock = FakeClock()
    old, new = signers
    old_token, new_token = old.sign(claims()), new.sign(claims(uid="mem_new"))
    with _verifier(cert_server, fetch_timeout=1.0, clock=clock) as verifier:
        assert verifier.verify(old_token).uid == "mem_local"
        cert_server.mode = "silent"
        outcomes = _concurrently(lambda: verifier.verify(new_token))
        errors = _transport_errors(outcomes)  # 503-worthy: the kid may well exist
        assert max(seconds for _, seconds in outcomes) < 4.0
        assert cert_server.connections == 2
        assert all(cert_server.url in str(e) for e in errors)
        assert verifier.verify(old_token).uid == "mem_local"  # known keys still verify
        # The key is published; after the interval the refetch finds it.
        cert_server.jwks = {"keys": [new.jwk(), old.jwk()]}
        cert_server.mode = "jwks"
        clock.now += verifier.min_refetch_interval + 0.1
        assert verifier.verify(new_token).uid == "mem_new"
        assert cert_server.connections == 3


def test_unknown_kid_after_a_successful_refetch_is_a_signature_error(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    known, unknown = signers
    with _verifier(cert_server) as verifier:
        verifier.verify(known.sign(claims()))
        for _ in range(5):
            with pytest.raises(TokenSignatureError, match="kid"):
                verifier.verify(unknown.sign(claims()))
    assert cert_server.connections == 2  # the first fetch and one refetch


# -- what the endpoint sends -----------------------------------------------------------------


def test_an_oversized_jwks_is_refused(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    cert_server.jwks = {"keys": [signers[0].jwk()], "padding": "x" * MAX_JWKS_BYTES}
    with _verifier(cert_server) as verifier, pytest.raises(ApiError, match="bytes") as info:
        verifier.verify(signers[0].sign(claims()))
    assert info.value.code == "bad-jwks"


def test_credentials_in_the_cert_url_stay_out_of_errors_and_repr(
    cert_server: CertServer, signers: tuple[Signer, Signer]
) -> None:
    cert_server.mode = "silent"
    url = cert_server.url.replace("http://", "http://user:hunter2@") + "?key=sekrit"
    verifier = TokenVerifier(cert_url=url, audience=AUDIENCE, fetch_timeout=1.0)
    with verifier, pytest.raises(TransportError) as info:
        verifier.verify(signers[0].sign(claims()))
    text = f"{info.value} {info.value!r} {verifier!r}"
    assert cert_server.url in text
    assert "hunter2" not in text and "sekrit" not in text


def test_fetch_timeout_is_validated() -> None:
    assert DEFAULT_FETCH_TIMEOUT == 5.0
    for bad in (0, -1, 601):
        with pytest.raises(ConfigError, match="fetch_timeout"):
            TokenVerifier(cert_url="https://cert.test/jwks", audience=AUDIENCE, fetch_timeout=bad)
    verifier = TokenVerifier(cert_url="https://cert.test/jwks", audience=AUDIENCE)
    assert verifier.fetch_timeout == DEFAULT_FETCH_TIMEOUT


def test_weak_and_foreign_keys_in_the_jwks_are_not_trusted() -> None:
    def jwk(key: Any, **extra: Any) -> dict[str, Any]:
        return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), **extra}

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    document = {
        "keys": [
            jwk(weak, kid="weak"),
            jwk(good, kid="enc", use="enc"),
            jwk(good, kid="good", use="sig"),
            jwk(good),  # no kid
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a key",
        ]
    }
    assert list(parse_jwks(document)) == ["good"]
    assert parse_jwks({"keys": "nope"}) == {}
    assert parse_jwks([]) == {}


@pytest.mark.parametrize("url", ["ftp://cert.test/jwks", "not a url", "https:///jwks", "cert.test"])
def test_a_cert_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        TokenVerifier(cert_url=url, audience=AUDIENCE)
