"""Verify and parse PluginLab webhook deliveries.

PluginLab signs each delivery: ``X-PluginLab-Signature`` is the hex HMAC-SHA256 of the **raw
request body** keyed with the webhook secret. Verify the bytes exactly as received — before any
JSON parsing, re-serialising or text decoding — or a valid delivery will not verify:

- Flask: ``request.get_data()``; FastAPI/Starlette: ``await request.body()``; Django:
  ``request.body``. A ``str`` is accepted and encoded as UTF-8 (``surrogateescape``, so text
  decoded that way round-trips to the same bytes), but bytes are what arrived on the wire.

Replay protection: ``X-PluginLab-Timestamp`` (seconds *or* milliseconds since the epoch; values
of 10¹¹ and more are milliseconds — 10¹¹ seconds is the year 5138, 10¹¹ ms is 1973) must be
within ``tolerance`` seconds of now. PluginLab's signature covers the body only, not that
header, so the check stops stale re-sends but not an attacker who rewrites the header: make
handlers idempotent on ``delivery_id`` as well.

    >>> sig = sign_webhook(b'{"a":1}', "whsec")
    >>> verify_webhook(b'{"a":1}', sig, "whsec")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from plabdata.config import Secret
from plabdata.errors import ConfigError, WebhookError, WebhookReplayError, WebhookSignatureError

__all__ = [
    "WebhookEvent",
    "WebhookHeader",
    "parse_webhook",
    "sign_webhook",
    "verify_webhook",
]

DEFAULT_TOLERANCE: Final = 300.0
# At or above this a timestamp is read as milliseconds (see the module docstring).
MILLISECONDS_THRESHOLD: Final = 10**11
_HEX_DIGITS: Final = frozenset(string.hexdigits)
_SIGNATURE_LENGTH: Final = hashlib.sha256().digest_size * 2


class WebhookHeader(StrEnum):
    """The headers PluginLab sends with each webhook delivery (the one place they are spelled)."""

    Signature = "X-PluginLab-Signature"
    Event = "X-PluginLab-Event"
    DeliveryId = "X-PluginLab-Delivery-Id"
    HookId = "X-PluginLab-Hook-Id"
    PluginId = "X-PluginLab-Plugin-Id"
    SignatureVersion = "X-PluginLab-Signature-Version"
    SignatureAlgorithm = "X-PluginLab-Signature-Algorithm"
    Timestamp = "X-PluginLab-Timestamp"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified delivery. ``payload`` is the parsed JSON body; ``timestamp`` is UTC or None."""

    event: str
    delivery_id: str
    hook_id: str
    plugin_id: str
    timestamp: datetime | None
    payload: Any


def sign_webhook(raw_body: bytes | str, secret: str | Secret) -> str:
    """The ``X-PluginLab-Signature`` value PluginLab would send for this body: lowercase hex.

    For tests and for emulating deliveries to your own endpoint.

    Example:
        >>> sign_webhook(b"{}", "whsec")[:8]
        'ae6341ea'
    """
    return hmac.new(_key(secret), _body_bytes(raw_body), hashlib.sha256).hexdigest()


