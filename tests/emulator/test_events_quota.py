"""Custom events (validation, storage) and quota usage computed from them."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pluginlab_admin
import pytest

from plabdata.emulator import PLANS, EmulatorHandle
from plabdata.emulator.model import month_bounds, quota_usage


@pytest.fixture
def member_id(api: httpx.Client, members_path: str) -> str:
    body = {"email": "usage@example.com", "password": "secret1"}
    return str(api.post(members_path + "/members", json=body).json()["id"])


def _event(api: httpx.Client, **body: object) -> httpx.Response:
    return api.post("/events/create-custom", json=body)


def test_event_is_stored_normalized(emu: EmulatorHandle, api: httpx.Client, member_id: str) -> None:
    response = _event(
        api,
        eventSource="Web_Ui",
        memberId=member_id,
        location={"countryCode": "gb", "subdivisionCode": "eng"},
        isInQuota=False,
    )
    assert response.status_code == 200 and response.json() == {}
    (event,) = emu.events()
    assert event["eventSource"] == "WEB_UI"
    assert event["memberId"] == member_id
    assert (event["countryCode"], event["subdivisionCode"]) == ("GB", "ENG")
    assert event["isInQuota"] is False
    assert event["id"] >= 1 and event["receivedAtMs"] > 0


def test_event_defaults(emu: EmulatorHandle, api: httpx.Client) -> None:
    assert _event(api, eventSource="x", location=None, memberId=None).status_code == 200
    (event,) = emu.events()
    assert event["isInQuota"] is True
    assert event["memberId"] is None and event["countryCode"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid-event-source"),
        ({"eventSource": ""}, "invalid-event-source"),
        ({"eventSource": "ELEVENCHARS"}, "invalid-event-source"),
        ({"eventSource": 5}, "invalid-event-source"),
        ({"eventSource": "a", "memberId": 5}, "invalid-member-id"),
        ({"eventSource": "a", "location": "US"}, "invalid-location"),
        ({"eventSource": "a", "location": {}}, "invalid-country-code"),
        ({"eventSource": "a", "location": {"countryCode": "USA"}}, "invalid-country-code"),
        ({"eventSource": "a", "location": {"countryCode": "U1"}}, "invalid-country-code"),
        ({"eventSource": "a", "location": {"countryCode": "ÜS"}}, "invalid-country-code"),
        (
            {"eventSource": "a", "location": {"countryCode": "US", "subdivisionCode": 5}},
            "invalid-subdivision-code",
        ),
        (
            {"eventSource": "a", "location": {"countryCode": "US", "subdivisionCode": ""}},
            "invalid-subdivision-code",
        ),
        ({"eventSource": "a", "isInQuota": "yes"}, "invalid-is-in-quota"),
        ({"eventSource": "a", "timestamp": 1}, "invalid-field"),
    ],
)
def test_event_validation(
    emu: EmulatorHandle, api: httpx.Client, body: dict[str, object], code: str
) -> None:
    response = api.post("/events/create-custom", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert emu.events() == []


def test_event_for_unknown_member_is_404(emu: EmulatorHandle, api: httpx.Client) -> None:
    response = _event(api, eventSource="a", memberId="mem_" + "0" * 40)
    assert response.status_code == 404
    assert response.json()["code"] == "member-not-found"
    assert emu.events() == []


def test_quota_counts_in_quota_events_of_this_month(
    emu: EmulatorHandle, api: httpx.Client, member_id: str
) -> None:
    for _ in range(7):
        _event(api, eventSource="api", memberId=member_id)
    _event(api, eventSource="api", memberId=member_id, isInQuota=False)
    _event(api, eventSource="api")
    usage = api.get(f"/v1/admin/members/{member_id}/quota-usage").json()
    assert usage["usageCount"] == 7
    assert usage["usageLimit"] == 100
    assert usage["isOverLimit"] is False and usage["isUnlimited"] is False
    assert usage["interval"] == "month"
    assert set(usage) == {
        "interval",
        "isOverLimit",
        "isUnlimited",
        "resetInDays",
        "usageCount",
        "usageLimit",
    }


def test_over_limit_and_plans(emu: EmulatorHandle, api: httpx.Client, member_id: str) -> None:
    url = f"/v1/admin/members/{member_id}/quota-usage"
    for _ in range(100):
        _event(api, eventSource="api", memberId=member_id)
    assert api.get(url).json()["isOverLimit"] is True
    emu.set_plan(member_id, "pro")
    pro = api.get(url).json()
    assert (pro["usageLimit"], pro["isOverLimit"]) == (5000, False)
    emu.set_plan(member_id, "unlimited")
    unlimited = api.get(url).json()
    assert unlimited["isUnlimited"] is True and unlimited["isOverLimit"] is False
    assert unlimited["usageLimit"] == 0 and unlimited["usageCount"] == 100


def test_quota_usage_arithmetic() -> None:
    at = int(datetime(2026, 2, 27, 12, tzinfo=UTC).timestamp() * 1000)
    start, end = month_bounds(at)
    assert start == int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1000)
    assert end == int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
    usage = quota_usage(PLANS["free"], 99, at)
    assert usage["resetInDays"] == 2  # 1.5 days left, rounded up
    assert usage["isOverLimit"] is False
    assert quota_usage(PLANS["free"], 100, at)["isOverLimit"] is True
    december = int(datetime(2026, 12, 31, 23, tzinfo=UTC).timestamp() * 1000)
    assert month_bounds(december)[1] == int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert quota_usage(PLANS["pro"], 0, december)["resetInDays"] == 1


#: ``Profile.event_response`` → (status, content type, body) of a successful event.
EVENT_RESPONSES = {
    "json": (200, "application/json", b"{}"),
    "empty": (200, None, b""),
    "text": (200, "text/plain; charset=utf-8", b"OK"),
    "created": (201, "application/json", b"{}"),
    "no-content": (204, None, b""),
}


@pytest.mark.parametrize("reading", list(EVENT_RESPONSES))
def test_event_success_answer_follows_the_profile(
    emu: EmulatorHandle, api: httpx.Client, member_id: str, reading: str
) -> None:
    emu.set_profile(event_response=reading)
    status, content_type, content = EVENT_RESPONSES[reading]
    response = _event(api, eventSource="web", memberId=member_id)
    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    assert response.content == content
    (event,) = emu.events()  # stored whatever the answer says
    assert (event["eventSource"], event["memberId"]) == ("WEB", member_id)
    usage = api.get(f"/v1/admin/members/{member_id}/quota-usage").json()
    assert usage["usageCount"] == 1


@pytest.mark.parametrize("reading", list(EVENT_RESPONSES))
def test_event_success_answer_is_fine_for_the_official_client(
    emu: EmulatorHandle, official_app: pluginlab_admin.App, member_id: str, reading: str
) -> None:
    emu.set_profile(event_response=reading)
    official_app.get_event().create_custom("web", member_id=member_id, is_in_quota=False)
    assert [e["isInQuota"] for e in emu.events(member_id=member_id)] == [False]


@pytest.mark.parametrize("reading", list(EVENT_RESPONSES))
def test_event_refusals_stay_json_whatever_the_success_answer(
    emu: EmulatorHandle, api: httpx.Client, reading: str
) -> None:
    emu.set_profile(event_response=reading)
    response = _event(api, eventSource="")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid-event-source"
    assert emu.events() == []
