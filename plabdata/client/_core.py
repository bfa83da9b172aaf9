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
import functools
import itertools
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import certifi
import httpx

from plabdata.client._ratelimit import RateLimiter
from plabdata.client._records import Identity, Member, MembersPage, QuotaUsage
from plabdata.client._retry import (
    is_in_doubt,
    is_transient,
    note_attempt,
    note_in_doubt_resolved,
    parse_retry_after,
    retrying,
    surely_not_applied,
)
from plabdata.config import Secret, Settings
from plabdata.errors import (
    Conflict,
    NotFound,
    PaginationError,
    PlabdataError,
    TransportError,
    error_for_status,
)

log = logging.getLogger("plabdata")
T = TypeVar("T")

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

    async def _send(self, method: str, url: str, body: Any = None) -> httpx.Response:
        """One attempt: pace, send, map failures onto the exception tree."""
        path = urlsplit(url).path
        await self.limiter.acquire()
        client = next(self._next_client)
        self.requests_sent += 1
        try:
            response = await client.request(method, url, json=body)
        except _NOT_SENT as exc:
            note_attempt(None)
            log.debug("%s %s: not sent (%s)", method, path, type(exc).__name__)
            raise TransportError(method, path, type(exc).__name__, sent=False) from None
        except httpx.TransportError as exc:
            note_attempt(None)
            log.debug("%s %s: no answer (%s)", method, path, type(exc).__name__)
            reason = f"{type(exc).__name__}: the request was sent but no answer came back"
            raise TransportError(method, path, reason, sent=True) from None
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

    async def _call(self, method: str, url: str, body: Any = None, *, safe: bool = True) -> Any:
        """Send with retries. ``safe=False`` retries only failures proving nothing was applied."""
        should_retry = is_transient if safe else surely_not_applied
        s = self.settings
        async for attempt in retrying(
            should_retry, max_attempts=s.max_attempts, max_seconds=s.max_retry_seconds
        ):
            with attempt:
                response = await self._send(method, url, body)
        return response.json() if response.content else None

    def _member_url(self, *parts: str) -> str:
        return "/".join([self.settings.members_url, *(_segment(p) for p in parts)])

    # ------------------------------------------------------------------ members

    async def list_members_page(
        self, limit: int = 100, start_after: str | None = None
    ) -> MembersPage:
        """One page of members (``limit`` ≤ 100), after the cursor ``start_after``."""
        url = f"{self.settings.members_url}/members?limit={int(limit)}"
        if start_after:
            url += f"&startAfter={quote(start_after, safe='')}"
        data = await self._call("GET", url)
        return MembersPage(
            items=[Member.from_json(item) for item in data.get("items", [])],
            total=int(data.get("total") or 0),
            next_page_token=data.get("nextPageToken") or None,
        )

    async def iter_member_pages(self, page_size: int = 100) -> AsyncIterator[MembersPage]:
        """Every page of members, following cursors; refuses to loop or overrun ``total``."""
        seen: set[str] = set()
        cursor: str | None = None
        pages = 0
        while True:
            page = await self.list_members_page(page_size, cursor)
            pages += 1
            yield page
            cursor = page.next_page_token
            if not cursor or not page.items:
                return
            if cursor in seen:
                raise PaginationError(f"the server returned cursor {cursor!r} twice: stopping")
            seen.add(cursor)
            # total may grow during the walk; allow one page of slack beyond what it implies.
            allowed = -(-max(page.total, 1) // page_size) + 1
            if pages > allowed:
                raise PaginationError(
                    f"{pages} pages of {page_size} fetched but the server reports "
                    f"{page.total} members: stopping"
                )

    async def get_member(self, member_id: str) -> Member | None:
        """A member by id, or None."""
        try:
            return Member.from_json(await self._call("GET", self._member_url("members", member_id)))
        except NotFound:
            return None

    async def get_member_by_email(self, email: str) -> Member | None:
        """A member by email, or None."""
        try:
            data = await self._call("GET", self._member_url("member", "byEmail", email))
        except NotFound:
            return None
        return Member.from_json(data)

    async def get_identities(self, member_id: str) -> dict[str, Identity]:
        """The member's third-party identities by provider (``google``, ``github``, …)."""
        data = await self._call("GET", self._member_url("members", member_id, "identities"))
        return {
            provider: Identity.from_json(value, provider)
            for provider, value in (data or {}).items()
            if isinstance(value, dict)
        }

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
        in_doubt = False
        s = self.settings
        async for attempt in retrying(
            is_transient, max_attempts=s.max_attempts, max_seconds=s.max_retry_seconds
        ):
            with attempt:
                if in_doubt:
                    existing = await self.get_member_by_email(email)
                    if existing is not None:
                        note_in_doubt_resolved()
                        return existing
                try:
                    response = await self._send("POST", url, body)
                except Conflict:
                    if not in_doubt:
                        raise
                    existing = await self.get_member_by_email(email)
                    if existing is None:
                        raise
                    note_in_doubt_resolved()
                    return existing
                except PlabdataError as exc:
                    in_doubt = in_doubt or is_in_doubt(exc)
                    raise
                return Member.from_json(response.json())
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def update_member(self, member_id: str, **fields: Any) -> Member:
        """Change only the given fields (``None`` clears one); ``metadata`` replaces the map."""
        unknown = set(fields) - set(UPDATABLE_FIELDS)
        if unknown:
            raise TypeError(f"update_member() cannot change {sorted(unknown)}")
        body = {UPDATABLE_FIELDS[k]: v for k, v in fields.items()}
        data = await self._call("PATCH", self._member_url("members", member_id), body)
        return Member.from_json(data)

    async def delete_member(self, member_id: str) -> None:
        """Delete a member. Retried safely: a 404 after an in-doubt attempt means it is gone."""
        url = self._member_url("members", member_id)
        in_doubt = False
        s = self.settings
        async for attempt in retrying(
            is_transient, max_attempts=s.max_attempts, max_seconds=s.max_retry_seconds
        ):
            with attempt:
                try:
                    await self._send("DELETE", url)
                except NotFound:
                    if in_doubt:
                        return
                    raise
                except PlabdataError as exc:
                    in_doubt = in_doubt or is_in_doubt(exc)
                    raise

    async def refresh_identity_token(self, member_id: str, provider: str) -> Identity:
        """Refresh a google / gitlab access token (422 → RefreshTokenFailed: sign in again)."""
        url = self._member_url("members", member_id, "identities", provider, "refresh")
        return Identity.from_json(await self._call("POST", url), provider)

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
    ) -> None:
        """Record one custom event. PluginLab has no idempotency key, so this is not blindly
        retried: only failures that prove nothing was recorded are (connect errors, 429, 503).
        An in-doubt failure raises (``resilience.is_in_doubt(exc)``) unless ``retry_in_doubt``.
        """
        body: dict[str, Any] = {"eventSource": event_source}
        if member_id is not None:
            body["memberId"] = member_id
        if country_code is not None:
            body["location"] = {"countryCode": country_code, "subdivisionCode": subdivision_code}
        if is_in_quota is not None:
            body["isInQuota"] = bool(is_in_quota)
        url = f"{self.settings.event_url}/events/create-custom"
        await self._call("POST", url, body, safe=retry_in_doubt)

    async def get_quota_usage(self, member_id: str) -> QuotaUsage:
        """The member's quota usage in its plan's current interval."""
        url = f"{self.settings.monetization_url}/admin/members/{_segment(member_id)}/quota-usage"
        return QuotaUsage.from_json(await self._call("GET", url))
