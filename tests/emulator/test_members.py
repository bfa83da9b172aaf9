"""Member endpoints over raw HTTP: emails in paths, create, patch and delete semantics."""

from __future__ import annotations

import itertools
from urllib.parse import quote

import httpx
import pytest

from plabdata.emulator import EmulatorHandle
from plabdata.emulator.model import member_id_for


def _create(api: httpx.Client, members_path: str, email: str, **extra: object) -> httpx.Response:
    return api.post(
        members_path + "/members", json={"email": email, "password": "secret1", **extra}
    )


@pytest.mark.parametrize(
    "email",
    [
        "plain@example.com",
        "first.last+tag@example.com",
        "slash/in/local@example.com",
        "per%cent@example.com",
        "per%41cent@example.com",
        "zoë.ünïcødé@exämple.com",
        "用户@例子.中国",
        "quote'and&amp=@example.com",
        "q?mark#hash@example.com",
    ],
)
def test_get_by_email_with_special_characters(
    api: httpx.Client, members_path: str, email: str
) -> None:
    created = _create(api, members_path, email)
    assert created.status_code == 201, created.text
    path = members_path + "/member/byEmail/" + quote(email, safe="")
    found = api.get(path)
    assert found.status_code == 200, (path, found.text)
    assert found.json()["id"] == created.json()["id"]
    assert found.json()["auth"]["email"] == email.lower()
    shouted = api.get(members_path + "/member/byEmail/" + quote(email.upper(), safe=""))
    assert shouted.status_code == 200


def test_plus_sent_unencoded_is_a_plus(api: httpx.Client, members_path: str) -> None:
    _create(api, members_path, "a+b@example.com")
    assert api.get(members_path + "/member/byEmail/a+b@example.com").status_code == 200
    missing = api.get(members_path + "/member/byEmail/a b@example.com")
    assert missing.status_code == 404
    assert missing.json()["code"] == "member-not-found"


