"""Verify PluginLab user tokens: PS256 JWTs checked against the JWKS at the cert URL.

PluginLab signs each member's token with RSA-PSS (``PS256``) and publishes the public keys as a
JWKS at ``{auth}/admin/v1/cert``. The official client downloads that JWKS on *every* call and
uses its first key whatever the token's ``kid`` says. :class:`TokenVerifier` fetches it once,
keeps it for ``ttl`` seconds, picks the key by ``kid`` and refetches once when a token names an
unknown ``kid`` (key rotation) — at most once per ``min_refetch_interval``, so tokens with
made-up ``kid`` values cannot turn a server into a flood of cert requests.

What is rejected, each with its own exception (all :class:`~plabdata.errors.TokenError`):

- not a JWT, a claim missing or of the wrong type → :class:`TokenMalformed`
- any algorithm but ``PS256`` (``none``, ``HS256`` keyed with the public key, ``RS256`` …),
  a signature that does not verify, a ``kid`` the JWKS does not hold → :class:`TokenSignatureError`
- ``exp`` in the past or ``iat`` in the future, beyond ``leeway`` → :class:`TokenExpired`
- ``aud`` other than ``plugin:{pluginId}:admin`` → :class:`TokenAudienceError`

The signature is checked before any claim, and messages never contain the token (it is a bearer
credential). Verifying needs no admin secret: only the plugin id (the audience) and the cert URL.

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
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from plabdata.config import ENV_CERT_URL, ENV_PLUGIN_ID, Settings
from plabdata.errors import (
    ApiError,
    ConfigError,
    TokenAudienceError,
    TokenExpired,
    TokenMalformed,
    TokenSignatureError,
    TransportError,
    error_for_status,
)
from plabdata.wire import DEFAULT_CERT_URL

__all__ = ["TokenPayload", "TokenUser", "TokenVerifier", "verify_bearer", "verify_token"]

log = logging.getLogger("plabdata.tokens")

ALGORITHM: Final = "PS256"
DEFAULT_TTL: Final = 3600.0
DEFAULT_LEEWAY: Final = 30.0
DEFAULT_MIN_REFETCH_INTERVAL: Final = 10.0
# Real tokens are ~1 KB; anything far larger is refused before any parsing work is spent on it.
MAX_TOKEN_CHARS: Final = 16_384
MIN_RSA_BITS: Final = 2048

DEFAULT_CACHE_SIZE: Final = 4096
# RFC 7518 §3.5: PS256 is RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
_PSS: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256: Final = hashes.SHA256()
# Strict shape up front: base64 decoders skip stray characters, so "abc!" would decode as "abc".
_COMPACT_JWT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class TokenUser:
    """The ``user`` claim: who the member is and which plan they pay for."""

    id: str
    email: str
    name: str | None = None
    given_name: str | None = None
    plan_id: str | None = None
    price_id: str | None = None


@dataclass(frozen=True, slots=True)
class TokenPayload:
    """A verified token's claims. ``iat`` and ``exp`` are seconds since the epoch."""

    uid: str
    iss: str
    aud: str
    iat: int
    exp: int
    user: TokenUser


@dataclass(frozen=True, slots=True)
class _KeySet:
    """One JWKS download, immutable so readers can use it without a lock."""

    keys: Mapping[str, RSAPublicKey]
    fetched_at: float
    expires_at: float


