"""The keys that sign user tokens: the JWKS at the cert URL, cached, fetched one at a time.

A plugin's server verifies every request's token, so how the keys are fetched decides what
happens when the cert endpoint misbehaves. :class:`KeyCache` guarantees:

- **One fetch in flight.** Every verification that needs keys while a download runs waits for
  *that* download; none starts its own. A cold start with 20 concurrent requests makes one
  request to the cert URL, not 20 queued one behind the other.
- **A total deadline** (``fetch_timeout``, 5 s by default) from connect to last byte. httpx's
  timeouts are per read, which a server trickling one byte a second never trips; here the
  download runs in a worker thread, waiters stop waiting at the deadline, the body loop checks
  it between chunks, and a connection still stuck in its headers is shut down.
- **A failure is shared and remembered.** The waiters all get the download's error (a
  :class:`~plabdata.errors.TransportError` or :class:`~plabdata.errors.ApiError` naming the cert
  URL: a plugin answers 503, not 401), and for ``retry_delay`` seconds later callers get it too
  without a new request, so a dead cert endpoint is not hammered by every incoming request.
- **Stale keys bridge a refresh.** After the TTL the keys are refreshed; while one caller waits
  for that download the others keep verifying with the old keys, and when the refresh fails the
  old keys serve on (up to ``2 × ttl`` after they were fetched).

The same holds for the refetch that an unknown ``kid`` triggers (key rotation), which is further
limited to one per ``min_refetch_interval``.

    >>> cache = KeyCache("https://auth.pluginlab.ai/admin/v1/cert", http=httpx.Client())
    >>> keys = cache.current().keys            # {kid: RSAPublicKey}
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from plabdata.config import ENV_CERT_URL
from plabdata.errors import ApiError, ConfigError, TransportError, error_for_status

__all__ = ["DEFAULT_FETCH_TIMEOUT", "KeyCache", "KeySet", "parse_jwks"]

log = logging.getLogger("plabdata.tokens")

#: Seconds one JWKS download may take, connect to last byte. PluginLab's JWKS is ~1 KB; five
#: seconds covers a slow TLS handshake on a bad network, and bounds how long a request to the
#: plugin can hang on a cert endpoint that accepts connections and never answers.
DEFAULT_FETCH_TIMEOUT: Final = 5.0
MIN_RSA_BITS: Final = 2048
# A real JWKS is a few KB; a body far larger is not a key set, and is not kept in memory.
MAX_JWKS_BYTES: Final = 1 << 20
_CONNECTED: Final = ("connection.connect_tcp.complete", "connection.connect_unix_socket.complete")

FetchError = ApiError | TransportError


@dataclass(frozen=True, slots=True)
class KeySet:
    """One JWKS download, immutable so readers can use it without a lock."""

    keys: Mapping[str, RSAPublicKey]
    fetched_at: float
    expires_at: float


@dataclass(eq=False)
class _Flight:
    """One JWKS download, shared by every verification that needs keys while it runs."""

    deadline: float  # time.monotonic(), whatever clock the cache was given
    done: threading.Event = field(default_factory=threading.Event)
    keyset: KeySet | None = None
    error: FetchError | None = None
    sockets: list[socket.socket] = field(default_factory=list)


class KeyCache:
    """The JWKS of one cert URL, shared by the threads of one :class:`TokenVerifier`.

    Args:
        cert_url: the JWKS URL.
        http: the client to download with (the cache does not close it).
        ttl: seconds a downloaded JWKS is trusted.
        min_refetch_interval: at most one refetch for unknown ``kid`` values per this many
            seconds; a failed download is remembered for as long (at least 1 s).
        fetch_timeout: the total deadline of one download, in seconds.
        clock: monotonic seconds for the TTL and the intervals (not for the deadline, which
            is always real time), injectable for tests.

    Example:
        >>> cache = KeyCache(cert_url, http=httpx.Client(), fetch_timeout=2.0)
        >>> key = cache.current().keys.get(kid)
    """

    def __init__(
        self,
        cert_url: str,
        *,
        http: httpx.Client,
        ttl: float = 3600.0,
        min_refetch_interval: float = 10.0,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cert_url = cert_url
        self.shown_url = _shown_url(cert_url)
        parts = urlsplit(cert_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"the cert URL {self.shown_url!r} is not an http(s) URL")
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.fetch_timeout = fetch_timeout
        self.retry_delay = max(min_refetch_interval, 1.0)
        self._http = http
        self._clock = clock
        self._path = urlsplit(cert_url).path or "/"
        self._lock = threading.Lock()  # guards the state below; never held during I/O
        self._keyset: KeySet | None = None
        self._flight: _Flight | None = None
        self._failure: tuple[FetchError, float] | None = None  # (error, remembered until)
        self._last_miss_refetch = -math.inf
        self.fetches = 0

    # -- what verifications call -----------------------------------------------------------

    def current(self) -> KeySet:
        """The keys to verify with, downloading them first when there are none fresh enough.

        Raises:
            TransportError: the cert endpoint did not answer (within the deadline).
            ApiError: it answered with an error status or no usable key.
        """
        keyset = self._keyset  # an atomic read: the hot path takes no lock
        if keyset is not None and self._clock() < keyset.expires_at:
            return keyset
        with self._lock:
            now = self._clock()
            keyset = self._keyset
            if keyset is not None and now < keyset.expires_at:
                return keyset  # another thread refreshed it while we waited for the lock
            usable = keyset if keyset is not None and self._usable(keyset, now) else None
            flight = self._flight
            if flight is None:
                failure = self._remembered(now)
                if failure is not None:
                    if usable is not None:
                        return usable
                    _raise_copy(failure)
                flight = self._launch()
            elif usable is not None:
                return usable  # one caller waits for the refresh; the others go on meanwhile
        try:
            return self._wait(flight)
        except (ApiError, TransportError):
            keyset = self._keyset  # a failed refresh extends the old keys while they are usable
            if keyset is not None and self._clock() < keyset.expires_at:
                return keyset
            raise

    def refetch_for_unknown_kid(self, seen: KeySet) -> KeySet:
        """Keys that may hold a ``kid`` missing from ``seen`` (the set the caller looked in).

        Returns ``seen`` itself when a refetch happened too recently to try again: the ``kid``
        is then unknown. A failed download raises, like :meth:`current`: whether the ``kid``
        exists cannot be told while the cert endpoint is down.
        """
        with self._lock:
            current = self._keyset
            # Same mapping: at most the old keys kept on after a failed refresh, not new ones.
            if current is not None and current.keys is not seen.keys:
                return current  # refreshed by another thread meanwhile: just look again
            flight = self._flight
            if flight is None:
                now = self._clock()
                failure = self._remembered(now)
                if failure is not None:
                    _raise_copy(failure)
                if now - self._last_miss_refetch < self.min_refetch_interval:
                    return seen
                self._last_miss_refetch = now
                flight = self._launch()
        return self._wait(flight)

    # -- one download, shared --------------------------------------------------------------

    def _usable(self, keyset: KeySet, now: float) -> bool:
        """Old keys serve on this long while the cert endpoint cannot give new ones."""
        return now - keyset.fetched_at <= 2 * self.ttl

    def _remembered(self, now: float) -> FetchError | None:
        if self._failure is not None and now < self._failure[1]:
            return self._failure[0]
        return None

    def _launch(self) -> _Flight:
        """Start a download in a worker thread (called with the lock held)."""
        flight = _Flight(deadline=time.monotonic() + self.fetch_timeout)
        self._flight = flight
        self.fetches += 1
        # A worker, not the caller's thread: then every waiter, the first included, stops at
        # the deadline even when the socket cannot be interrupted.
        worker = threading.Thread(
            target=self._download, args=(flight,), name="plabdata-jwks-fetch", daemon=True
        )
        worker.start()
        return flight

    def _wait(self, flight: _Flight) -> KeySet:
        late = not flight.done.wait(max(0.0, flight.deadline - time.monotonic()))
        if late and self._settle(flight, error=self._deadline_error()):
            self._cut(flight)
        if flight.keyset is not None:
            return flight.keyset
        _raise_copy(flight.error or self._deadline_error())  # settled: one of them is set

    def _settle(
        self, flight: _Flight, *, keyset: KeySet | None = None, error: FetchError | None = None
    ) -> bool:
        """Record a download's outcome once; False when it was settled already."""
        kept = False
        with self._lock:
            if flight.done.is_set():
                return False
            flight.keyset, flight.error = keyset, error
            if self._flight is flight:
                self._flight = None
            now = self._clock()
            if keyset is not None:
                self._keyset, self._failure = keyset, None
            else:
                retry_at = now + self.retry_delay
                self._failure = (error or self._deadline_error(), retry_at)
                old = self._keyset
                if old is not None and self._usable(old, now):
                    self._keyset = KeySet(old.keys, old.fetched_at, max(old.expires_at, retry_at))
                    kept = True
            flight.done.set()
        if error is not None:
            if kept:
                log.warning("JWKS refresh failed (%s); keeping the previous keys", error)
            else:
                log.warning("JWKS download failed (%s)", error)
        return True

    def _cut(self, flight: _Flight) -> None:
        """Shut down a late download's connection, so it neither lingers nor keeps a thread."""
        with self._lock:
            sockets, flight.sockets = flight.sockets, []
        for sock in sockets:
            _shutdown(sock)

    def _trace(self, flight: _Flight) -> Callable[[str, dict[str, Any]], None]:
        """An httpcore ``trace`` hook that keeps the socket of each new connection."""

        def trace(event: str, info: dict[str, Any]) -> None:
            if event not in _CONNECTED:
                return
            get_extra_info = getattr(info.get("return_value"), "get_extra_info", None)
            sock = get_extra_info("socket") if get_extra_info is not None else None
            if not isinstance(sock, socket.socket):
                return
            with self._lock:
                late = flight.done.is_set()
                if not late:
                    flight.sockets.append(sock)
            if late:
                _shutdown(sock)

        return trace

    def _download(self, flight: _Flight) -> None:
        """The worker: fetch, parse, settle. Every exit settles, so no waiter hangs on a bug."""
        try:
            keyset = self._fetch(flight)
        except (ApiError, TransportError) as exc:
            self._settle(flight, error=exc)
        except Exception as exc:  # a surprise reaches the waiters now, not at the deadline
            log.debug("JWKS download failed unexpectedly", exc_info=True)
            error = self._transport_error(exc, sent=True)
            error.__cause__ = exc
            self._settle(flight, error=error)
        else:
            self._settle(flight, keyset=keyset)

    def _fetch(self, flight: _Flight) -> KeySet:
        """Download and parse the JWKS. Only the public URL is requested: no secret is sent."""
        log.debug("fetching JWKS from %s", self.shown_url)
        remaining = flight.deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_error()
        body = bytearray()
        try:
            with self._http.stream(
                "GET",
                self.cert_url,
                timeout=remaining,
                extensions={"trace": self._trace(flight)},
            ) as response:
                status = response.status_code
                if status != 200:
                    raise error_for_status(
                        "GET", self._path, status, message=f"no JWKS from {self.shown_url}"
                    )
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise self._bad_jwks(f"more than {MAX_JWKS_BYTES} bytes")
                    if time.monotonic() > flight.deadline:
                        raise self._deadline_error()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, sent=not _not_sent(exc)) from exc
        try:
            document = json.loads(bytes(body))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            document = None
        keys = parse_jwks(document)
        if not keys:
            raise self._bad_jwks("no usable RSA signing key")
        now = self._clock()
        return KeySet(keys, now, now + self.ttl)

    # -- errors that name the cert URL -----------------------------------------------------

    def _deadline_error(self) -> TransportError:
        return TransportError(
            "GET",
            self._path,
            f"no JWKS from {self.shown_url} within {self.fetch_timeout:g} s",
            sent=True,
            kind="timeout",
            url=self.shown_url,
            setting=ENV_CERT_URL,
        )

    def _transport_error(self, exc: BaseException, *, sent: bool) -> TransportError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            kind, what = "connect-timeout", f"connecting took over {self.fetch_timeout:g} s"
        elif isinstance(exc, httpx.TimeoutException):
            kind, what = "timeout", f"no answer within {self.fetch_timeout:g} s"
        elif isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol):
            kind, what = "refused", f"could not connect ({type(exc).__name__})"
        else:
            kind, what = "dropped", f"no complete answer ({type(exc).__name__})"
        return TransportError(
            "GET",
            self._path,
            f"{what} fetching the JWKS from {self.shown_url}",
            sent=sent,
            kind=kind,
            url=self.shown_url,
            setting=ENV_CERT_URL,
        )

    def _bad_jwks(self, what: str) -> ApiError:
        return ApiError("GET", self._path, 200, "bad-jwks", f"{self.shown_url} returned {what}")


def parse_jwks(document: object) -> dict[str, RSAPublicKey]:
    """The RSA signing keys of a JWKS by kid; keys of other types or uses, or weak, are skipped.

    Example:
        >>> parse_jwks({"keys": [{"kty": "EC", "kid": "k1"}]})
        {}
    """
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
            log.warning("skipping an unparsable key in the JWKS (kid %s)", entry["kid"][:64])
            continue
        if isinstance(key, RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
            keys[entry["kid"]] = key
    return keys


def _raise_copy(error: FetchError) -> NoReturn:
    # Each waiter raises its own copy: one instance raised in many threads would collect all
    # their tracebacks (and keep their frames alive).
    raise copy.copy(error) from error.__cause__


def _not_sent(exc: httpx.HTTPError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _shutdown(sock: socket.socket) -> None:
    # shutdown(), not close(): it wakes a recv() blocked in another thread; close() may not.
    with contextlib.suppress(OSError):  # already closed by its owner
        sock.shutdown(socket.SHUT_RDWR)


def _shown_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
