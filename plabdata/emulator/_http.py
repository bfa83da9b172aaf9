"""HTTP plumbing shared by the contract and control routes: JSON bodies in, JSON errors out.

Every refusal is a :class:`Problem` — ``{"code": ..., "message": ...}`` with a status — so no
route ever answers with a bare 500 or a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope


class Problem(Exception):
    """An error answer: HTTP ``status`` with a machine ``code`` and a human ``message``."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class RawPathRoute(Route):
    """A route matched against the raw, still percent-encoded path; parameters decoded after.

    uvicorn gives starlette the decoded path, where an id or email holding an encoded ``/``
    (``%2F``) would split into two segments and reach another route. PluginLab's servers
    split first and decode each segment, so ``/members/a%2Fidentities`` names a member whose
    id is ``a/identities`` (and finds none) instead of listing identities.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw_path = scope.get("raw_path")
        if scope["type"] != "http" or not isinstance(raw_path, bytes):
            return super().matches(scope)
        # latin-1 maps bytes 1:1, so clients that send raw UTF-8 survive the round trip.
        match = self.path_regex.match(raw_path.decode("latin-1"))
        if match is None:
            return Match.NONE, {}
        params = {
            key: self.param_convertors[key].convert(
                unquote_to_bytes(value.encode("latin-1")).decode("utf-8", errors="replace")
            )
            for key, value in match.groupdict().items()
        }
        child_scope = {
            "endpoint": self.endpoint,
            "path_params": {**scope.get("path_params", {}), **params},
        }
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact ``application/json`` response."""
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def problem_body(code: str, message: str) -> bytes:
    """The encoded error body, for the middleware that answers before any route runs."""
    return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()


def problem_response(problem: Problem) -> Response:
    """The JSON answer for a :class:`Problem`."""
    return json_response(
        {"code": problem.code, "message": problem.message}, problem.status, problem.headers
    )


async def read_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object.

    Raises:
        Problem: 400 ``invalid-json`` (unparsable) or ``invalid-body`` (not an object).
    """
    raw = await request.body()
    if not raw.strip() and allow_empty:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "invalid-json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Problem(400, "invalid-body", "The request body must be a JSON object.")
    return body


def reject_unknown(body: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse fields the endpoint does not know (400 ``invalid-field``)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Problem(
            400,
            "invalid-field",
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
        )


def optional_str(body: Mapping[str, Any], key: str, code: str) -> str | None:
    """``body[key]`` when it is a string, None when absent or null, else 400 ``code``."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Problem(400, code, f"'{key}' must be a string or null.")
    return value


def optional_bool(body: Mapping[str, Any], key: str, code: str) -> bool | None:
    """``body[key]`` when it is a boolean, None when absent or null, else 400 ``code``."""
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise Problem(400, code, f"'{key}' must be a boolean.")
    return value


def optional_int(body: Mapping[str, Any], key: str, code: str) -> int | None:
    """``body[key]`` when it is an integer, None when absent or null, else 400 ``code``."""
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise Problem(400, code, f"'{key}' must be an integer or null.")
    return value


def string_map(value: Any, key: str, code: str) -> dict[str, str]:
    """A JSON object of string → string (``metadata``), else 400 ``code``."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Problem(400, code, f"'{key}' must be an object mapping strings to strings.")
    return dict(value)
