"""One exception tree for everything plabdata raises.

::

    PlabdataError
    ├── ConfigError                 missing plugin id / secret, bad setting
    ├── ApiError                    PluginLab answered with an error (method, path, status, code)
    │   ├── AuthError               401 / 403
    │   ├── BadRequest              400 / 422
    │   │   └── RefreshTokenFailed  422 "refresh-token-failed": the member must sign in again
    │   ├── NotFound                404
    │   ├── Conflict                409 (e.g. "member-already-exists")
    │   ├── RateLimited             429, with retry_after seconds when the server said
    │   ├── ServerError             5xx
    │   └── UnexpectedResponse      2xx whose body is not JSON or not the documented shape
    ├── TransportError              no answer: connect error, timeout, dropped connection
    │                               (``sent`` says whether the request may have reached the
    │                               server; ``url`` and ``setting`` say what to check)
    ├── PaginationError             a member walk that would loop or overrun ``total``
    ├── ValidationError             input rows that fail validation (``issues`` DataFrame)
    ├── PlanError                   a plan that cannot be built or applied as asked
    ├── JournalError                journal bound to another plugin, or held by another run
    ├── TokenError                  a user token that does not verify
    │   ├── TokenMalformed          not a JWT, or missing claims
    │   ├── TokenExpired            ``exp`` in the past (or ``iat`` in the future)
    │   ├── TokenAudienceError      ``aud`` is not ``plugin:{pluginId}:admin``
    │   ├── TokenIssuerError        ``iss`` is not the trusted issuer (``wire.DEFAULT_ISSUER``)
    │   └── TokenSignatureError     bad signature, wrong algorithm, unknown key
    └── WebhookError                a webhook that does not verify
        ├── WebhookSignatureError   signature missing or wrong
        └── WebhookReplayError      timestamp outside the tolerance

Messages never include the admin secret, member passwords or identity tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class PlabdataError(Exception):
    """Root of every error plabdata raises."""


class ConfigError(PlabdataError):
    """Settings are missing or invalid."""


class ApiError(PlabdataError):
    """PluginLab answered a request with an error status.

    Carries the request (``method``, ``path`` — without query string or host), the HTTP
    ``status`` and PluginLab's machine-readable ``code`` and human ``message`` when given.
    """

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.message = message
        detail = f" {code}" if code else ""
        text = f": {message}" if message else ""
        super().__init__(f"{method} {path} -> {status}{detail}{text}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.method, self.path, self.status, self.code, self.message))


class AuthError(ApiError):
    """401 or 403: the secret or the plugin id is not accepted."""


class BadRequest(ApiError):
    """400 or 422: the request was understood and refused."""


class RefreshTokenFailed(BadRequest):
    """422 ``refresh-token-failed``: the provider refused the refresh; the member must sign in."""


class NotFound(ApiError):
    """404: no such member (or route)."""


class Conflict(ApiError):
    """409: e.g. a member with that email exists already."""


class RateLimited(ApiError):
    """429: too many requests. ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int = 429,
        code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(method, path, status, code, message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.method, self.path, self.status, self.code, self.message, self.retry_after),
        )


class ServerError(ApiError):
    """5xx: the server failed. For writes the outcome is unknown (see ``in_doubt``)."""


class UnexpectedResponse(ApiError):
    """A success status whose body plabdata cannot read: not JSON, or not the documented
    shape (e.g. a page without ``items``). Nothing is guessed from such an answer."""


class TransportError(PlabdataError):
    """No HTTP answer. ``sent`` is False only when the request surely never left (connect error).

    A write that failed with ``sent=True`` may or may not have been applied: it is in doubt.
    ``kind`` classifies the failure (``refused``, ``dns``, ``tls``, ``connect-timeout``,
    ``timeout``, ``dropped``, ``protocol``); ``url`` is the server's base URL and ``setting``
    the environment variable that chose it, so the message says what to fix.
    """

    def __init__(
        self,
        method: str,
        path: str,
        reason: str,
        *,
        sent: bool,
        kind: str = "dropped",
        url: str | None = None,
        setting: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.sent = sent
        self.kind = kind
        self.url = url
        self.setting = setting
        hint = f" — check {setting}" if setting else ""
        super().__init__(f"{method} {path}: {reason}{hint}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_transport,
            (self.method, self.path, self.reason, self.sent, self.kind, self.url, self.setting),
        )


def _rebuild_transport(
    method: str,
    path: str,
    reason: str,
    sent: bool,
    kind: str = "dropped",
    url: str | None = None,
    setting: str | None = None,
) -> TransportError:
    return TransportError(method, path, reason, sent=sent, kind=kind, url=url, setting=setting)


class PaginationError(PlabdataError):
    """A paginated walk stopped because it would loop or return more than ``total``."""


class ValidationError(PlabdataError):
    """Input rows failed validation. ``issues`` has columns row, column, value, problem."""

    def __init__(self, message: str, issues: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.issues = issues


class PlanError(PlabdataError):
    """A plan cannot be built or applied as asked (too many deletes, wrong plugin…)."""


class JournalError(PlabdataError):
    """The journal belongs to another plugin or job, or another run holds it."""


class TokenError(PlabdataError):
    """A user token did not verify."""


class TokenMalformed(TokenError):
    """Not a well-formed JWT, or a required claim is missing."""


class TokenExpired(TokenError):
    """The token's ``exp`` is past (or its ``iat`` is in the future), beyond the leeway."""


class TokenAudienceError(TokenError):
    """The token was issued for another plugin (``aud`` mismatch)."""


class TokenIssuerError(TokenError):
    """The token's ``iss`` is not the issuer the verifier trusts (another identity provider)."""


class TokenSignatureError(TokenError):
    """The signature does not verify, the algorithm is not PS256, or the key is unknown."""


class WebhookError(PlabdataError):
    """A webhook delivery did not verify."""


class WebhookSignatureError(WebhookError):
    """The ``X-PluginLab-Signature`` header is missing or does not match the body."""


class WebhookReplayError(WebhookError):
    """The ``X-PluginLab-Timestamp`` is outside the accepted tolerance."""


def error_for_status(
    method: str,
    path: str,
    status: int,
    code: str | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """The most specific :class:`ApiError` for an HTTP status and PluginLab error code."""
    if status == 429:
        return RateLimited(method, path, status, code, message, retry_after)
    if status == 422 and code == "refresh-token-failed":
        return RefreshTokenFailed(method, path, status, code, message)
    cls: type[ApiError]
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    elif status in (400, 422):
        cls = BadRequest
    elif status >= 500:
        cls = ServerError
    else:
        cls = ApiError
    return cls(method, path, status, code, message)
