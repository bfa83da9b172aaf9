"""Serving the emulator: uvicorn in a background thread, in a child process, or in the foreground.

``running()`` is what tests, notebooks and benchmarks use::

    with running(seed=100) as emu:
        app = pluginlab_admin.App(secret_key=emu.secret.reveal(), plugin_id=emu.plugin_id, ...)

Drop-after-commit needs the connection's socket, which ASGI does not expose: the server
runs uvicorn's h11 protocol subclassed to put each connection's transport into the scope's
``extensions`` (see :data:`~plabdata.emulator.app.TRANSPORT_EXTENSION`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import httpx
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from plabdata.config import ENV_AUTH_URL, Settings
from plabdata.emulator.app import TRANSPORT_EXTENSION, create_app
from plabdata.emulator.clock import DAY_MS
from plabdata.emulator.faults import Faults
from plabdata.emulator.handle import EmulatorHandle, settings_for
from plabdata.emulator.model import now_ms as wall_clock_ms
from plabdata.emulator.profile import Profile
from plabdata.emulator.seed import seed_members
from plabdata.emulator.state import EmulatorState

#: The child process reads its secret from here, not from argv (visible to ``ps``).
SECRET_ENV = "PLABDATA_EMULATOR_SECRET"
START_TIMEOUT = 30.0


class TransportExposingProtocol(H11Protocol):
    """uvicorn's h11 protocol, handing each connection's transport to the app (for drops)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        inner = self.app

        async def app_with_transport(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[TRANSPORT_EXTENSION] = transport
            await inner(scope, receive, send)

        self.app = app_with_transport


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (``port=0`` picks a free one).

    Raises:
        OSError: the address is in use or not available.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on such sockets, and without it
    # every response waits ~40 ms on Nagle's algorithm and the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def origin_of(sock: socket.socket) -> str:
    """``http://host:port`` for a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_server(app: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=TransportExposingProtocol,
        ws="none",
        lifespan="off",
        # The app sends its own Date, from the emulator's clock (see app.py).
        date_header=False,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(config)


class ThreadServer:
    """uvicorn serving ``app`` on ``sock`` in a daemon thread."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.url = origin_of(sock)
        self._sock = sock
        self._server = _uvicorn_server(app)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="plabdata-emulator",
            daemon=True,
        )

    def start(self) -> None:
        """Start and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class ProcessServer:
    """``python -m plabdata.emulator`` in a child process; learns its settings from stdout."""

    def __init__(self, args: list[str], secret: str | None) -> None:
        env = dict(os.environ)
        if secret is not None:
            env[SECRET_ENV] = secret
        self._process = subprocess.Popen(
            [sys.executable, "-m", "plabdata.emulator", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.settings = self._read_settings()
        self.url = self.settings.auth_url

    def _read_settings(self) -> Settings:
        assert self._process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(
            target=_read_lines, args=(self._process.stdout, lines), daemon=True
        )
        reader.start()
        exports: dict[str, str] = {}
        deadline = time.monotonic() + START_TIMEOUT
        while ENV_AUTH_URL not in exports or len(exports) < 6:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError("the emulator process exited or hung before serving")
            name, _, value = line.strip().removeprefix("export ").partition("=")
            exports[name] = value
        return Settings.from_env(exports)

    def stop(self) -> None:
        """Interrupt the child (as Ctrl-C would) and wait; kill it if it lingers."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _wait_until_answering(handle: EmulatorHandle) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            handle.health()
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def running(
    *,
    seed: int = 0,
    random_seed: int = 0,
    db: str | Path | None = None,
    faults: Faults | None = None,
    profile: Profile | None = None,
    plugin_id: str | None = None,
    secret: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    mode: Literal["thread", "process"] = "thread",
    start_days_ago: float | None = None,
) -> Iterator[EmulatorHandle]:
    """Run an emulator for the duration of a ``with`` block.

    Args:
        seed: demo members to add when the store has none (see :mod:`plabdata.emulator.seed`).
        random_seed: seed of the demo data.
        db: SQLite file to keep state in; None keeps it in memory.
        faults: fault knobs to start with.
        profile: the documented reading to play (default: the strictest, pages of 50).
        plugin_id: the plugin id to answer to (default: the one stored in ``db``, or a fresh
            ``plg_emu_<hex>``: each emulator's member base is its own plugin).
        secret: admin secret; None keeps the one stored in ``db``, else a random one.
        host: interface to listen on.
        port: TCP port; 0 picks a free one.
        mode: ``"thread"`` (a uvicorn thread in this process) or ``"process"`` (a child
            process, so benchmarks do not share a CPU-bound interpreter with the server).
        start_days_ago: start the emulator's clock this many days before the wall clock
            (before seeding), to let time pass up to today with ``advance``; refused
            (:class:`~plabdata.errors.Conflict`) when ``db`` holds data.

    Yields:
        The handle: URL, credentials, ready-made ``settings`` and the control API.
    """
    if mode == "process":
        args = ["--host", host, "--port", str(port)]
        if plugin_id is not None:
            args += ["--plugin-id", plugin_id]
        if db is not None:
            args += ["--db", str(db)]
        child = ProcessServer(args, secret)
        handle = EmulatorHandle(child.url, child.settings.plugin_id, child.settings.secret)
        stop: Callable[[], None] = child.stop
    elif mode == "thread":
        state = EmulatorState(db=db, plugin_id=plugin_id, secret=secret)
        try:
            server = ThreadServer(create_app(state=state), bind_socket(host, port))
            server.start()
        except BaseException:
            state.close()
            raise
        handle = EmulatorHandle(server.url, state.plugin_id, state.secret)

        def stop() -> None:
            server.stop()
            state.close()

    else:
        raise ValueError(f"mode must be 'thread' or 'process', not {mode!r}")
    try:
        _wait_until_answering(handle)
        if faults is not None:
            handle.set_faults(faults)
        if profile is not None:
            handle.set_profile(profile)
        if start_days_ago is not None:
            handle.set_clock(days_ago=start_days_ago)
        if seed and handle.stats()["members"] == 0:
            handle.seed(seed, random_seed)
        yield handle
    finally:
        handle.close()
        stop()


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    db: str | Path | None = None,
    seed: int = 0,
    random_seed: int = 0,
    faults: Faults | None = None,
    profile: Profile | None = None,
    plugin_id: str | None = None,
    secret: str | None = None,
    start_days_ago: float | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve in the foreground until interrupted, after echoing ``export`` lines.

    ``seed`` members are added only when the store is empty, so restarting on the same
    ``db`` neither duplicates data nor changes the printed credentials. ``start_days_ago``
    starts the clock that many days before the wall clock, before seeding.

    Raises:
        OSError: the port is taken (raised before anything is printed).
        ClockBackwards: ``start_days_ago`` is earlier than the clock of a ``db`` with data.
    """
    sock = bind_socket(host, port)
    state = EmulatorState(db=db, plugin_id=plugin_id, secret=secret, faults=faults, profile=profile)
    try:
        if start_days_ago is not None:
            state.clock.set(wall_clock_ms() - round(start_days_ago * DAY_MS))
        if seed and state.store.count_members() == 0:
            seed_members(
                state.store,
                seed,
                random_seed=random_seed,
                plugin_id=state.plugin_id,
                now=state.clock.now_ms(),
            )
        for line in settings_for(origin_of(sock), state.plugin_id, state.secret).export_lines():
            echo(line)
        server = _uvicorn_server(create_app(state=state))
        server.run(sockets=[sock])
    finally:
        state.close()
        sock.close()