def verify_webhook(
    raw_body: bytes | str,
    signature: str | None,
    secret: str | Secret,
    *,
    timestamp: str | float | None = None,
    tolerance: float | None = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a delivery's signature (constant-time) and, when given, its timestamp.

    Args:
        raw_body: the request body exactly as received (bytes; str is encoded as UTF-8).
        signature: the ``X-PluginLab-Signature`` header value (hex, any case).
        secret: the webhook secret.
        timestamp: the ``X-PluginLab-Timestamp`` header value; None skips the replay check.
        tolerance: seconds the timestamp may differ from ``now``; None skips the check.
        now: seconds since the epoch (default: the system clock), for tests.

    Raises:
        WebhookSignatureError: the signature is missing, malformed or wrong.
        WebhookReplayError: the timestamp is malformed or outside the tolerance.

    Example:
        >>> verify_webhook(request.get_data(), request.headers.get("X-PluginLab-Signature"),
        ...                secret, timestamp=request.headers.get("X-PluginLab-Timestamp"))
    """
    key = _key(secret)
    body = _body_bytes(raw_body)
    if not signature or not signature.strip():
        raise WebhookSignatureError(f"missing {WebhookHeader.Signature} header")
    given = signature.strip().lower()
    # The length/alphabet check only looks at the attacker's own input, so it leaks nothing.
    if len(given) != _SIGNATURE_LENGTH or not _HEX_DIGITS.issuperset(given):
        raise WebhookSignatureError(
            f"{WebhookHeader.Signature} is not a hex HMAC-SHA256 ({_SIGNATURE_LENGTH} digits)"
        )
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
        raise WebhookSignatureError("the webhook signature does not match the body")
    if timestamp is not None and tolerance is not None:
        _check_timestamp(_epoch_seconds(timestamp), tolerance, now)


def parse_webhook(
    headers: Mapping[str, str],
    raw_body: bytes | str,
    secret: str | Secret,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    plugin_id: str | None = None,
    now: float | None = None,
) -> WebhookEvent:
    """Verify a delivery and return it typed; header names are matched case-insensitively.

    With a ``tolerance`` (the default) the timestamp header is required and checked; pass
    ``tolerance=None`` to skip replay protection. With ``plugin_id``, a delivery addressed to
    another plugin is refused.

    Raises:
        WebhookSignatureError: signature missing or wrong.
        WebhookReplayError: timestamp missing, malformed or outside the tolerance.
        WebhookError: another required header is missing, the plugin id differs, or the body
            is not JSON.

    Example:
        >>> event = parse_webhook(request.headers, request.get_data(), secret)
        >>> event.event, event.payload
    """
    lowered = {str(name).lower(): value for name, value in headers.items()}

    def header(name: WebhookHeader) -> str | None:
        value = lowered.get(name.lower())
        return value.strip() if value is not None and value.strip() else None

    raw_timestamp = header(WebhookHeader.Timestamp)
    if tolerance is not None and raw_timestamp is None:
        # Check the signature first so a forged delivery is reported as forged.
        verify_webhook(raw_body, header(WebhookHeader.Signature), secret)
        raise WebhookReplayError(f"missing {WebhookHeader.Timestamp} header")
    verify_webhook(
        raw_body,
        header(WebhookHeader.Signature),
        secret,
        timestamp=raw_timestamp,
        tolerance=tolerance,
        now=now,
    )
    fields: dict[WebhookHeader, str] = {}
    for name in (
        WebhookHeader.Event,
        WebhookHeader.DeliveryId,
        WebhookHeader.HookId,
        WebhookHeader.PluginId,
    ):
        value = header(name)
        if value is None:
            raise WebhookError(f"missing {name} header")
        fields[name] = value
    if plugin_id is not None and fields[WebhookHeader.PluginId] != plugin_id:
        raise WebhookError(f"the delivery is for another plugin, not {plugin_id!r}")
    try:
        payload = json.loads(_body_bytes(raw_body))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise WebhookError("the webhook body is not JSON") from None
    when = None
    if raw_timestamp is not None:
        try:
            when = datetime.fromtimestamp(_epoch_seconds(raw_timestamp), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise WebhookReplayError(f"{WebhookHeader.Timestamp} is out of range") from None
    return WebhookEvent(
        event=fields[WebhookHeader.Event],
        delivery_id=fields[WebhookHeader.DeliveryId],
        hook_id=fields[WebhookHeader.HookId],
        plugin_id=fields[WebhookHeader.PluginId],
        timestamp=when,
        payload=payload,
    )


def _key(secret: str | Secret) -> bytes:
    text = secret.reveal() if isinstance(secret, Secret) else secret
    if not isinstance(text, str) or not text:
        # An empty key would make every signature computable by anyone who guesses that.
        raise ConfigError("the webhook secret is empty")
    return text.encode("utf-8")


def _body_bytes(raw_body: bytes | str) -> bytes:
    if isinstance(raw_body, str):
        try:
            return raw_body.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise WebhookSignatureError(
                "the body is not encodable as UTF-8: pass the raw request bytes"
            ) from None
    if isinstance(raw_body, bytes | bytearray | memoryview):
        return bytes(raw_body)
    raise TypeError(f"raw_body must be bytes or str, not {type(raw_body).__name__}")


def _epoch_seconds(timestamp: str | float) -> float:
    try:
        value = float(timestamp.strip() if isinstance(timestamp, str) else timestamp)
    except (TypeError, ValueError):
        raise WebhookReplayError(f"{WebhookHeader.Timestamp} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise WebhookReplayError(f"{WebhookHeader.Timestamp} is not a valid time")
    return value / 1000 if value >= MILLISECONDS_THRESHOLD else value


def _check_timestamp(sent_at: float, tolerance: float, now: float | None) -> None:
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise WebhookReplayError(
            f"the delivery's timestamp is {sent_at - current:+.0f} s from now "
            f"(tolerance {tolerance:g} s): replayed or clocks out of sync"
        )
