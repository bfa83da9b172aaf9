"""The emulator's ASGI app: PluginLab's contract and the control API on one origin.

Every answer's ``Date`` header is the emulator's clock (see ``clock.py``). Each contract
request goes through :class:`FaultPipeline` in a fixed order — rate limit,
injected error, then the route (which checks auth first), then drop-after-commit for a
successful write. The latency knob is the time the server takes to answer: the response
leaves ``latency`` after the request arrived, the server's own work included (a page of 100
members costs a few milliseconds here, which a real server also hides inside its answer
time). Control routes (``/_emulator/…``) skip every fault.

    >>> app = create_app()
    >>> app.state.emulator.plugin_id
    'plg_emu_…'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from email.utils import formatdate
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plabdata.emulator._http import Problem, json_response, problem_body, problem_response
from plabdata.emulator.contract import ContractApi
from plabdata.emulator.control import PREFIX as CONTROL_PREFIX
from plabdata.emulator.control import ControlApi
from plabdata.emulator.faults import Faults
from plabdata.emulator.profile import Profile
from plabdata.emulator.state import EmulatorState
from plabdata.wire import PLUGIN_ID_HEADER

logger = logging.getLogger("plabdata.emulator")

#: Key in ``scope["extensions"]`` under which the server exposes the connection's transport.
TRANSPORT_EXTENSION = "plabdata.transport"
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}


class ConnectionDropped(ConnectionError):
    """Raised where a drop was asked for but no socket can be closed (in-process transports)."""


async def _send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _encode(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers]


class FaultPipeline:
    """Raw ASGI middleware: faults around contract routes, a JSON safety net around all.

    Args:
        app: the routed application.
        state: the emulator whose fault knobs and counters apply.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._dated(send)
        path: str = scope["path"]
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            await self._guarded(scope, receive, send, extra_headers=[], contract=False)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._contract(scope, receive, tracked)
        except ConnectionDropped:
            raise
        except Exception:
            # The routes have their own net (_guarded); this one holds the fault steps before
            # them, so not even the pipeline can leave starlette to answer a bare-text 500.
            await self._internal_error(scope, send, started=started, contract=True, headers=[])

    def _dated(self, send: Send) -> Send:
        """Every answer carries ``Date`` from the emulator's clock (the server sends none of
        its own), so a client reading the server's time reads the emulator's."""

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp = formatdate(self.state.clock.now_ms() / 1000, usegmt=True).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": [(b"date", stamp), *headers]}
            await send(message)

        return dated

    async def _contract(self, scope: Scope, receive: Receive, wire: Send) -> None:
        faults, counters = self.state.faults, self.state.counters
        loop = asyncio.get_running_loop()
        deadline = loop.time() + faults.delay_seconds()

        async def send(message: Message) -> None:
            # Every answer, error or not, leaves at the deadline (see the module docstring).
            if message["type"] == "http.response.start":
                remaining = deadline - loop.time()
                if remaining > 0:
                    await asyncio.sleep(remaining)
            await wire(message)

        counters.served += 1
        plugin = dict(scope["headers"]).get(PLUGIN_ID_HEADER.lower().encode(), b"")
        decision = faults.admit(plugin.decode("latin-1"))
        extra = _encode(decision.headers)
        if not decision.allowed:
            counters.rate_limited += 1
            counters.by_status[429] += 1
            retry = [(b"retry-after", str(decision.retry_after).encode())]
            body = problem_body(
                "rate-limited", "Too many requests; retry after Retry-After seconds."
            )
            await _send_json(send, 429, body, extra + retry)
            return
        injected = faults.injected_error()
        if injected is not None:
            counters.injected_errors += 1
            counters.by_status[injected] += 1
            body = problem_body("injected-fault", "Emulated server failure (fault injection).")
            await _send_json(send, injected, body, extra)
            return
        await self._guarded(scope, receive, send, extra_headers=extra, contract=True)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        extra_headers: list[tuple[bytes, bytes]],
        contract: bool,
    ) -> None:
        counters = self.state.counters
        may_drop = contract and scope["method"] in WRITE_METHODS
        started = dropping = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started, dropping
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if may_drop and 200 <= status < 300 and self.state.faults.should_drop():
                    dropping = True
                    return
                started = True
                if contract:
                    counters.by_status[status] += 1
                if extra_headers:
                    message = {**message, "headers": [*message.get("headers", []), *extra_headers]}
            elif dropping:
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            return  # the client left before its body arrived: there is no one to answer
        except Exception:
            await self._internal_error(
                scope, send, started=started or dropping, contract=contract, headers=extra_headers
            )
            return
        if dropping:
            counters.drops += 1
            await self._drop(scope, receive)

    async def _internal_error(
        self,
        scope: Scope,
        send: Send,
        *,
        started: bool,
        contract: bool,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """The safety net: log the traceback, count it, answer JSON, never leak a stack trace."""
        logger.exception("emulator error on %s %s", scope["method"], scope["path"])
        counters = self.state.counters
        counters.internal_errors += 1
        if not started:
            if contract:
                counters.by_status[500] += 1
            body = problem_body("internal-error", "The emulator failed on this request.")
            await _send_json(send, 500, body, headers)

    @staticmethod
    async def _drop(scope: Scope, receive: Receive) -> None:
        """Close the connection without a byte of response: the write stays committed."""
        transport: Any = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        if transport is None:
            raise ConnectionDropped("response dropped after commit (fault injection)")
        transport.abort()
        # Let the server see the disconnect before we return; a server that thinks the
        # connection is alive would answer a 500 on our behalf.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(receive(), timeout=1.0)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http-error")
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    return json_response({"code": code, "message": message}, exc.status_code, exc.headers)


def create_app(
    *,
    db: str | Path | None = None,
    plugin_id: str | None = None,
    secret: str | None = None,
    faults: Faults | None = None,
    profile: Profile | None = None,
    state: EmulatorState | None = None,
) -> Starlette:
    """The emulator as an ASGI app (``app.state.emulator`` is its :class:`EmulatorState`).

    Args:
        db: SQLite file for the state (None: in memory). Ignored when ``state`` is given.
        plugin_id: plugin id to serve; None keeps the one stored in ``db`` (or the default).
        secret: admin secret; None keeps the stored one (or makes a random one).
        faults: initial fault knobs.
        profile: the documented reading to play (default: the strictest).
        state: an existing state to serve (the other arguments are then ignored).

    Example:
        >>> app = create_app(secret="s3cr3t")
        >>> app.state.emulator.secret.reveal()
        's3cr3t'
    """
    if state is None:
        state = EmulatorState(
            db=db, plugin_id=plugin_id, secret=secret, faults=faults, profile=profile
        )
    routes = [*ContractApi(state).routes(), *ControlApi(state).routes()]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultPipeline, state=state)],
        exception_handlers={Problem: _on_problem, HTTPException: _on_http_error},
    )
    app.state.emulator = state
    return app