def test_encoded_slash_never_reaches_another_route(api: httpx.Client, members_path: str) -> None:
    member = _create(api, members_path, "routing@example.com").json()
    for path in (
        f"/members/{member['id']}%2Fidentities",
        f"/members/{member['id']}%2fidentities",
        "/member/byEmail/..%2Fmembers",
        f"/members/..%2Fmembers%2F{member['id']}",
    ):
        response = api.get(members_path + path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "member-not-found"
    other_plugin = api.get(f"/admin/plugins/x%2F..%2F{members_path.rsplit('/', 1)[1]}/members")
    assert other_plugin.status_code == 403


def test_id_is_derived_from_normalized_email(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    body = _create(api, members_path, "  Mixed.Case@Example.COM ").json()
    assert body["id"] == member_id_for("mixed.case@example.com", emu.plugin_id)
    assert body["auth"]["email"] == "mixed.case@example.com"
    api.delete(members_path + f"/members/{body['id']}")
    again = _create(api, members_path, "mixed.case@example.com").json()
    assert again["id"] == body["id"]


def test_create_returns_201_member_and_409_on_existing_email(
    api: httpx.Client, members_path: str
) -> None:
    first = _create(api, members_path, "dup@example.com", isVerified=True, metadata={"a": "b"})
    assert first.status_code == 201
    member = first.json()
    assert member["auth"] == {
        "isVerified": True,
        "email": "dup@example.com",
        "hasPassword": True,
        "signInMethod": "email-and-password",
    }
    assert member["metadata"] == {"a": "b"} and member["customFields"] == {}
    assert member["createdAtMs"] == member["updatedAtMs"]
    assert "name" not in member
    assert "secret1" not in first.text
    again = _create(api, members_path, "DUP@example.com")
    assert again.status_code == 409
    assert again.json()["code"] == "member-already-exists"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"password": "secret1"}, "invalid-email"),
        ({"email": 42, "password": "secret1"}, "invalid-email"),
        ({"email": "no-at-sign", "password": "secret1"}, "invalid-email"),
        ({"email": "two@@example.com", "password": "secret1"}, "invalid-email"),
        ({"email": "@example.com", "password": "secret1"}, "invalid-email"),
        ({"email": "local@", "password": "secret1"}, "invalid-email"),
        ({"email": "spa ce@example.com", "password": "secret1"}, "invalid-email"),
        ({"email": "a@example.com"}, "invalid-password"),
        ({"email": "a@example.com", "password": 123456}, "invalid-password"),
        ({"email": "a@example.com", "password": "12345"}, "weak-password"),
        (
            {"email": "a@example.com", "password": "secret1", "isVerified": "yes"},
            "invalid-is-verified",
        ),
        ({"email": "a@example.com", "password": "secret1", "metadata": []}, "invalid-metadata"),
        (
            {"email": "a@example.com", "password": "secret1", "metadata": {"n": 1}},
            "invalid-metadata",
        ),
        ({"email": "a@example.com", "password": "secret1", "role": "admin"}, "invalid-field"),
    ],
)
def test_create_rejects_bad_bodies(
    api: httpx.Client, members_path: str, body: dict[str, object], code: str
) -> None:
    response = api.post(members_path + "/members", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["message"]


def test_patch_changes_only_given_fields(api: httpx.Client, members_path: str) -> None:
    member = _create(api, members_path, "p@example.com", metadata={"keep": "no"}).json()
    url = members_path + f"/members/{member['id']}"
    first = api.patch(url, json={"name": "P One", "givenName": "P"}).json()
    assert first["name"] == "P One" and first["givenName"] == "P"
    assert "familyName" not in first
    assert first["metadata"] == {"keep": "no"}

    second = api.patch(url, json={"familyName": "One", "metadata": {"new": "map"}}).json()
    assert second["name"] == "P One" and second["familyName"] == "One"
    assert second["metadata"] == {"new": "map"}  # replaced, not merged

    cleared = api.patch(url, json={"name": None, "metadata": None}).json()
    assert "name" not in cleared and cleared["metadata"] == {}
    assert cleared["givenName"] == "P"
    assert api.get(url).json() == cleared


def test_updated_at_strictly_increases(api: httpx.Client, members_path: str) -> None:
    member = _create(api, members_path, "t@example.com").json()
    url = members_path + f"/members/{member['id']}"
    stamps = [member["updatedAtMs"]]
    for i in range(20):
        stamps.append(api.patch(url, json={"name": f"n{i}"}).json()["updatedAtMs"])
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))
    assert api.get(url).json()["createdAtMs"] == member["createdAtMs"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "x@example.com"}, "invalid-field"),
        ({"name": 5}, "invalid-name"),
        ({"givenName": ["a"]}, "invalid-given-name"),
        ({"pictureUrl": True}, "invalid-picture-url"),
        ({"metadata": "x"}, "invalid-metadata"),
    ],
)
def test_patch_rejects_bad_fields(
    api: httpx.Client, members_path: str, body: dict[str, object], code: str
) -> None:
    member = _create(api, members_path, "bad@example.com").json()
    response = api.patch(members_path + f"/members/{member['id']}", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert api.get(members_path + f"/members/{member['id']}").json() == member


def test_absent_member_is_404_everywhere(api: httpx.Client, members_path: str) -> None:
    missing = "mem_" + "f" * 40
    for method, path in [
        ("GET", f"/members/{missing}"),
        ("PATCH", f"/members/{missing}"),
        ("DELETE", f"/members/{missing}"),
        ("GET", f"/members/{missing}/identities"),
        ("POST", f"/members/{missing}/identities/google/refresh"),
    ]:
        response = api.request(method, members_path + path, json={})
        assert response.status_code == 404, path
        assert response.json()["code"] == "member-not-found"
    quota = api.get(f"/v1/admin/members/{missing}/quota-usage")
    assert quota.status_code == 404


def test_delete_removes_identities_but_keeps_events(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    member = _create(api, members_path, "gone@example.com").json()
    emu.set_identity(member["id"], "google", provider_user_id="123", refresh_token="r")
    api.post("/events/create-custom", json={"eventSource": "web", "memberId": member["id"]})
    assert emu.stats()["identities"] == 1
    deleted = api.delete(members_path + f"/members/{member['id']}")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert emu.stats()["identities"] == 0
    assert len(emu.events(member_id=member["id"])) == 1
    # Re-creating the email gives the same id, and the old usage still counts.
    again = _create(api, members_path, "gone@example.com").json()
    usage = api.get(f"/v1/admin/members/{again['id']}/quota-usage").json()
    assert usage["usageCount"] == 1


def test_password_rule_default_is_six_characters(api: httpx.Client, members_path: str) -> None:
    short = _create_with(api, members_path, "12345")
    assert short.status_code == 400
    assert short.json() == {
        "code": "weak-password",
        "message": "'password' must be at least 6 characters.",
    }
    assert _create_with(api, members_path, "123456").status_code == 201


@pytest.mark.parametrize(
    ("minimum", "password", "created"),
    [
        (1, "12345", True),  # the Python SDK page's own example password
        (1, "x", True),
        (1, "", False),
        (10, "123456789", False),
        (10, "1234567890", True),
        (6, "üüüüüü", True),  # characters, not UTF-8 bytes
    ],
)
def test_password_rule_follows_the_profile(
    emu: EmulatorHandle,
    api: httpx.Client,
    members_path: str,
    minimum: int,
    password: str,
    created: bool,
) -> None:
    emu.set_profile(min_password_length=minimum)
    response = _create_with(api, members_path, password)
    if created:
        assert response.status_code == 201, response.text
        assert response.json()["auth"]["hasPassword"] is True
    else:
        assert response.status_code == 400
        assert response.json()["code"] == "weak-password"
        assert f"at least {minimum} characters" in response.json()["message"]
        assert emu.stats()["members"] == 0


def _create_with(api: httpx.Client, members_path: str, password: str) -> httpx.Response:
    return api.post(
        members_path + "/members", json={"email": "pw@example.com", "password": password}
    )
