"""Verify PluginLab user tokens: PS256 JWTs checked against the JWKS at the cert URL.

PluginLab signs each member's token with RSA-PSS (``PS256``) and publishes the public keys as a
JWKS at ``{auth}/admin/v1/cert``. The official client downloads that JWKS on *every* call and
uses its first key whatever the token's ``kid`` says. :class:`TokenVerifier` fetches it once,
keeps it for ``ttl`` seconds, picks the key by ``kid`` and refetches once when a token names an
unknown ``kid`` (key rotation) — at most once per ``min_refetch_interval``, so tokens with
made-up ``kid`` values cannot turn a server into a flood of cert requests. One download is in
flight at a time, shared by every verification waiting for keys, and bounded by a total
deadline (``fetch_timeout``, 5 s): a cert endpoint that hangs cannot stall a server
(see :mod:`plabdata.auth._jwks`).

What is rejected, each with its own exception (all :class:`~plabdata.errors.TokenError`):

- not a JWT, a claim missing or of the wrong type → :class:`TokenMalformed`
- any algorithm but ``PS256`` (``none``, ``HS256`` keyed with the public key, ``RS256`` …),
  a signature that does not verify, a ``kid`` the JWKS does not hold → :class:`TokenSignatureError`
- ``iss`` other than the trusted issuer (``https://auth.pluginlab.ai``, which PluginLab's token
  articles require checking) → :class:`TokenIssuerError`
- ``aud`` other than ``plugin:{pluginId}:admin`` → :class:`TokenAudienceError`
- ``exp`` in the past or ``iat`` in the future, beyond ``leeway`` → :class:`TokenExpired`

A cert endpoint that cannot be reached or gives no keys is not the token's fault: that raises
:class:`~plabdata.errors.TransportError` or :class:`~plabdata.errors.ApiError` (answer 503, not
401). The signature is checked before any claim, and messages never contain the token (it is a
bearer credential). Verifying needs no admin secret: only the plugin id (the audience), the
cert URL and the issuer.

The ``user`` claim is read in both casings PluginLab documents (camelCase as the SDKs read it,
snake_case as its token article shows; camelCase wins), see :mod:`plabdata.auth._claims`.

The pipeline is deliberately narrow — one algorithm, RSA keys of 2048 bits or more, a strict
compact-JWT shape, no ``crit``/``b64`` extensions — and runs on ``cryptography`` directly (PyJWT
only parses the JWKS). A client sends the same bearer token with every request of a session, so
a verifier remembers the tokens it has verified (``cache_size`` of them): a repeat costs a dict
lookup plus the time checks, which are redone on every call, and it is verified afresh whenever
the key set changes.

    >>> verifier = TokenVerifier(cert_url="https://auth.pluginlab.ai/admin/v1/cert",
    ...                          audience="plugin:my-plugin:admin")
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from plabdata.auth._claims import TokenPayload, TokenUser, check_times, payload_from_claims
from plabdata.auth._jwks import DEFAULT_FETCH_TIMEOUT, KeyCache, KeySet
from plabdata.config import ENV_CERT_URL, ENV_ISSUER, ENV_PLUGIN_ID, Settings
from plabdata.errors import ConfigError, TokenMalformed, TokenSignatureError
from plabdata.wire import DEFAULT_CERT_URL, DEFAULT_ISSUER

__all__ = ["TokenPayload", "TokenUser", "TokenVerifier", "verify_bearer", "verify_token"]

ALGORITHM: Final = "PS256"
DEFAULT_TTL: Final = 3600.0
DEFAULT_LEEWAY: Final = 30.0
DEFAULT_MIN_REFETCH_INTERVAL: Final = 10.0
# Real tokens are ~1 KB; anything far larger is refused before any parsing work is spent on it.
MAX_TOKEN_CHARS: Final = 16_384

DEFAULT_CACHE_SIZE: Final = 4096
# RFC 7518 §3.5: PS256 is RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
_PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256: Final = hashes.SHA256()
# Strict shape up front: base64 decoders skip stray characters, so "abc!" would decode as "abc".
_COMPACT_JWT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenVerifier:
    """Verifies user tokens for one plugin; build one per process and share it across threads.

    Args:
        settings: where the JWKS lives (``cert_url``), whose tokens to accept (``audience``)
            and who must have issued them (``issuer``). Without settings, ``cert_url``/
            ``audience`` are used, and without those the ``PLUGINLAB_CERT_URL`` /
            ``PLUGINLAB_PLUGIN_ID`` / ``PLUGINLAB_ISSUER`` environment variables (no admin
            secret is needed to verify tokens).
        cert_url: the JWKS URL, when not taken from ``settings``.
        audience: the expected ``aud``, when not taken from ``settings``.
        issuer: the expected ``iss``; wins over ``settings.issuer``. Defaults to
            ``plabdata.wire.DEFAULT_ISSUER`` (``https://auth.pluginlab.ai``): change it only
            for a self-hosted PluginLab-compatible issuer. Compared exactly (RFC 7519).
        ttl: seconds a downloaded JWKS is trusted before it is fetched again.
        leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
        min_refetch_interval: at most one refetch per this many seconds for unknown ``kid``
            values; a failed download is remembered (and re-raised without a new request) for
            as long, at least 1 s.
        fetch_timeout: the total deadline, in seconds, of one JWKS download, connect to last
            byte (5 s by default). Every verification waiting for keys stops at it.
        cache_size: verified tokens remembered (0 turns the cache off).
        http: an ``httpx.Client`` to fetch with (yours stays open on :meth:`close`).
        clock: monotonic seconds for the JWKS cache, injectable for tests.
        wall_clock: seconds since the epoch for ``exp``/``iat``, injectable for tests.

    Example:
        >>> verifier = TokenVerifier(settings)
        >>> member_id = verifier.verify_bearer(request.headers["Authorization"]).user.id
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        cert_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        ttl: float = DEFAULT_TTL,
        leeway: float = DEFAULT_LEEWAY,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
        cache_size: int = DEFAULT_CACHE_SIZE,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.cert_url, self.audience, self.issuer = _target(settings, cert_url, audience, issuer)
        if ttl <= 0 or min_refetch_interval < 0 or cache_size < 0:
            raise ConfigError("ttl must be > 0; min_refetch_interval and cache_size >= 0")
        if not 0 < fetch_timeout <= 600:
            raise ConfigError("fetch_timeout must be between 0 and 600 seconds")
        self.leeway = _check_leeway(leeway)
        self._http = http if http is not None else httpx.Client(timeout=fetch_timeout)
        self._owns_http = http is None
        self._keys = KeyCache(
            self.cert_url,
            http=self._http,
            ttl=float(ttl),
            min_refetch_interval=float(min_refetch_interval),
            fetch_timeout=float(fetch_timeout),
            clock=clock,
        )
        self._wall_clock = wall_clock
        self._cache_size = cache_size
        # token -> (payload, its nbf, the key set that verified it); dict ops are atomic.
        self._verified: dict[str, tuple[TokenPayload, object, KeySet]] = {}

    def __repr__(self) -> str:
        return (
            f"TokenVerifier(cert_url={self._keys.shown_url!r}, audience={self.audience!r}, "
            f"issuer={self.issuer!r})"
        )

    def __enter__(self) -> TokenVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this verifier created it."""
        if self._owns_http:
            self._http.close()

    @property
    def ttl(self) -> float:
        """Seconds a downloaded JWKS is trusted."""
        return self._keys.ttl

    @property
    def min_refetch_interval(self) -> float:
        """Seconds between refetches for unknown ``kid`` values."""
        return self._keys.min_refetch_interval

    @property
    def fetch_timeout(self) -> float:
        """The total deadline of one JWKS download, in seconds."""
        return self._keys.fetch_timeout

    @property
    def fetches(self) -> int:
        """How many times the JWKS has been requested so far (for monitoring and tests)."""
        return self._keys.fetches

    def verify(self, token: str | bytes, *, leeway: float | None = None) -> TokenPayload:
        """Verify a token and return its claims, or raise a :class:`~plabdata.errors.TokenError`.

        Args:
            token: the compact JWT (``header.payload.signature``), without ``Bearer``.
            leeway: seconds of clock skew for this call; defaults to the verifier's.

        Raises:
            TokenError: the token does not verify (the subclass says why).
            TransportError: the JWKS could not be downloaded (within ``fetch_timeout``).
            ApiError: the cert endpoint answered with an error or no usable key.

        Example:
            >>> payload = verifier.verify(token)
            >>> payload.user.plan_id
            'pro'
        """
        leeway = self.leeway if leeway is None else _check_leeway(leeway)
        text = _token_text(token)
        cached = self._verified.get(text)
        # The same keys (a refresh that failed keeps them on) give the same verdict.
        if cached is not None and cached[2].keys is self._keys.current().keys:
            payload, nbf, _ = cached
            check_times(payload.iat, payload.exp, nbf, self._wall_clock(), leeway)
            return payload
        header_segment, payload_segment, signature_segment = text.split(".")
        header = _json_object(header_segment, "header")
        _check_header(header)
        signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
        signature = _b64decode(signature_segment, "signature")
        keyset = self._verify_signature(header.get("kid"), signing_input, signature)
        claims = _json_object(payload_segment, "payload")
        payload = payload_from_claims(claims, audience=self.audience, issuer=self.issuer)
        nbf = claims.get("nbf")
        check_times(payload.iat, payload.exp, nbf, self._wall_clock(), leeway)
        if self._cache_size:
            if len(self._verified) >= self._cache_size:
                self._verified.clear()  # crude but lock-free; a cold start costs one verify each
            self._verified[text] = (payload, nbf, keyset)
        return payload

    def verify_bearer(
        self, authorization: str | None, *, leeway: float | None = None
    ) -> TokenPayload:
        """Verify the token in an ``Authorization: Bearer <token>`` header value.

        A missing header, another scheme or an empty token raise :class:`TokenMalformed`.

        Example:
            >>> payload = verifier.verify_bearer(request.headers.get("Authorization"))
            >>> payload.user.id
            'mem_5e1f…'
        """
        return self.verify(_bearer_token(authorization), leeway=leeway)

    def _verify_signature(self, kid: object, signing_input: bytes, signature: bytes) -> KeySet:
        """Check the signature with the key named by ``kid``; returns the key set used."""
        if kid is not None and not isinstance(kid, str):
            raise TokenMalformed("the token header's kid is not a string")
        keyset = self._keys.current()
        if kid is None:
            # PluginLab's tokens carry a kid; without one, any published key may have signed.
            candidates = list(keyset.keys.values())
        else:
            key = keyset.keys.get(kid)
            if key is None:
                keyset = self._keys.refetch_for_unknown_kid(keyset)
                key = keyset.keys.get(kid)
            if key is None:
                raise TokenSignatureError("the token names a signing key (kid) the JWKS lacks")
            candidates = [key]
        for candidate in candidates:
            try:
                candidate.verify(signature, signing_input, _PSS, _SHA256)
                return keyset
            except InvalidSignature:
                continue
        raise TokenSignatureError("the token's signature does not verify")


# -- module-level helpers ----------------------------------------------------------------------

_shared: dict[tuple[str, str, str], TokenVerifier] = {}
_shared_lock = threading.Lock()


def verify_token(
    token: str | bytes,
    *,
    settings: Settings | None = None,
    leeway: float = DEFAULT_LEEWAY,
    issuer: str | None = None,
) -> TokenPayload:
    """Verify a user token with a process-wide :class:`TokenVerifier` for these settings.

    Repeated calls reuse one verifier per (cert URL, audience, issuer), so the JWKS is fetched
    once per TTL, not per call. Without settings, ``PLUGINLAB_PLUGIN_ID``,
    ``PLUGINLAB_CERT_URL`` and ``PLUGINLAB_ISSUER`` are read from the environment. ``issuer``
    (default: the settings', else ``https://auth.pluginlab.ai``) is the ``iss`` required.

    Example:
        >>> payload = verify_token(token, settings=Settings.from_env())
        >>> payload.user.email
        'ada@example.com'
    """
    return _shared_verifier(settings, issuer).verify(token, leeway=leeway)


def verify_bearer(
    authorization: str | None,
    *,
    settings: Settings | None = None,
    leeway: float = DEFAULT_LEEWAY,
    issuer: str | None = None,
) -> TokenPayload:
    """Like :func:`verify_token`, for an ``Authorization: Bearer <token>`` header value.

    Example:
        >>> payload = verify_bearer(request.headers.get("Authorization"))
        >>> payload.user.plan_id
        'pro'
    """
    return _shared_verifier(settings, issuer).verify_bearer(authorization, leeway=leeway)


def _shared_verifier(settings: Settings | None, issuer: str | None) -> TokenVerifier:
    target = _target(settings, None, None, issuer)
    verifier = _shared.get(target)
    if verifier is None:
        with _shared_lock:
            verifier = _shared.get(target)
            if verifier is None:
                cert_url, audience, issuer = target
                verifier = TokenVerifier(cert_url=cert_url, audience=audience, issuer=issuer)
                _shared[target] = verifier
    return verifier


def _target(
    settings: Settings | None, cert_url: str | None, audience: str | None, issuer: str | None
) -> tuple[str, str, str]:
    """(cert URL, audience, issuer): arguments win over settings, settings over the environment."""
    if issuer is not None and not (isinstance(issuer, str) and issuer):
        raise ConfigError("issuer must be a non-empty string")
    if settings is not None:
        return settings.cert_url, settings.audience, issuer or settings.issuer
    if cert_url and audience:
        return cert_url.rstrip("/"), audience, issuer or DEFAULT_ISSUER
    if cert_url or audience:
        raise ConfigError("pass both cert_url= and audience=, or settings=")
    plugin_id = os.environ.get(ENV_PLUGIN_ID, "")
    if not plugin_id:
        raise ConfigError(f"no plugin id to build the token audience: set {ENV_PLUGIN_ID}")
    cert = os.environ.get(ENV_CERT_URL) or DEFAULT_CERT_URL
    trusted = issuer or os.environ.get(ENV_ISSUER) or DEFAULT_ISSUER
    return cert.rstrip("/"), f"plugin:{plugin_id}:admin", trusted


def _check_leeway(leeway: float) -> float:
    if not 0 <= leeway <= 600:
        raise ConfigError("leeway must be between 0 and 600 seconds")
    return float(leeway)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise TokenMalformed("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenMalformed("the Authorization header is not 'Bearer <token>'")
    return token


def _token_text(token: str | bytes) -> str:
    if isinstance(token, bytes | bytearray):
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError:
            raise TokenMalformed("the token is not ASCII") from None
    if not isinstance(token, str):
        raise TokenMalformed(f"a token is a str, not {type(token).__name__}")
    token = token.strip()
    if not token:
        raise TokenMalformed("the token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenMalformed(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    if not _COMPACT_JWT.fullmatch(token):
        raise TokenMalformed("the token is not a JWT (base64url header.payload.signature)")
    return token


def _b64decode(segment: str, part: str) -> bytes:
    # The shape regex admits only the base64url alphabet, so this decode is strict.
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenMalformed(f"the token's {part} is not valid base64url") from None


def _json_object(segment: str, part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment, part))
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        value = None
    if not isinstance(value, dict):
        raise TokenMalformed(f"the token's {part} is not a JSON object")
    return value


def _check_header(header: Mapping[str, Any]) -> None:
    alg = header.get("alg")
    if alg != ALGORITHM:
        shown = f" {alg!r}" if isinstance(alg, str) and len(alg) <= 16 else ""
        raise TokenSignatureError(
            f"the token's algorithm{shown} is not accepted: PluginLab tokens are PS256"
        )
    if "crit" in header or "b64" in header:
        # RFC 7515 §4.1.11: extensions a verifier does not implement must make it refuse.
        raise TokenMalformed("the token's header asks for JWS extensions (crit/b64)")
