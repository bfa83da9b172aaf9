"""A server that misbehaves: every case ends in a clear, typed error or the right result —
never a hang, a traceback from the JSON decoder, or a silently empty member base."""

from __future__ import annotations

import json
import time

import pytest

import plabdata
from plabdata.errors import PaginationError, TransportError, UnexpectedResponse

from .hostile import HostileServer, Reply, Request, free_port

MEMBER = {
    "id": "mem_" + "1" * 40,
    "auth": {"email": "a@x.io", "isVerified": True, "hasPassword": True, "signInMethod": "google"},
    "customFields": {},
    "metadata": {},
    "createdAtMs": 1,
    "updatedAtMs": 1,
}


def _json(status: int, body: object) -> Reply:
    return Reply(status, json.dumps(body).encode())


def test_a_server_that_never_answers_ends_the_load_with_the_url(monkeypatch):
    with HostileServer(lambda request: Reply(stall=True)) as server:
        started = time.monotonic()
        admin = plabdata.connect(server.settings(timeout=0.5))
        with admin, pytest.raises(TransportError) as info:
            plabdata.load_members(admin, progress=False)
        elapsed = time.monotonic() - started
    error = info.value
    assert error.kind == "timeout" and error.url == server.url
    assert "no complete answer within 0.5 s" in str(error)
    assert server.url in str(error) and "PLUGINLAB_AUTH_URL" in str(error)
    assert server.connections <= 3  # a few deadlines, not the whole retry budget
    assert elapsed < 30


def test_a_server_that_trickles_one_byte_at_a_time_is_cut_at_the_deadline():
    body = json.dumps({"items": [MEMBER], "total": 1, "nextPageToken": None}).encode()
    with HostileServer(lambda request: Reply(200, body, trickle=0.2)) as server:
        admin = plabdata.connect(server.settings(timeout=0.6, max_attempts=2))
        with admin, pytest.raises(TransportError) as info:
            admin.list_members_page()
    assert info.value.kind == "timeout"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"total": 3, "nextPageToken": None}, "items is missing"),
        ({"items": None, "total": 3, "nextPageToken": None}, "items is null"),
        ({"items": [], "total": 0}, "no nextPageToken"),
        ({"items": [{"auth": {}}], "total": 1, "nextPageToken": None}, "member.id is missing"),
        ({"items": [MEMBER], "total": "1", "nextPageToken": None}, "total is a string"),
        ([MEMBER], "not an object"),
    ],
)
def test_a_page_of_the_wrong_shape_is_a_typed_error_naming_the_endpoint(body, expected):
    with HostileServer(lambda request: _json(200, body)) as server:
        admin = plabdata.connect(server.settings())
        with admin, pytest.raises(UnexpectedResponse) as info:
            plabdata.load_members(admin, progress=False)
    assert expected in str(info.value)
    assert info.value.path == "/admin/plugins/plg_hostile/members"
    assert info.value.method == "GET"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"<html>maintenance</html>", content_type="text/html"),
        Reply(200, b""),
        Reply(200, b'{"items": ['),
    ],
)
def test_a_success_that_is_not_json_is_a_typed_error(reply):
    with (
        HostileServer(lambda request: reply) as server,
        plabdata.connect(server.settings()) as admin,
    ):
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            admin.get_member("mem_" + "2" * 40)
        with pytest.raises(UnexpectedResponse):
            admin.get_quota_usage("mem_" + "2" * 40)


def test_quota_and_identities_shapes_are_checked():
    def answer(request: Request) -> Reply:
        if request.path.endswith("/quota-usage"):
            return _json(200, {"interval": "month", "usageCount": 3})
        return _json(200, {"google": "not-an-object"})

    with HostileServer(answer) as server, plabdata.connect(server.settings()) as admin:
        with pytest.raises(UnexpectedResponse, match=r"isOverLimit|resetInDays|usageLimit"):
            admin.get_quota_usage("mem_x")
        with pytest.raises(UnexpectedResponse, match="identity google"):
            admin.get_identities("mem_x")


def test_a_fresh_cursor_for_the_same_page_stops_after_a_few_pages():
    counter = iter(range(10_000))

    def answer(request: Request) -> Reply:
        return _json(200, {"items": [MEMBER], "total": 5000, "nextPageToken": f"c{next(counter)}"})

    with HostileServer(answer) as server:
        admin = plabdata.connect(server.settings())
        with admin, pytest.raises(PaginationError, match="no new member"):
            plabdata.load_members(admin, progress=False)
    assert len(server.requests) <= 5


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b""),
        Reply(200, b"OK", content_type="text/plain"),
        Reply(201, b"{}"),
        Reply(204, b""),
        Reply(202, b"<p>queued</p>", content_type="text/html"),
    ],
)
def test_any_2xx_from_create_custom_means_recorded(reply):
    with HostileServer(lambda request: reply) as server, plabdata.connect(server.settings()) as a:
        a.create_event("WEB_UI", member_id="mem_x")  # no exception: recorded
    assert [r.path for r in server.requests] == ["/events/create-custom"]  # sent once


def test_a_patch_answered_without_a_body_reads_the_member_back():
    def answer(request: Request) -> Reply:
        if request.method == "PATCH":
            return Reply(204, b"")
        return _json(200, {**MEMBER, "name": "Ada"})

    with HostileServer(answer) as server, plabdata.connect(server.settings()) as admin:
        member = admin.update_member(MEMBER["id"], name="Ada")
    assert member.name == "Ada"
    assert [r.method for r in server.requests] == ["PATCH", "GET"]


def test_connection_refused_names_the_url_and_the_setting_and_fails_fast():
    url = f"http://127.0.0.1:{free_port()}"
    settings = plabdata.Settings(plugin_id="p", secret="s", auth_url=url)
    started = time.monotonic()
    with plabdata.connect(settings) as admin, pytest.raises(TransportError) as info:
        admin.get_member("mem_x")
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert f"could not connect to {url}: connection refused" in message
    assert message.endswith("check PLUGINLAB_AUTH_URL")
    assert info.value.kind == "refused" and not info.value.sent


def test_the_events_url_is_named_for_an_event():
    url = f"http://127.0.0.1:{free_port()}"
    settings = plabdata.Settings(plugin_id="p", secret="s", event_url=url)
    with plabdata.connect(settings) as admin, pytest.raises(TransportError, match="EVENT_URL"):
        admin.create_event("WEB_UI")


def test_an_unresolvable_host_is_a_dns_error_not_retried_at_length():
    settings = plabdata.Settings(plugin_id="p", secret="s", auth_url="http://no-such-host.invalid")
    with plabdata.connect(settings) as admin, pytest.raises(TransportError) as info:
        admin.get_member("mem_x")
    assert info.value.kind == "dns"
    assert "could not connect to http://no-such-host.invalid" in str(info.value)
    assert "PLUGINLAB_AUTH_URL" in str(info.value)


def test_tls_to_a_plain_http_server_is_a_tls_error_tried_once():
    with HostileServer(lambda request: _json(200, {})) as server:
        https = server.url.replace("http://", "https://")
        settings = plabdata.Settings(plugin_id="p", secret="s", monetization_url=https)
        with plabdata.connect(settings) as admin, pytest.raises(TransportError) as info:
            admin.get_quota_usage("mem_x")
    assert info.value.kind == "tls"
    assert "TLS handshake failed" in str(info.value)
    assert "PLUGINLAB_MONETIZATION_URL" in str(info.value)
    assert server.connections == 1
