"""A real HTTP server that misbehaves on purpose: stalls, trickles, answers odd shapes.

The emulator is faithful by design; the ways a server or a proxy in front of it can go
wrong (accepting and never answering, one byte a second, a 200 that is not the documented
shape, a fresh cursor for the same page) are played here over a real loopback socket, so
the client's real transport, deadlines and parsing are what is tested.

    >>> with HostileServer(lambda req: Reply(200, b'{"items": []}')) as server:
    ...     settings = server.settings()
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from plabdata.config import Settings


@dataclass
class Request:
    """What the client sent (method, path, query) — enough to decide the answer."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


@dataclass
class Reply:
    """How to answer: a status and body, or ``stall`` (never answer), or ``trickle`` (send
    the answer one byte every ``trickle`` seconds)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    stall: bool = False
    trickle: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


class HostileServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering every request with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[Request] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._sock.close()

    def settings(self, **overrides: object) -> Settings:
        """Settings whose every base URL points here."""
        values: dict[str, object] = {
            "plugin_id": "plg_hostile",
            "secret": "hostile-secret",
            "auth_url": self.url,
            "cert_url": f"{self.url}/admin/v1/cert",
            "event_url": self.url,
            "monetization_url": f"{self.url}/v1",
            "rate_limit": 1000.0,
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    if not buffer and chunk.startswith(b"\x16\x03"):
                        # A TLS hello to a plain HTTP server: answer as nginx does, in clear.
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(":") for x in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                while len(rest) < length:
                    rest += conn.recv(65536)
                body, buffer = rest[:length], rest[length:]
                parts = urlsplit(target)
                request = Request(method, parts.path, parse_qs(parts.query), body)
                self.requests.append(request)
                reply = self.handler(request)
                if reply.stall:
                    self._stop.wait(600)
                    return
                extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                raw = (
                    f"HTTP/1.1 {reply.status} X\r\ncontent-type: {reply.content_type}\r\n"
                    f"content-length: {len(reply.body)}\r\n{extra}\r\n"
                ).encode() + reply.body
                if reply.trickle is None:
                    conn.sendall(raw)
                    continue
                for byte in raw:
                    if self._stop.is_set():
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:  # the client gave up, as it should
                        return
                    time.sleep(reply.trickle)


def free_port() -> int:
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
