"""User-token verification: plabdata's ``TokenVerifier`` vs the official ``verify_token``.

The official client builds a new ``PyJWKClient`` per call, so every verification downloads the
JWKS again; plabdata downloads it once per hour and remembers tokens it has verified. The
emulator runs in a child process (it must not share this interpreter's CPU) and mints
``DISTINCT_TOKENS`` member tokens, which both clients verify in turn, cycling. Rows:

- ``tokens-localhost``: the cert endpoint answers at once (the official client's best case);
  plabdata as shipped — repeated tokens (a client sends the same bearer token all session) are
  answered from its verified-token cache.
- ``tokens-localhost-uncached``: the same with ``cache_size=0``: every call is a full PS256
  signature check — plabdata's worst case.
- ``tokens-cert-30ms``: 30 ms of latency on the cert endpoint (the emulator's ``latency_ms``
  fault applies to contract routes, the JWKS included), closer to a real round trip to
  ``auth.pluginlab.ai``; plabdata still uncached.

The official client is sampled (``OFFICIAL_SAMPLE`` calls) and extrapolated; plabdata does
every call. Timing starts at the first verification (which includes plabdata's one JWKS fetch);
building the verifier — an httpx client — is a one-off at server start and is not timed.
``ideal_s``: one cert round trip plus the bare RSA-PSS verifications (cryptography alone) that
the row must do — one per distinct token with the cache, one per call without.

    python -m benchmarks.bench_tokens            # full run, ~1 min
    python -m benchmarks.bench_tokens --quick    # smoke run, ~10 s
"""

from __future__ import annotations

import base64
import itertools
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from benchmarks.common import row
from plabdata.auth._tokens import TokenVerifier
from plabdata.emulator import official_app, running

VERIFICATIONS = 10_000
DISTINCT_TOKENS = 50
OFFICIAL_SAMPLE = {0: 1_000, 30: 300}
# (scenario, cert latency in ms, plabdata's cache_size)
SCENARIOS = (
    ("tokens-localhost", 0, 4096),
    ("tokens-localhost-uncached", 0, 0),
    ("tokens-cert-30ms", 30, 0),
)


@dataclass
class _Official:
    seconds_per_call: float
    sample: int
    requests: int


def run(quick: bool = False) -> list[dict[str, Any]]:
    """All scenarios; ``quick`` shrinks the work to a smoke run (~10 s)."""
    total = 1_000 if quick else VERIFICATIONS
    rows = []
    with running(mode="process") as emu:
        member_ids = emu.seed(DISTINCT_TOKENS, random_seed=11)
        tokens = [emu.mint_token(member_id, expires_in=4 * 3600) for member_id in member_ids]
        floor = _bare_verify_seconds(emu.settings.cert_url, tokens[0])
        official: dict[int, _Official] = {}
        for scenario, latency_ms, cache_size in SCENARIOS:
            emu.set_faults(latency_ms=latency_ms)
            if latency_ms not in official:
                sample = OFFICIAL_SAMPLE[latency_ms] // (10 if quick else 1)
                official[latency_ms] = _time_official(emu, tokens, sample)
            rows.append(
                _row(
                    emu,
                    scenario,
                    tokens,
                    total,
                    latency_ms,
                    cache_size,
                    official[latency_ms],
                    floor,
                )
            )
        emu.clear_faults()
    return rows


def _time_official(emu: Any, tokens: list[str], sample: int) -> _Official:
    auth = official_app(emu.settings).get_auth()
    auth.verify_token(tokens[0])  # warm-up: imports, first connection
    before = emu.stats()["requests"]
    started = time.perf_counter()
    for token in itertools.islice(itertools.cycle(tokens), sample):
        auth.verify_token(token)
    elapsed = time.perf_counter() - started
    requests = emu.stats()["requests"] - before
    with _verifier(emu, None) as verifier:
        for token in tokens[:5]:  # both must say the same, or the comparison is meaningless
            ours, theirs = verifier.verify(token), auth.verify_token(token)
            if (ours.uid, ours.exp, ours.user.plan_id) != (
                theirs.uid,
                theirs.exp,
                theirs.user.plan_id,
            ):
                raise AssertionError("plabdata and the official client disagree on a token")
    return _Official(elapsed / sample, sample, requests)


def _verifier(emu: Any, http: httpx.Client | None, cache_size: int = 4096) -> TokenVerifier:
    return TokenVerifier(emu.settings, http=http, cache_size=cache_size)


def _row(
    emu: Any,
    scenario: str,
    tokens: list[str],
    total: int,
    latency_ms: int,
    cache_size: int,
    official: _Official,
    floor: float,
) -> dict[str, Any]:
    cert_requests = 0

    def count(request: httpx.Request) -> None:
        nonlocal cert_requests
        cert_requests += 1

    with httpx.Client(event_hooks={"request": [count]}) as http:
        verifier = _verifier(emu, http, cache_size)
        started = time.perf_counter()
        for token in itertools.islice(itertools.cycle(tokens), total):
            verifier.verify(token)
        plabdata_s = time.perf_counter() - started
    official_s = official.seconds_per_call * total
    # The floor: each distinct token's signature checked once (cached) or every call (uncached).
    checks = min(total, len(tokens)) if cache_size else total
    cache = f"cache {cache_size:,} tokens" if cache_size else "no cache (full check per call)"
    return row(
        scenario,
        f"{total:,} verifications ({len(tokens)} distinct tokens)",
        plabdata_s=plabdata_s,
        official_s=official_s,
        official_note=f"sampled {official.sample:,} calls, extrapolated",
        requests=cert_requests,
        ideal_s=latency_ms / 1000 + checks * floor,
        notes=(
            f"cert latency {latency_ms} ms; plabdata {cache}, "
            f"{plabdata_s / total * 1e6:.1f} µs/token incl. its 1 JWKS fetch; official "
            f"{official.seconds_per_call * 1e3:.2f} ms/token, {official.requests:,} cert "
            f"requests for {official.sample:,} calls; bare PS256 verify {floor * 1e6:.1f} µs"
        ),
    )


def _bare_verify_seconds(cert_url: str, token: str, rounds: int = 500) -> float:
    """Seconds per RSA-PSS verification with cryptography alone: the floor for any verifier."""
    header, payload, signature = token.split(".")
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in httpx.get(cert_url).json()["keys"] if k["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    assert isinstance(key, RSAPublicKey)
    raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    message = f"{header}.{payload}".encode()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
    started = time.perf_counter()
    for _ in range(rounds):
        key.verify(raw_signature, message, pss, hashes.SHA256())
    return (time.perf_counter() - started) / rounds


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
