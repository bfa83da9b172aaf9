"""HTTP plumbing shared by the contract and control routes: JSON bodies in, JSON errors out.

Every refusal is a :class:`Problem` — ``{"code": ..., "message": ...}`` with a status — so no
route ever answers with a bare 500 or a stack trace.
"""

from __future__ import annotations

import json
import math
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


#: Deepest nesting of arrays and objects a body may have. PluginLab's bodies are at most three
#: deep; the bound keeps every later step (validation, JSON encoding, token signing) far from
#: Python's recursion limit.
MAX_JSON_DEPTH = 32


def _not_json(detail: str) -> Problem:
    return Problem(400, "invalid-json", f"The request body is not valid JSON: {detail}.")


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) and JavaScript's JSON.parse do not.
    raise _not_json(f"{name} is not a JSON value")


def _check_parsed(value: Any) -> None:
    """Refuse a parsed body no UTF-8 store can hold or no encoder can walk safely.

    An escape such as ``\\ud800`` parses into a lone surrogate, which cannot be encoded as
    UTF-8 (SQLite, the JSON answer and token signing would all fail on it); ``1e400`` parses
    into an infinity, which JSON cannot carry back. The walk is iterative: the body may be as
    deep as the parser allowed.

    Raises:
        Problem: 400 ``invalid-json``.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if isinstance(item, float) and not math.isfinite(item):
            # 1e400 parses to inf, which no JSON answer or token can carry back.
            raise _not_json("a number is beyond the range of a 64-bit float")
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise _not_json(f"arrays and objects nest deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_json("a string holds a lone surrogate escape (\\ud800-\\udfff)") from None


async def read_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object.

    The body must be UTF-8 (RFC 8259), strict JSON (no ``NaN``/``Infinity``, no number
    beyond a 64-bit float), hold no lone surrogate escapes and nest at most
    :data:`MAX_JSON_DEPTH` levels.

    Raises:
        Problem: 400 ``invalid-json`` (unparsable, or any rule above broken) or
            ``invalid-body`` (valid JSON, not an object).
    """
    raw = await request.body()
    if not raw.strip() and allow_empty:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_json("it is not UTF-8") from None
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        # The parser recurses once per level: 100,000 '[' exhaust the stack before any check.
        raise _not_json("arrays and objects nest too deep") from None
    except ValueError:
        # Also too-long integer literals (Python's int_max_str_digits).
        raise Problem(400, "invalid-json", "The request body is not valid JSON.") from None
    _check_parsed(body)
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


#: The integers SQLite can store (signed 64-bit); JSON has no bound of its own.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def optional_int(body: Mapping[str, Any], key: str, code: str) -> int | None:
    """``body[key]`` when it is a signed 64-bit integer, None when absent or null, else 400."""
    value = body.get(key)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX
    ):
        raise Problem(400, code, f"'{key}' must be a 64-bit integer or null.")
    return value


def string_map(value: Any, key: str, code: str) -> dict[str, str]:
    """A JSON object of string → string (``metadata``), else 400 ``code``."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Problem(400, code, f"'{key}' must be an object mapping strings to strings.")
    return dict(value)