class TokenVerifier:
    """Verifies user tokens for one plugin; build one per process and share it across threads.

    Args:
        settings: where the JWKS lives (``cert_url``) and whose tokens to accept
            (``audience``). Without settings, ``cert_url``/``audience`` are used, and
            without those the ``PLUGINLAB_CERT_URL`` / ``PLUGINLAB_PLUGIN_ID`` environment
            variables (no admin secret is needed to verify tokens).
        cert_url: the JWKS URL, when not taken from ``settings``.
        audience: the expected ``aud``, when not taken from ``settings``.
        ttl: seconds a downloaded JWKS is trusted before it is fetched again.
        leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
        min_refetch_interval: at most one refetch per this many seconds for unknown ``kid``
            values, and the retry delay when a refresh fails while old keys are still usable.
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
        ttl: float = DEFAULT_TTL,
        leeway: float = DEFAULT_LEEWAY,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL,
        cache_size: int = DEFAULT_CACHE_SIZE,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.cert_url, self.audience = _target(settings, cert_url, audience)
        if ttl <= 0 or min_refetch_interval < 0 or cache_size < 0:
            raise ConfigError("ttl must be > 0; min_refetch_interval and cache_size >= 0")
        self.leeway = _check_leeway(leeway)
        self.ttl = float(ttl)
        self.min_refetch_interval = float(min_refetch_interval)
        timeout = settings.timeout if settings is not None else 10.0
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._owns_http = http is None
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache_size = cache_size
        # token -> (payload, its nbf, the key set that verified it); dict ops are atomic.
        self._verified: dict[str, tuple[TokenPayload, object, _KeySet]] = {}
        self._cert_path = urlsplit(self.cert_url).path or "/"
        self._keyset: _KeySet | None = None
        self._lock = threading.Lock()
        self._last_miss_refetch = -math.inf
        self._fetches = 0

    def __repr__(self) -> str:
        return f"TokenVerifier(cert_url={self.cert_url!r}, audience={self.audience!r})"

    def __enter__(self) -> TokenVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this verifier created it."""
        if self._owns_http:
            self._http.close()

    @property
    def fetches(self) -> int:
        """How many times the JWKS has been requested so far (for monitoring and tests)."""
        return self._fetches

    def verify(self, token: str | bytes, *, leeway: float | None = None) -> TokenPayload:
        """Verify a token and return its claims, or raise a :class:`~plabdata.errors.TokenError`.

        Args:
            token: the compact JWT (``header.payload.signature``), without ``Bearer``.
            leeway: seconds of clock skew for this call; defaults to the verifier's.

        Example:
            >>> payload = verifier.verify(token)
            >>> payload.user.plan_id
            'pro'
        """
        leeway = self.leeway if leeway is None else _check_leeway(leeway)
        text = _token_text(token)
        cached = self._verified.get(text)
        if cached is not None and cached[2] is self._current():
            payload, nbf, _ = cached
            _check_times(payload.iat, payload.exp, nbf, self._wall_clock(), leeway)
            return payload
        header_segment, payload_segment, signature_segment = text.split(".")
        header = _json_object(header_segment, "header")
        _check_header(header)
        signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
        signature = _b64decode(signature_segment, "signature")
        keyset = self._verify_signature(header.get("kid"), signing_input, signature)
        claims = _json_object(payload_segment, "payload")
        payload = _payload(claims, self.audience)
        nbf = claims.get("nbf")
        _check_times(payload.iat, payload.exp, nbf, self._wall_clock(), leeway)
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

    # -- the key cache -----------------------------------------------------------------------

    def _verify_signature(self, kid: object, signing_input: bytes, signature: bytes) -> _KeySet:
        """Check the signature with the key named by ``kid``; returns the key set used."""
        if kid is not None and not isinstance(kid, str):
            raise TokenMalformed("the token header's kid is not a string")
        keyset = self._current()
        if kid is None:
            # PluginLab's tokens carry a kid; without one, any published key may have signed.
            candidates = list(keyset.keys.values())
        else:
            key = keyset.keys.get(kid)
            if key is None:
                keyset = self._refetch_for_unknown_kid(keyset)
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

    def _current(self) -> _KeySet:
        keyset = self._keyset  # an atomic read: the hot path takes no lock
        if keyset is not None and self._clock() < keyset.expires_at:
            return keyset
        with self._lock:
            keyset = self._keyset
            now = self._clock()
            if keyset is not None and now < keyset.expires_at:
                return keyset  # another thread refreshed it while we waited
            try:
                self._keyset = self._fetch()
            except (ApiError, TransportError) as exc:
                # Serve the previous keys a while longer (bounded) rather than failing every
                # request while the cert endpoint has a bad minute; retry after the interval.
                if keyset is None or now - keyset.fetched_at > 2 * self.ttl:
                    raise
                log.warning("JWKS refresh failed (%s); keeping the previous keys", exc)
                retry_at = now + max(self.min_refetch_interval, 1.0)
                self._keyset = _KeySet(keyset.keys, keyset.fetched_at, retry_at)
            return self._keyset

    def _refetch_for_unknown_kid(self, seen: _KeySet) -> _KeySet:
        with self._lock:
            current = self._keyset
            if current is not None and current is not seen:
                return current  # refreshed by another thread meanwhile: just look again
            now = self._clock()
            if now - self._last_miss_refetch < self.min_refetch_interval:
                return seen
            self._last_miss_refetch = now
            try:
                self._keyset = self._fetch()
            except (ApiError, TransportError) as exc:
                # The token is refused as unverifiable below; an outage is not the caller's fault.
                log.warning("JWKS refetch for an unknown kid failed (%s)", exc)
                return seen
            return self._keyset

    def _fetch(self) -> _KeySet:
        """Download and parse the JWKS. Only the public URL is requested: no secret is sent."""
        self._fetches += 1
        log.debug("fetching JWKS from %s", self.cert_url)
        try:
            response = self._http.get(self.cert_url)
        except httpx.ConnectError as exc:
            raise TransportError("GET", self._cert_path, type(exc).__name__, sent=False) from exc
        except httpx.HTTPError as exc:
            raise TransportError("GET", self._cert_path, type(exc).__name__, sent=True) from exc
        if response.status_code != 200:
            raise error_for_status("GET", self._cert_path, response.status_code)
        try:
            document = response.json()
        except ValueError:
            document = None
        keys = _parse_jwks(document)
        if not keys:
            raise ApiError(
                "GET",
                self._cert_path,
                response.status_code,
                "bad-jwks",
                "the cert endpoint returned no usable RSA signing key",
            )
        now = self._clock()
        return _KeySet(keys, now, now + self.ttl)


# -- module-level helpers ----------------------------------------------------------------------

_shared: dict[tuple[str, str], TokenVerifier] = {}
_shared_lock = threading.Lock()


