"""A cert endpoint of our own: a real TCP server on loopback that serves a JWKS — or misbehaves.

The emulator answers well-formed requests promptly; these tests also need an endpoint that
accepts connections and never answers, or trickles its answer one byte a second, and tokens
shaped in ways the emulator does not mint (snake_case claims, another issuer). So the server
speaks just enough HTTP/1.1 by hand, counts connections, and notices when the client hangs up.
The fixtures are in tests/auth/conftest.py.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from plabdata.wire import DEFAULT_ISSUER

AUDIENCE = "plugin:p-local:admin"


@dataclass
class Signer:
    """One RSA key with its ``kid``: publishes a JWK and signs PS256 tokens."""

    kid: str
    key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAPSSAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "PS256"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """A compact PS256 JWS, by hand (PyJWT refuses some claims these tests need).

        ``header`` adds or replaces header fields; a None value removes one (``kid=None``).
        """
        fields = {"alg": "PS256", "typ": "JWT", "kid": self.kid, **header}
        head = _b64(json.dumps({k: v for k, v in fields.items() if v is not None}))
        body = _b64(json.dumps(claims))
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = self.key.sign(f"{head}.{body}".encode(), pss, hashes.SHA256())
        return f"{head}.{body}.{_b64(signature)}"


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    """PluginLab-shaped claims for :data:`AUDIENCE`, valid for an hour; overrides replace."""
    now = int(time.time())
    base: dict[str, Any] = {
        "uid": "mem_local",
        "iss": DEFAULT_ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
        "user": {"id": "mem_local", "email": "ada@example.com", "planId": "pro"},
    }
    return {**base, **overrides}


@dataclass
class CertServer:
    """A cert endpoint on 127.0.0.1. ``mode`` decides how each new connection is answered:

    - ``"jwks"``: 200 with :attr:`jwks` at once;
    - ``"status"``: :attr:`status` with a short body;
    - ``"silent"``: read the request, then never answer;
    - ``"trickle"``: the whole 200 answer, one byte per :attr:`interval` seconds (so the
      headers never complete within a short deadline);
    - ``"trickle-body"``: the headers at once, then the body one byte per :attr:`interval`.
    """

    mode: str = "jwks"
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    status: int = 503
    interval: float = 1.0
    connections: int = 0
    hung_up: int = 0  # connections the client closed before the answer was complete
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> CertServer:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/admin/v1/cert"
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def wait_for(self, condition: Callable[[CertServer], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition(self)`` holds (True) or ``timeout`` passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout=timeout)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _note(self, name: str) -> None:
        with self._changed:
            setattr(self, name, getattr(self, name) + 1)
            self._changed.notify_all()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._note("connections")
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.setblocking(True)
            if not self._read_request(conn):
                return
            body = json.dumps(self.jwks).encode() if self.mode != "status" else b"{}"
            status = self.status if self.mode == "status" else 200
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            if self.mode in ("jwks", "status"):
                conn.sendall(head + body)
            elif self.mode == "silent":
                while not self._stop.is_set():
                    if self._client_left(conn, 0.1):
                        return
            elif self.mode == "trickle":
                self._trickle(conn, head + body)
            elif self.mode == "trickle-body":
                conn.sendall(head)
                self._trickle(conn, body)

    def _read_request(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            if self._stop.is_set():
                return False
            readable, _, _ = select.select([conn], [], [], 0.1)
            if readable:
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                data += chunk
        return True

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self._stop.is_set() or self._client_left(conn, self.interval):
                return
            try:
                conn.sendall(data[i : i + 1])
            except OSError:
                self._note("hung_up")
                return

    def _client_left(self, conn: socket.socket, timeout: float) -> bool:
        """Wait up to ``timeout``; True (and counted) when the client closed the connection."""
        readable, _, _ = select.select([conn], [], [], timeout)
        if not readable:
            return False
        try:
            gone = conn.recv(4096) == b""
        except OSError:
            gone = True
        if gone:
            self._note("hung_up")
        return gone
