"""Admin auth: the secret and plugin-id headers on every contract route (JWKS excepted)."""

from __future__ import annotations

import httpx
import pytest

from plabdata.emulator import EmulatorHandle
from plabdata.wire import PLUGIN_ID_HEADER, SECRET_HEADER

ROUTES = [
    ("GET", "/admin/plugins/{p}/members"),
    ("POST", "/admin/plugins/{p}/members"),
    ("GET", "/admin/plugins/{p}/members/mem_x"),
    ("PATCH", "/admin/plugins/{p}/members/mem_x"),
    ("DELETE", "/admin/plugins/{p}/members/mem_x"),
    ("GET", "/admin/plugins/{p}/member/byEmail/a@b.c"),
    ("GET", "/admin/plugins/{p}/members/mem_x/identities"),
    ("POST", "/admin/plugins/{p}/members/mem_x/identities/google/refresh"),
    ("POST", "/events/create-custom"),
    ("GET", "/v1/admin/members/mem_x/quota-usage"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_or_wrong_secret_is_401(emu: EmulatorHandle, method: str, path: str) -> None:
    url = emu.url + path.format(p=emu.plugin_id)
    secret = emu.secret.reveal()
    for headers in (
        {PLUGIN_ID_HEADER: emu.plugin_id},
        {PLUGIN_ID_HEADER: emu.plugin_id, SECRET_HEADER: "wrong"},
        {PLUGIN_ID_HEADER: emu.plugin_id, SECRET_HEADER: secret[:-1]},
        {PLUGIN_ID_HEADER: emu.plugin_id, "X-PluginLab-Admin-Secret": secret},
    ):
        response = httpx.request(method, url, headers=headers, json={})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert secret not in response.text
        assert "message" in response.json()


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_wrong_plugin_is_403(emu: EmulatorHandle, method: str, path: str) -> None:
    good = {SECRET_HEADER: emu.secret.reveal(), PLUGIN_ID_HEADER: emu.plugin_id}
    cases = [
        (path.format(p=emu.plugin_id), {**good, PLUGIN_ID_HEADER: "plg_other"}),
        (path.format(p=emu.plugin_id), {SECRET_HEADER: emu.secret.reveal()}),
    ]
    if "{p}" in path:
        cases.append((path.format(p="plg_other"), good))
    for target, headers in cases:
        response = httpx.request(method, emu.url + target, headers=headers, json={})
        assert response.status_code == 403, target
        assert response.json()["code"] == "forbidden"
        assert emu.secret.reveal() not in response.text


def test_right_credentials_pass(api: httpx.Client, members_path: str) -> None:
    assert api.get(members_path + "/members").status_code == 200


def test_jwks_needs_no_auth(emu: EmulatorHandle) -> None:
    response = httpx.get(emu.settings.cert_url)
    assert response.status_code == 200
    assert response.json()["keys"]


def test_secret_is_never_in_reprs(emu: EmulatorHandle) -> None:
    assert emu.secret.reveal() not in repr(emu)
    assert emu.secret.reveal() not in repr(emu.settings)