def verify_token(
    token: str | bytes, *, settings: Settings | None = None, leeway: float = DEFAULT_LEEWAY
) -> TokenPayload:
    """Verify a user token with a process-wide :class:`TokenVerifier` for these settings.

    Repeated calls reuse one verifier per (cert URL, audience), so the JWKS is fetched once
    per TTL, not per call. Without settings, ``PLUGINLAB_PLUGIN_ID`` and ``PLUGINLAB_CERT_URL``
    are read from the environment.

    Example:
        >>> payload = verify_token(token, settings=Settings.from_env())
        >>> payload.user.email
        'ada@example.com'
    """
    return _shared_verifier(settings).verify(token, leeway=leeway)


def verify_bearer(
    authorization: str | None,
    *,
    settings: Settings | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> TokenPayload:
    """Like :func:`verify_token`, for an ``Authorization: Bearer <token>`` header value.

    Example:
        >>> payload = verify_bearer(request.headers.get("Authorization"))
        >>> payload.user.plan_id
        'pro'
    """
    return _shared_verifier(settings).verify_bearer(authorization, leeway=leeway)


def _shared_verifier(settings: Settings | None) -> TokenVerifier:
    target = _target(settings, None, None)
    verifier = _shared.get(target)
    if verifier is None:
        with _shared_lock:
            verifier = _shared.get(target)
            if verifier is None:
                verifier = TokenVerifier(cert_url=target[0], audience=target[1])
                _shared[target] = verifier
    return verifier


def _target(
    settings: Settings | None, cert_url: str | None, audience: str | None
) -> tuple[str, str]:
    if settings is not None:
        return settings.cert_url, settings.audience
    if cert_url and audience:
        return cert_url.rstrip("/"), audience
    if cert_url or audience:
        raise ConfigError("pass both cert_url= and audience=, or settings=")
    plugin_id = os.environ.get(ENV_PLUGIN_ID, "")
    if not plugin_id:
        raise ConfigError(f"no plugin id to build the token audience: set {ENV_PLUGIN_ID}")
    cert = os.environ.get(ENV_CERT_URL) or DEFAULT_CERT_URL
    return cert.rstrip("/"), f"plugin:{plugin_id}:admin"


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


def _number(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if value is None:
        raise TokenMalformed(f"the token lacks the {name!r} claim")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenMalformed(f"the token's {name!r} claim is not a number")
    return int(value)


def _check_times(iat: int, exp: int, nbf: object, now: float, leeway: float) -> None:
    if exp <= now - leeway:
        raise TokenExpired("the token has expired")
    if iat > now + leeway:
        raise TokenExpired("the token is not valid yet (issued in the future)")
    if nbf is not None:
        if isinstance(nbf, bool) or not isinstance(nbf, int | float) or not math.isfinite(nbf):
            raise TokenMalformed("the token's 'nbf' claim is not a number")
        if nbf > now + leeway:
            raise TokenExpired("the token is not valid yet (nbf)")


def _check_audience(claims: Mapping[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    if aud is None or aud == [] or aud == "":
        raise TokenMalformed("the token lacks the 'aud' claim")
    if isinstance(aud, str):
        accepted = aud == audience
    elif isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        accepted = audience in aud
    else:
        raise TokenMalformed("the token's 'aud' claim is not a string or a list of strings")
    if not accepted:
        raise TokenAudienceError("the token was issued for another audience (plugin)")


def _parse_jwks(document: object) -> dict[str, RSAPublicKey]:
    """The RSA signing keys of a JWKS by kid; keys of other types or uses are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return {}
    keys: dict[str, RSAPublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        if entry.get("use") not in (None, "sig") or not isinstance(entry.get("kid"), str):
            continue
        try:
            key = jwt.PyJWK(entry).key
        except (jwt.PyJWTError, ValueError, TypeError):
            log.warning("skipping an unparsable key in the JWKS (kid %s)", entry["kid"])
            continue
        if isinstance(key, RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
            keys[entry["kid"]] = key
    return keys


def _payload(claims: Mapping[str, Any], audience: str) -> TokenPayload:
    """Typed claims; registered claims are checked for presence and type, ``aud`` for value."""
    iat, exp = _number(claims, "iat"), _number(claims, "exp")
    _check_audience(claims, audience)
    user = claims.get("user")
    if not isinstance(user, dict):
        raise TokenMalformed("the token lacks the 'user' claim")
    return TokenPayload(
        uid=_text(claims, "uid"),
        iss=_text(claims, "iss"),
        aud=audience,
        iat=iat,
        exp=exp,
        user=TokenUser(
            id=_text(user, "id", "user.id"),
            email=_text(user, "email", "user.email"),
            name=_optional_text(user, "name"),
            given_name=_optional_text(user, "givenName"),
            plan_id=_optional_text(user, "planId"),
            price_id=_optional_text(user, "priceId"),
        ),
    )


def _text(claims: Mapping[str, Any], name: str, label: str | None = None) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenMalformed(f"the token's {label or name!r} claim is missing or not a string")
    return value


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TokenMalformed(f"the token's 'user.{name}' claim is not a string")
    return value
