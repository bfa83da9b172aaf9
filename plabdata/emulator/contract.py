"""PluginLab's wire contract: the member, identity, event, quota and JWKS endpoints.

With an emulator at ``origin`` the four base URLs are: auth = ``origin``, cert =
``origin/admin/v1/cert``, events = ``origin``, monetization = ``origin/v1``. Every route but
the JWKS needs ``X-PluginLab-Admin-Sdk-Secret`` (401 when missing or wrong) and
``X-PluginLab-Plugin-Id`` naming this plugin (403 otherwise).

Example, a page of members::

    GET /admin/plugins/plg_emulator/members?limit=2&startAfter=None
    {"items": [{"id": "mem_…", "auth": {…}, …}, …], "total": 7, "nextPageToken": "djE6bWVt…"}
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from plabdata.emulator._http import (
    Problem,
    RawPathRoute,
    json_response,
    optional_bool,
    optional_str,
    read_object,
    reject_unknown,
    string_map,
)
from plabdata.emulator.model import (
    ACCESS_TOKEN_LIFETIME_MS,
    PLANS,
    PROVIDERS,
    REFRESH_FAILED_MESSAGE,
    REFRESHABLE_PROVIDERS,
    MemberRecord,
    hash_password,
    is_plausible_email,
    member_id_for,
    month_bounds,
    normalize_email,
    quota_usage,
)
from plabdata.emulator.profile import EventResponse, Profile
from plabdata.emulator.state import EmulatorState
from plabdata.emulator.store import MemberExists
from plabdata.wire import PAGE_SIZE, PLUGIN_ID_HEADER, SECRET_HEADER

CERT_PATH = "/admin/v1/cert"
MEMBERS = "/admin/plugins/{plugin_id}/members"
#: Not in any released SDK or stored article: the path, the bodyless POST and the 200 come
#: from the official SDK repository's branch ``feature/add-refresh-idp-token``, commit
#: ``cbce6a3`` ([GH-refresh]), never merged or released (0.4.1 has no refresh method).
REFRESH_PATH = MEMBERS + "/{member_id}/identities/{provider}/refresh"
DEFAULT_LIMIT = PAGE_SIZE
MAX_EVENT_SOURCE = 10
#: Digits of a ``limit`` read as a number; a longer one is above every cap.
_MAX_LIMIT_DIGITS = 6

_CURSOR_PREFIX = "v1:"
_MEMBER_ID = re.compile(r"mem_[0-9a-f]{40}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_SUBDIVISION = re.compile(r"[A-Za-z0-9-]{1,10}")
_PATCHABLE = {
    "name": ("name", "invalid-name"),
    "givenName": ("given_name", "invalid-given-name"),
    "familyName": ("family_name", "invalid-family-name"),
    "pictureUrl": ("picture_url", "invalid-picture-url"),
}

Endpoint = Callable[[Request], Awaitable[Response]]

#: The success answers of ``POST /events/create-custom``, one per ``Profile.event_response``.
_EVENT_RESPONSES: dict[EventResponse, Callable[[], Response]] = {
    "json": lambda: json_response({}),
    "empty": lambda: Response(status_code=200),
    "text": lambda: PlainTextResponse("OK"),
    "created": lambda: json_response({}, 201),
    "no-content": lambda: Response(status_code=204),
}


def encode_cursor(member_id: str) -> str:
    """An opaque, URL-safe page token pointing after ``member_id`` (no padding, no escaping)."""
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + member_id).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    """The member id a page token points after.

    Raises:
        Problem: 400 ``invalid-cursor`` for anything this server did not issue.
    """
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        text = ""
    member_id = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not _MEMBER_ID.fullmatch(member_id):
        raise Problem(400, "invalid-cursor", "startAfter is not a page token from this API.")
    return member_id


def _limit_problem(profile: Profile) -> Problem:
    cap = profile.page_cap
    if profile.over_cap == "reject":
        return Problem(400, "invalid-limit", f"limit must be an integer from 1 to {cap}.")
    return Problem(
        400, "invalid-limit", f"limit must be a positive integer (a page holds at most {cap})."
    )


def _parse_limit(raw: str | None, profile: Profile) -> int:
    """The page size to serve for ``limit=raw`` under ``profile`` (see ``docs/emulator.md``)."""
    cap = profile.page_cap
    if raw is None:
        return min(DEFAULT_LIMIT, cap)
    if not (raw.isascii() and raw.isdigit()):
        raise _limit_problem(profile)
    # A limit of thousands of digits is just "above the cap": int() refuses > 4,300 digits.
    digits = raw.lstrip("0")
    limit = int(digits or "0") if len(digits) <= _MAX_LIMIT_DIGITS else cap + 1
    if limit < 1 or (limit > cap and profile.over_cap == "reject"):
        raise _limit_problem(profile)
    return min(limit, cap)


#: What the first page's ``startAfter`` may say: absent, empty, the official client's text
#: ``None``, or the RESTful API article's ``null``.
FIRST_PAGE_MARKERS = frozenset({"", "None", "null"})


class ContractApi:
    """The PluginLab endpoints of one emulated plugin."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store

    def routes(self) -> list[BaseRoute]:
        """Starlette routes, each behind the admin-secret check (except the JWKS)."""
        guarded: list[tuple[str, Endpoint, str]] = [
            (MEMBERS, self.list_members, "GET"),
            (MEMBERS, self.create_member, "POST"),
            (MEMBERS + "/{member_id}", self.get_member, "GET"),
            (MEMBERS + "/{member_id}", self.update_member, "PATCH"),
            (MEMBERS + "/{member_id}", self.delete_member, "DELETE"),
            ("/admin/plugins/{plugin_id}/member/byEmail/{email:path}", self.member_by_email, "GET"),
            (MEMBERS + "/{member_id}/identities", self.identities, "GET"),
            (REFRESH_PATH, self.refresh_identity, "POST"),
            ("/events/create-custom", self.create_event, "POST"),
            ("/v1/admin/members/{member_id}/quota-usage", self.quota_usage, "GET"),
        ]
        routes: list[BaseRoute] = [
            RawPathRoute(path, self._guard(handler), methods=[method])
            for path, handler, method in guarded
        ]
        routes.append(RawPathRoute(CERT_PATH, self.jwks, methods=["GET"]))
        return routes

    def _guard(self, handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            self._authorize(request)
            return await handler(request)

        endpoint.__name__ = handler.__name__
        return endpoint

    def _authorize(self, request: Request) -> None:
        # The message names the header, never the expected value.
        if not self.state.secret_matches(request.headers.get(SECRET_HEADER)):
            raise Problem(401, "unauthorized", f"Missing or invalid {SECRET_HEADER} header.")
        path_plugin = request.path_params.get("plugin_id", self.state.plugin_id)
        if request.headers.get(PLUGIN_ID_HEADER) != self.state.plugin_id or (
            path_plugin != self.state.plugin_id
        ):
            raise Problem(
                403, "forbidden", "This admin secret does not grant access to that plugin."
            )

    def _member(self, member_id: str) -> MemberRecord:
        member = self.store.get_member(member_id)
        if member is None:
            raise Problem(404, "member-not-found", f"No member with id {member_id}.")
        return member

    # -- members --------------------------------------------------------------------------

    async def list_members(self, request: Request) -> Response:
        """``{items, total, nextPageToken}``: a page of members in id order (keyset)."""
        query = request.query_params
        limit = _parse_limit(query.get("limit"), self.state.profile)
        start_after = query.get("startAfter")
        after = (
            None
            if start_after is None or start_after in FIRST_PAGE_MARKERS
            else decode_cursor(start_after)
        )
        members, more = self.store.list_members(after, limit)
        token = encode_cursor(members[-1].id) if more and members else None
        return json_response(
            {
                "items": [member.to_json() for member in members],
                "total": self.store.count_members(),
                "nextPageToken": token,
            }
        )

    async def get_member(self, request: Request) -> Response:
        """One member by id."""
        return json_response(self._member(request.path_params["member_id"]).to_json())

    async def member_by_email(self, request: Request) -> Response:
        """One member by email (case-insensitive; an encoded ``/`` is part of the email)."""
        email = request.path_params["email"]
        member = self.store.get_member_by_email(normalize_email(email))
        if member is None:
            raise Problem(404, "member-not-found", "No member with that email.")
        return json_response(member.to_json())

    async def create_member(self, request: Request) -> Response:
        """201 Member for ``{email, password, isVerified?, metadata?}``; 409 if the email exists."""
        body = await read_object(request)
        reject_unknown(body, {"email", "password", "isVerified", "metadata"})
        email = body.get("email")
        if not isinstance(email, str) or not is_plausible_email(email.strip()):
            raise Problem(400, "invalid-email", "'email' must be a valid email address.")
        password = body.get("password")
        if not isinstance(password, str):
            raise Problem(400, "invalid-password", "'password' is required and must be a string.")
        shortest = self.state.profile.min_password_length
        if len(password) < shortest:
            # PluginLab publishes no rule: the minimum is the emulator's (see Profile).
            raise Problem(
                400, "weak-password", f"'password' must be at least {shortest} characters."
            )
        is_verified = optional_bool(body, "isVerified", "invalid-is-verified")
        raw_metadata = body.get("metadata")
        metadata = (
            {} if raw_metadata is None else string_map(raw_metadata, "metadata", "invalid-metadata")
        )
        email = normalize_email(email)
        stamp = self.state.clock.now_ms()
        member = MemberRecord(
            id=member_id_for(email, self.state.plugin_id),
            email=email,
            sign_in_method="email-and-password",
            is_verified=bool(is_verified),
            created_at_ms=stamp,
            updated_at_ms=stamp,
            password_hash=hash_password(password),
            metadata=metadata,
        )
        try:
            self.store.insert_member(member)
        except MemberExists:
            raise Problem(
                409, "member-already-exists", "A member with that email already exists."
            ) from None
        return json_response(member.to_json(), 201)

    async def update_member(self, request: Request) -> Response:
        """Change only the given fields; ``metadata`` replaces the map; null clears a field."""
        body = await read_object(request, allow_empty=True)
        reject_unknown(body, {*_PATCHABLE, "metadata"})
        changes: dict[str, object] = {}
        for key, (attribute, code) in _PATCHABLE.items():
            if key in body:
                changes[attribute] = optional_str(body, key, code)
        if "metadata" in body:
            raw = body["metadata"]
            changes["metadata"] = (
                {} if raw is None else string_map(raw, "metadata", "invalid-metadata")
            )
        member = self._member(request.path_params["member_id"])
        if changes:
            for attribute, value in changes.items():
                setattr(member, attribute, value)
            # Strictly increasing, even for two changes within one millisecond.
            member.updated_at_ms = max(self.state.clock.now_ms(), member.updated_at_ms + 1)
            self.store.save_member(member)
        return json_response(member.to_json())

    async def delete_member(self, request: Request) -> Response:
        """Delete a member and its identities; its events (and so its usage) remain."""
        member_id = request.path_params["member_id"]
        if not self.store.delete_member(member_id):
            raise Problem(404, "member-not-found", f"No member with id {member_id}.")
        return json_response({})

    # -- identities -----------------------------------------------------------------------

    async def identities(self, request: Request) -> Response:
        """``{google?, github?, gitlab?, microsoft?}`` for one member."""
        member = self._member(request.path_params["member_id"])
        return json_response(
            {identity.provider: identity.to_json() for identity in self.store.identities(member.id)}
        )

    async def refresh_identity(self, request: Request) -> Response:
        """A new access token for a google or gitlab identity; 422 when the provider refuses."""
        provider = request.path_params["provider"]
        if provider not in PROVIDERS:
            raise Problem(
                400, "invalid-provider", f"Unknown provider; one of {', '.join(PROVIDERS)}."
            )
        member = self._member(request.path_params["member_id"])
        if provider not in REFRESHABLE_PROVIDERS:
            raise Problem(
                400,
                "refresh-not-supported",
                f"Token refresh works for {' and '.join(REFRESHABLE_PROVIDERS)} only.",
            )
        identity = self.store.identity(member.id, provider)
        if identity is None:
            raise Problem(404, "identity-not-found", f"The member has no {provider} identity.")
        stamp = self.state.clock.now_ms()
        if not identity.can_refresh(stamp):
            raise Problem(422, "refresh-token-failed", REFRESH_FAILED_MESSAGE)
        identity.access_token = ("ya29." if provider == "google" else "") + secrets.token_urlsafe(
            48
        )
        identity.access_token_expires_at_ms = stamp + ACCESS_TOKEN_LIFETIME_MS
        self.store.save_identity(identity)
        return json_response(identity.to_json())

    # -- events and quota -----------------------------------------------------------------

    async def create_event(self, request: Request) -> Response:
        """Record a custom event ``{eventSource, memberId?, location?, isInQuota?}``.

        The success answer is the profile's ``event_response`` (no source specifies it; the
        official client ignores it): 200 ``{}`` by default.
        """
        body = await read_object(request)
        reject_unknown(body, {"eventSource", "memberId", "location", "isInQuota"})
        source = body.get("eventSource")
        if not isinstance(source, str) or not 1 <= len(source) <= MAX_EVENT_SOURCE:
            raise Problem(
                400,
                "invalid-event-source",
                f"'eventSource' must be a string of 1 to {MAX_EVENT_SOURCE} characters.",
            )
        member_id = optional_str(body, "memberId", "invalid-member-id")
        country, subdivision = self._location(body.get("location"))
        is_in_quota = optional_bool(body, "isInQuota", "invalid-is-in-quota")
        if member_id is not None:
            self._member(member_id)
        self.store.add_event(
            member_id,
            source.upper(),
            country,
            subdivision,
            True if is_in_quota is None else is_in_quota,
            self.state.clock.now_ms(),
        )
        return _EVENT_RESPONSES[self.state.profile.event_response]()

    @staticmethod
    def _location(location: object) -> tuple[str | None, str | None]:
        if location is None:
            return None, None
        if not isinstance(location, dict):
            raise Problem(400, "invalid-location", "'location' must be an object or null.")
        reject_unknown(location, {"countryCode", "subdivisionCode"})
        country = location.get("countryCode")
        if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
            raise Problem(
                400, "invalid-country-code", "'location.countryCode' must be two ASCII letters."
            )
        subdivision = location.get("subdivisionCode")
        if subdivision is not None and (
            not isinstance(subdivision, str) or not _SUBDIVISION.fullmatch(subdivision)
        ):
            raise Problem(
                400,
                "invalid-subdivision-code",
                "'location.subdivisionCode' must be 1-10 ASCII letters, digits or '-', or null.",
            )
        return country.upper(), None if subdivision is None else subdivision.upper()

    async def quota_usage(self, request: Request) -> Response:
        """This calendar month's (UTC) in-quota usage against the member's plan."""
        member = self._member(request.path_params["member_id"])
        stamp = self.state.clock.now_ms()
        start, end = month_bounds(stamp)
        count = self.store.count_quota_events(member.id, start, end)
        return json_response(quota_usage(PLANS[member.plan], count, stamp))

    async def jwks(self, request: Request) -> Response:
        """The public keys user tokens are signed with (no auth: it is public)."""
        return json_response(self.state.keys.jwks())
