"""Webhook signatures, replay protection and parsing (plabdata/webhooks.py).

These are pure functions over bytes and headers: no server is involved, so no emulator either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from plabdata.auth._webhooks import (
    WebhookEvent,
    WebhookHeader,
    parse_webhook,
    sign_webhook,
    verify_webhook,
)
from plabdata.config import Secret
from plabdata.errors import ConfigError, WebhookError, WebhookReplayError, WebhookSignatureError

SECRET = "whsec_test_4f1c"
NOW = 1_790_000_000.0  # a fixed "now" (2026-09) so no test depends on the wall clock
BODY = json.dumps(
    {"event": "member.created", "member": {"id": "mem_1", "name": "Zoë Ångström ✓"}},
    ensure_ascii=False,
).encode("utf-8")


def _hmac_hex(body: bytes, secret: str = SECRET) -> str:
    # Independent of plabdata: the contract's definition of the signature.
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _headers(body: bytes = BODY, /, **changes: str | None) -> dict[str, str]:
    headers = {
        WebhookHeader.Signature: _hmac_hex(body),
        WebhookHeader.Event: "member.created",
        WebhookHeader.DeliveryId: "dlv_1",
        WebhookHeader.HookId: "hook_1",
        WebhookHeader.PluginId: "plugin_1",
        WebhookHeader.SignatureVersion: "1",
        WebhookHeader.SignatureAlgorithm: "sha256",
        WebhookHeader.Timestamp: str(int(NOW * 1000)),
    }
    out: dict[str, str] = {str(k): v for k, v in headers.items()}
    for attr, value in changes.items():
        name = str(WebhookHeader[attr])
        if value is None:
            del out[name]
        else:
            out[name] = value
    return out


# -- signatures ----------------------------------------------------------------------------------


def test_valid_signature_verifies() -> None:
    verify_webhook(BODY, _hmac_hex(BODY), SECRET)
    verify_webhook(BODY, _hmac_hex(BODY), Secret(SECRET))
    buffer: Any = bytearray(BODY)  # bytes-like bodies (bytearray, memoryview) work too
    verify_webhook(buffer, _hmac_hex(BODY), SECRET)


def test_sign_webhook_matches_the_contract_and_the_official_client() -> None:
    from pluginlab_admin import Webhook

    text = '{"event":"ping","n":1}'
    assert sign_webhook(BODY, SECRET) == _hmac_hex(BODY)
    assert Webhook(SECRET).is_signature_valid(text, sign_webhook(text, SECRET))


def test_signature_hex_is_case_insensitive_and_trimmed() -> None:
    verify_webhook(BODY, _hmac_hex(BODY).upper(), SECRET)
    verify_webhook(BODY, f"  {_hmac_hex(BODY)}\t", SECRET)


@pytest.mark.parametrize("position", [0, 1, len(BODY) // 2, len(BODY) - 1])
def test_one_changed_byte_is_rejected(position: int) -> None:
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook(bytes(tampered), _hmac_hex(BODY), SECRET)


def test_appended_byte_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError):
        verify_webhook(BODY + b"\n", _hmac_hex(BODY), SECRET)


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook(BODY, _hmac_hex(BODY, "another-secret"), SECRET)


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_missing_signature_is_rejected(signature: str | None) -> None:
    with pytest.raises(WebhookSignatureError, match="missing X-PluginLab-Signature"):
        verify_webhook(BODY, signature, SECRET)


@pytest.mark.parametrize(
    "signature",
    [
        "abc",
        "z" * 64,
        "é" * 64,
        "sha256=" + _hmac_hex(BODY),
        _hmac_hex(BODY) + "0",
        _hmac_hex(BODY)[:-1],
    ],
)
def test_malformed_signature_is_rejected(signature: str) -> None:
    with pytest.raises(WebhookSignatureError, match="not a hex HMAC-SHA256"):
        verify_webhook(BODY, signature, SECRET)


def test_empty_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        verify_webhook(BODY, _hmac_hex(BODY, ""), "")
    with pytest.raises(ConfigError):
        sign_webhook(BODY, Secret(""))


def test_error_messages_do_not_contain_the_secret_or_the_expected_signature() -> None:
    with pytest.raises(WebhookSignatureError) as info:
        verify_webhook(BODY, "0" * 64, SECRET)
    assert SECRET not in str(info.value)
    assert _hmac_hex(BODY) not in str(info.value)


# -- str vs bytes -------------------------------------------------------------------------------


def test_str_body_is_utf8_encoded_both_ways() -> None:
    text = BODY.decode("utf-8")
    assert any(ord(ch) > 127 for ch in text)
    verify_webhook(text, _hmac_hex(BODY), SECRET)  # signed as bytes, verified as str
    verify_webhook(BODY, sign_webhook(text, SECRET), SECRET)  # signed as str, verified as bytes
    assert sign_webhook(text, SECRET) == sign_webhook(BODY, SECRET)


def test_str_body_decoded_with_another_codec_does_not_verify() -> None:
    # Why the docs say "pass the raw bytes": latin-1 text re-encodes to other bytes.
    with pytest.raises(WebhookSignatureError):
        verify_webhook(BODY.decode("latin-1"), _hmac_hex(BODY), SECRET)


def test_surrogateescape_text_round_trips_to_the_wire_bytes() -> None:
    raw = b'{"blob": "\xff\xfe"}'
    verify_webhook(raw.decode("utf-8", "surrogateescape"), _hmac_hex(raw), SECRET)


def test_unencodable_str_body_is_a_signature_error() -> None:
    with pytest.raises(WebhookSignatureError, match="raw request bytes"):
        verify_webhook("\ud800", "0" * 64, SECRET)


def test_non_text_body_is_a_type_error() -> None:
    body: Any = {"event": "x"}
    with pytest.raises(TypeError):
        verify_webhook(body, "0" * 64, SECRET)


# -- replay protection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [NOW, int(NOW), str(int(NOW)), str(int(NOW * 1000)), NOW * 1000, str(int(NOW) - 299)],
)
def test_timestamp_within_tolerance_passes_in_seconds_or_milliseconds(
    timestamp: str | float,
) -> None:
    verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=timestamp, now=NOW)


@pytest.mark.parametrize(
    "timestamp",
    [
        str(int(NOW) - 301),  # replayed 5 minutes later
        str(int(NOW) + 301),  # from the future
        str(int((NOW - 3600) * 1000)),  # milliseconds, an hour old
        "0",
    ],
)
def test_timestamp_outside_tolerance_is_a_replay(timestamp: str) -> None:
    with pytest.raises(WebhookReplayError, match="tolerance 300 s"):
        verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=timestamp, now=NOW)


def test_tolerance_is_configurable() -> None:
    old = str(int(NOW) - 3000)
    verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=old, tolerance=3600, now=NOW)
    verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=old, tolerance=None, now=NOW)
    with pytest.raises(WebhookReplayError):
        verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=old, tolerance=60, now=NOW)


def test_replay_check_uses_the_clock_by_default() -> None:
    verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=str(time.time()))
    with pytest.raises(WebhookReplayError):
        verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=str(time.time() - 900))


@pytest.mark.parametrize("timestamp", ["abc", "", "nan", "inf", "-5", "1e400"])
def test_malformed_timestamp_is_a_replay_error(timestamp: str) -> None:
    with pytest.raises(WebhookReplayError):
        verify_webhook(BODY, _hmac_hex(BODY), SECRET, timestamp=timestamp, now=NOW)


def test_signature_is_checked_before_the_timestamp() -> None:
    with pytest.raises(WebhookSignatureError):
        verify_webhook(BODY, "0" * 64, SECRET, timestamp="0", now=NOW)


# -- parse_webhook -------------------------------------------------------------------------------


def test_parse_webhook_returns_a_typed_event() -> None:
    event = parse_webhook(_headers(), BODY, SECRET, now=NOW)
    assert event == WebhookEvent(
        event="member.created",
        delivery_id="dlv_1",
        hook_id="hook_1",
        plugin_id="plugin_1",
        timestamp=datetime.fromtimestamp(int(NOW), tz=UTC),
        payload=json.loads(BODY),
    )
    assert event.payload["member"]["name"] == "Zoë Ångström ✓"


@pytest.mark.parametrize("case", [str.lower, str.upper, str.swapcase])
def test_parse_webhook_header_names_are_case_insensitive(case: Any) -> None:
    headers = {case(name): value for name, value in _headers().items()}
    assert parse_webhook(headers, BODY, SECRET, now=NOW).delivery_id == "dlv_1"


def test_parse_webhook_accepts_framework_header_objects() -> None:
    from starlette.datastructures import Headers as StarletteHeaders
    from werkzeug.datastructures import Headers as WerkzeugHeaders

    wz: Any = WerkzeugHeaders(list(_headers().items()))
    st: Mapping[str, str] = StarletteHeaders(headers=_headers())
    assert parse_webhook(wz, BODY, SECRET, now=NOW).hook_id == "hook_1"
    assert parse_webhook(st, BODY, SECRET, now=NOW).hook_id == "hook_1"


@pytest.mark.parametrize("missing", ["Event", "DeliveryId", "HookId", "PluginId"])
def test_parse_webhook_names_a_missing_header(missing: str) -> None:
    with pytest.raises(WebhookError, match=f"missing {WebhookHeader[missing]}"):
        parse_webhook(_headers(**{missing: None}), BODY, SECRET, now=NOW)


def test_parse_webhook_missing_signature() -> None:
    with pytest.raises(WebhookSignatureError, match="missing X-PluginLab-Signature"):
        parse_webhook(_headers(Signature=None), BODY, SECRET, now=NOW)


def test_parse_webhook_missing_timestamp_needs_tolerance_none() -> None:
    headers = _headers(Timestamp=None)
    with pytest.raises(WebhookReplayError, match="missing X-PluginLab-Timestamp"):
        parse_webhook(headers, BODY, SECRET, now=NOW)
    assert parse_webhook(headers, BODY, SECRET, tolerance=None).timestamp is None


def test_parse_webhook_forged_delivery_without_timestamp_is_reported_as_forged() -> None:
    with pytest.raises(WebhookSignatureError):
        parse_webhook(_headers(Timestamp=None, Signature="0" * 64), BODY, SECRET, now=NOW)


def test_parse_webhook_replayed_delivery() -> None:
    with pytest.raises(WebhookReplayError):
        parse_webhook(_headers(), BODY, SECRET, now=NOW + 3600)


def test_parse_webhook_one_changed_byte() -> None:
    with pytest.raises(WebhookSignatureError):
        parse_webhook(_headers(), BODY.replace(b"mem_1", b"mem_2"), SECRET, now=NOW)


def test_parse_webhook_body_must_be_json() -> None:
    body = b"event=member.created"
    with pytest.raises(WebhookError, match="not JSON"):
        parse_webhook(_headers(body, Signature=_hmac_hex(body)), body, SECRET, now=NOW)
    latin = b'{"name": "\xe9"}'  # signed, but not UTF-8 so not JSON
    with pytest.raises(WebhookError, match="not JSON"):
        parse_webhook(_headers(latin, Signature=_hmac_hex(latin)), latin, SECRET, now=NOW)


def test_parse_webhook_checks_the_plugin_id_when_asked() -> None:
    assert parse_webhook(_headers(), BODY, SECRET, plugin_id="plugin_1", now=NOW)
    with pytest.raises(WebhookError, match="another plugin"):
        parse_webhook(_headers(), BODY, SECRET, plugin_id="plugin_2", now=NOW)


def test_parse_webhook_str_body() -> None:
    event = parse_webhook(_headers(), BODY.decode("utf-8"), SECRET, now=NOW)
    assert event.payload == json.loads(BODY)


# -- the header enum -----------------------------------------------------------------------------


def test_header_names_match_the_official_client() -> None:
    from pluginlab_admin import WebhookHeaders

    for header in WebhookHeader:
        assert WebhookHeaders[header.name].value == header.value
    assert f"{WebhookHeader.Signature}" == "X-PluginLab-Signature"  # usable as a plain str
