"""The async core of the admin client: PluginLab's wire contract, one method per endpoint.

:class:`AsyncAdmin` spreads requests over several small httpx connection pools (one big pool
turns CPU-bound long before the network is busy — see ``docs/architecture.md``), paces them
with a shared :class:`~plabdata.client._ratelimit.RateLimiter` and retries what is safe to
retry. The blocking facade over it is :class:`~plabdata.Admin`.

    >>> async with AsyncAdmin(Settings.from_env()) as aio:
    ...     page = await aio.list_members_page(limit=50)
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import itertools
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import certifi
import httpx

from plabdata.client._pagination import MemberPager, smaller_page_size
from plabdata.client._ratelimit import RateLimiter
from plabdata.client._records import Identity, Member, MembersPage, QuotaUsage, ShapeError
from plabdata.client._retry import (
    AT_LEAST_ONCE,
    IDEMPOTENT_WRITE,
    NON_IDEMPOTENT_WRITE,
    READ,
    RetryPolicy,
    is_in_doubt,
    note_attempt,
    note_in_doubt_attempt,
    note_in_doubt_resolved,
    parse_retry_after,
)
from plabdata.config import (
    ENV_AUTH_URL,
    ENV_EVENT_URL,
    ENV_MONETIZATION_URL,
    Secret,
    Settings,
)
from plabdata.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PlabdataError,
    TransportError,
    UnexpectedResponse,
    error_for_status,
)
from plabdata.wire import PAGE_SIZE

log = logging.getLogger("plabdata")
#: Set while a cursor walk asks for its next page: every later page waits for that one, so it
#: takes the next rate-limit slot ahead of the concurrent requests queued for theirs
#: (:meth:`RateLimiter.acquire`'s ``urgent``). Per task, so a walk running beside the
#: per-member calls of the same job speeds only itself.
_WALKING: contextvars.ContextVar[bool] = contextvars.ContextVar("plabdata_walking", default=False)
T = TypeVar("T")
R = TypeVar("R")
#: The in-doubt hook of a request: given the refusal a retry met (None before a retry), the
#: result of the earlier attempt when it turns out applied, else None.
Resolver = Callable[["PlabdataError | None"], Awaitable["R | None"]]

#: Connections per httpx pool; requests are spread over ceil(concurrency / POOL_SIZE) pools.
POOL_SIZE = 8
#: Fields PATCH /members/{id} accepts, in our names → PluginLab's.
UPDATABLE_FIELDS = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "picture_url": "pictureUrl",
    "metadata": "metadata",
}
# Errors raised before any byte of the request could reach the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: httpx wraps the socket's own error (with its errno)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _failure(exc: BaseException, deadline: float) -> tuple[str, str]:
    """``(kind, reason)`` of a transport failure, in words that say what happened."""
    if isinstance(exc, TimeoutError | httpx.ReadTimeout | httpx.WriteTimeout):
        return "timeout", f"no complete answer within {deadline:g} s"
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect-timeout", f"connecting took longer than {deadline:g} s"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "refused", f"not an http(s) URL ({exc})"
    if isinstance(exc, httpx.ConnectError):
        chain = _causes(exc)
        for cause in chain:
            if isinstance(cause, ssl.SSLError):
                return "tls", f"TLS handshake failed ({cause.reason or cause})"
            if isinstance(cause, socket.gaierror):
                return "dns", "the host name does not resolve"
            if isinstance(cause, ConnectionRefusedError) or (
                isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
            ):
                return "refused", "connection refused"
        text = " ".join(str(c) for c in chain).lower()
        if "ssl" in text or "certificate" in text:
            return "tls", f"TLS handshake failed ({exc})"
        if "name or service not known" in text or "name resolution" in text:
            return "dns", "the host name does not resolve"
        if "refused" in text:
            return "refused", "connection refused"
        return "refused", f"connection failed ({exc})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "dropped", "the server closed the connection without a complete answer"
    return "dropped", f"{type(exc).__name__}: the request was sent but no answer came back"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _segment(value: str) -> str:
    """One path segment, percent-encoded so ``/ ? # %`` in an email stay inside it.

    ``.`` and ``..`` are encoded too: URL normalisation would otherwise remove them and
    send the request to the parent route.
    """
    encoded = quote(str(value), safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


class AsyncAdmin:
    """Async client of PluginLab's admin API.

    Example:
        >>> async with AsyncAdmin(Settings.from_env()) as aio:
        ...     page = await aio.list_members_page(limit=100)
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pools: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.limiter = RateLimiter(self.settings.rate_limit, ceiling=self.settings.max_rate)
        count = pools or max(1, -(-self.settings.concurrency // POOL_SIZE))
        limits = httpx.Limits(
            max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=4.0
        )
        tls = _tls_context()  # one context for every pool: building one costs ~40 ms
        self._clients = [
            httpx.AsyncClient(
                headers=self.settings.headers(),
                timeout=self.settings.timeout,
                limits=limits,
                transport=transport,
                verify=tls,
            )
            for _ in range(count)
        ]
        self._next_client = itertools.cycle(self._clients)
        self.requests_sent = 0
        #: Seconds from send to answer, smoothed over recent requests (None before the first).
        self.latency: float | None = None
        #: The page size walks ask for; lowered (once) when the server refuses a larger one.
        self.page_size = PAGE_SIZE
        # The largest size this server accepted after refusing one: never asked above again.
        self._page_cap: int | None = None
        self._bases = sorted(
            (
                (self.settings.auth_url, ENV_AUTH_URL),
                (self.settings.event_url, ENV_EVENT_URL),
                (self.settings.monetization_url, ENV_MONETIZATION_URL),
            ),
            key=lambda pair: -len(pair[0]),
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"AsyncAdmin(plugin_id={s.plugin_id!r}, auth_url={s.auth_url!r})"

    async def __aenter__(self) -> AsyncAdmin:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients))

    # ------------------------------------------------------------------ transport

    def _base_of(self, url: str) -> tuple[str | None, str | None]:
        """The configured base URL ``url`` lives under, and the variable that sets it."""
        for base, setting in self._bases:
            if url.startswith(base):
                return base, setting
        return None, None

    async def _send(self, method: str, url: str, body: Any = None) -> httpx.Response:
        """One attempt: pace, send within the deadline, map failures onto the exception tree."""
        path = urlsplit(url).path
        await self.limiter.acquire(urgent=_WALKING.get())
        client = next(self._next_client)
        self.requests_sent += 1
        deadline = self.settings.timeout
        try:
            # One total deadline, connect to last byte: httpx's own timeouts are per read,
            # which a server trickling one byte at a time never trips.
            async with asyncio.timeout(deadline):
                sent_at = time.monotonic()
                response = await client.request(method, url, json=body)
                took = time.monotonic() - sent_at
                self.latency = took if self.latency is None else 0.9 * self.latency + 0.1 * took
        except (httpx.TransportError, TimeoutError) as exc:
            note_attempt(None)
            kind, reason = _failure(exc, deadline)
            sent = not isinstance(exc, _NOT_SENT)
            base, setting = self._base_of(url)
            where = f" ({base})" if base else ""
            if not sent:
                reason = f"could not connect to {base or url}: {reason}"
                where = ""
            log.debug("%s %s: %s (%s)", method, path, kind, type(exc).__name__)
            raise TransportError(
                method, path, reason + where, sent=sent, kind=kind, url=base, setting=setting
            ) from None
        status = response.status_code
        note_attempt(status)
        self.limiter.on_response(status, response.headers)
        log.debug("%s %s -> %s", method, path, status)
        if status >= 400:
            code = message = None
            try:
                payload = response.json()
                if isinstance(payload, dict):
                    code, message = payload.get("code"), payload.get("message")
            except ValueError:
                message = response.text[:200] or None
            raise error_for_status(
                method,
                path,
                status,
                None if code is None else str(code),
                None if message is None else str(message),
                parse_retry_after(response.headers.get("retry-after")),
            )
        return response

    async def _call(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        policy: RetryPolicy = READ,
        resolve: Resolver[R] | None = None,
        before_attempt: Callable[[], Awaitable[None]] | None = None,
    ) -> httpx.Response | R:
        """Send under a retry ``policy``.

        ``resolve`` is the in-doubt hook: once an attempt failed in doubt (sent, no answer),
        it runs before the next attempt — and on a 404/409 that such a retry meets — and a
        non-None result (the earlier attempt was applied after all) ends the call with it.
        ``before_attempt`` runs before every attempt (a journal marking the request pending).
        """
        s = self.settings
        in_doubt = False
        async for attempt in policy.attempts(
            max_attempts=s.max_attempts, max_seconds=s.max_retry_seconds
        ):
            with attempt:
                if in_doubt and resolve is not None:
                    found = await resolve(None)
                    if found is not None:
                        note_in_doubt_resolved()
                        return found
                if before_attempt is not None:
                    await before_attempt()
                try:
                    return await self._send(method, url, body)
                except (Conflict, NotFound) as exc:
                    if in_doubt and resolve is not None:
                        found = await resolve(exc)
                        if found is not None:
                            note_in_doubt_resolved()
                            return found
                    raise
                except PlabdataError as exc:
                    if is_in_doubt(exc):
                        in_doubt = True
                        note_in_doubt_attempt()
                    raise
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _response(self, method: str, url: str, body: Any = None) -> httpx.Response:
        """One read (or idempotent write) under :data:`READ`: the answer itself."""
        response = await self._call(method, url, body)
        assert isinstance(response, httpx.Response)
        return response

    async def _read(self, method: str, url: str, body: Any = None) -> Any:
        """:meth:`_call`, then the answer's JSON (an unreadable answer names the endpoint)."""
        return _json(method, url, await self._response(method, url, body))

    def _member_url(self, *parts: str) -> str:
        return "/".join([self.settings.members_url, *(_segment(p) for p in parts)])

    # ------------------------------------------------------------------ members

    async def list_members_page(
        self, limit: int | None = None, start_after: str | None = None
    ) -> MembersPage:
        """One page of members (``limit`` defaults to :attr:`page_size`), after ``start_after``.

        The first page is asked for with no ``startAfter`` at all: every documented reading
        (absent, ``None``, ``null``) accepts that.
        """
        url = f"{self.settings.members_url}/members?limit={int(limit or self.page_size)}"
        if start_after:
            url += f"&startAfter={quote(start_after, safe='')}"
        return _parsed(url, "GET", await self._read("GET", url), MembersPage.from_json)

    async def iter_member_pages(self, page_size: int | None = None) -> AsyncIterator[MembersPage]:
        """Every page of members, following cursors; each page holds only members not seen
        before. The walk is a :class:`~plabdata.client._pagination.MemberPager`: it survives
        any page cap and refuses to loop or overrun ``total``.

        A 400 to a page size above the server's cap drops to the size the server names (or
        to 50) once, and :attr:`page_size` remembers it for this client.
        """
        size = page_size or self.page_size
        pager = MemberPager(size if self._page_cap is None else min(size, self._page_cap))
        while pager.has_next:
            limit, cursor = pager.next_request()
            walking = _WALKING.set(True)
            try:
                page = await self.list_members_page(limit, cursor)
            except BadRequest as exc:
                smaller = smaller_page_size(limit, exc.code, exc.message)
                if smaller is None:
                    raise
                log.info(
                    "the server refused pages of %d; asking for %d from now on", limit, smaller
                )
                pager.shrink(smaller)
                self.page_size = min(self.page_size, smaller)
                self._page_cap = smaller
                continue
            finally:
                _WALKING.reset(walking)
            new = pager.update(page)
            yield MembersPage(items=new, total=page.total, next_page_token=page.next_page_token)

    async def get_member(self, member_id: str) -> Member | None:
        """A member by id, or None."""
        url = self._member_url("members", member_id)
        try:
            data = await self._read("GET", url)
        except NotFound:
            return None
        return _parsed(url, "GET", data, Member.from_json)

    async def get_member_by_email(self, email: str) -> Member | None:
        """A member by email, or None."""
        url = self._member_url("member", "byEmail", email)
        try:
            data = await self._read("GET", url)
        except NotFound:
            return None
        return _parsed(url, "GET", data, Member.from_json)

    async def get_identities(self, member_id: str) -> dict[str, Identity]:
        """The member's third-party identities by provider (``google``, ``github``, …)."""
        url = self._member_url("members", member_id, "identities")
        return _parsed(url, "GET", await self._read("GET", url), _identities)

    async def create_member(
        self,
        email: str,
        password: str | Secret,
        *,
        is_verified: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Member:
        """Create a member (201). Never creates twice.

        An attempt whose outcome is unknown (sent, then timeout / dropped connection / 5xx) is
        resolved by looking the email up before trying again; a member found that way is
        returned (``track().in_doubt_resolved`` is set). A 409 on a first attempt raises
        :class:`~plabdata.errors.Conflict`.
        """
        secret = password if isinstance(password, Secret) else Secret(password)
        body: dict[str, Any] = {"email": email, "password": secret.reveal()}
        if is_verified is not None:
            body["isVerified"] = bool(is_verified)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        url = self._member_url("members")

        async def existing(refusal: PlabdataError | None) -> Member | None:
            # The id derives from the email: a member found by it is the one we created.
            return await self.get_member_by_email(email)

        created = await self._call("POST", url, body, policy=IDEMPOTENT_WRITE, resolve=existing)
        if isinstance(created, Member):
            return created
        return _parsed(url, "POST", _json("POST", url, created), Member.from_json)

    async def update_member(self, member_id: str, **fields: Any) -> Member:
        """Change only the given fields (``None`` clears one); ``metadata`` replaces the map."""
        unknown = set(fields) - set(UPDATABLE_FIELDS)
        if unknown:
            raise TypeError(f"update_member() cannot change {sorted(unknown)}")
        body = {UPDATABLE_FIELDS[k]: v for k, v in fields.items()}
        url = self._member_url("members", member_id)
        response = await self._call("PATCH", url, body, policy=IDEMPOTENT_WRITE)
        assert isinstance(response, httpx.Response)
        if not response.content:
            # The SDK only checks the status; a bare 2xx is a success: read the member back.
            member = await self.get_member(member_id)
            if member is None:
                raise NotFound("PATCH", urlsplit(url).path, 404, "member-not-found")
            return member
        return _parsed(url, "PATCH", _json("PATCH", url, response), Member.from_json)

    async def delete_member(self, member_id: str) -> None:
        """Delete a member. Retried safely: a 404 after an in-doubt attempt means it is gone."""
        url = self._member_url("members", member_id)

        async def gone(refusal: PlabdataError | None) -> bool | None:
            # After an in-doubt attempt, a 404 means that attempt deleted it.
            return True if isinstance(refusal, NotFound) else None

        await self._call("DELETE", url, policy=IDEMPOTENT_WRITE, resolve=gone)

    async def refresh_identity_token(self, member_id: str, provider: str) -> Identity:
        """Refresh a google / gitlab access token (422 → RefreshTokenFailed: sign in again)."""
        url = self._member_url("members", member_id, "identities", provider, "refresh")
        data = await self._read("POST", url)
        return _parsed(url, "POST", data, lambda value: Identity.from_json(value, provider))

    # ------------------------------------------------------------------ events, quota

    async def create_event(
        self,
        event_source: str,
        *,
        member_id: str | None = None,
        country_code: str | None = None,
        subdivision_code: str | None = None,
        is_in_quota: bool | None = None,
        retry_in_doubt: bool = False,
        before_attempt: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Record one custom event. PluginLab has no idempotency key, so this is not blindly
        retried (:data:`~plabdata.client._retry.NON_IDEMPOTENT_WRITE`): only failures that
        prove nothing was recorded are (connect errors, 429, 503). An in-doubt failure raises
        (``is_in_doubt(exc)``) unless ``retry_in_doubt``, which sends it again with backoff
        (:data:`~plabdata.client._retry.AT_LEAST_ONCE`; ``track().in_doubt_attempts`` says
        whether the event may have been recorded twice). ``before_attempt`` runs before every
        attempt: the backfill journals the row pending there.
        """
        body: dict[str, Any] = {"eventSource": event_source}
        if member_id is not None:
            body["memberId"] = member_id
        if country_code is not None:
            body["location"] = {"countryCode": country_code, "subdivisionCode": subdivision_code}
        if is_in_quota is not None:
            body["isInQuota"] = bool(is_in_quota)
        url = f"{self.settings.event_url}/events/create-custom"
        # Any 2xx means recorded: the success body is undocumented and the SDK ignores it.
        policy = AT_LEAST_ONCE if retry_in_doubt else NON_IDEMPOTENT_WRITE
        await self._call("POST", url, body, policy=policy, before_attempt=before_attempt)

    async def get_quota_usage(self, member_id: str) -> QuotaUsage:
        """The member's quota usage in its plan's current interval."""
        url = f"{self.settings.monetization_url}/admin/members/{_segment(member_id)}/quota-usage"
        return _parsed(url, "GET", await self._read("GET", url), QuotaUsage.from_json)


def _json(method: str, url: str, response: httpx.Response) -> Any:
    """The JSON of a success answer; anything else is :class:`UnexpectedResponse`."""
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        shown = response.text[:80] if response.content else "an empty body"
        raise UnexpectedResponse(
            method,
            urlsplit(url).path,
            response.status_code,
            "unexpected-response",
            f"the answer is not JSON ({kind}): {shown!r}",
        ) from None


def _parsed(url: str, method: str, data: Any, parse: Callable[[Any], T]) -> T:
    """``parse(data)``; a wrong shape is :class:`UnexpectedResponse` naming the endpoint."""
    try:
        return parse(data)
    except ShapeError as exc:
        raise UnexpectedResponse(
            method, urlsplit(url).path, 200, "unexpected-response", f"unexpected answer: {exc}"
        ) from None


def _identities(data: Any) -> dict[str, Identity]:
    """``{provider: Identity}`` from the identities answer (an empty object is documented)."""
    if not isinstance(data, dict):
        raise ShapeError("the identities answer is not an object")
    return {provider: Identity.from_json(value, provider) for provider, value in data.items()}
