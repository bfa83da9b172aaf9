"""JWKS and user tokens: PS256, verified by PyJWT and by the official client; key rotation."""

from __future__ import annotations

import httpx
import jwt
import pluginlab_admin
import pytest
from jwt import PyJWKClient

from plabdata.emulator import PLANS, EmulatorHandle


@pytest.fixture
def member_id(official_app: pluginlab_admin.App) -> str:
    return str(official_app.get_auth().create_member("jwt@example.com", "secret1").id)


def test_jwks_shape(emu: EmulatorHandle) -> None:
    keys = httpx.get(emu.settings.cert_url).json()["keys"]
    assert len(keys) >= 1
    for key in keys:
        assert {"kty", "kid", "use", "alg", "n", "e"} <= set(key)
        assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "PS256")
    assert keys[0]["kid"] == emu.health()["kid"]
    signing = PyJWKClient(emu.settings.cert_url).get_signing_keys()
    assert signing[0].key.key_size == 2048


def test_token_verifies_with_pyjwt(emu: EmulatorHandle, member_id: str) -> None:
    token = emu.mint_token(member_id)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "PS256"
    key = PyJWKClient(emu.settings.cert_url).get_signing_key(header["kid"]).key
    claims = jwt.decode(token, key, algorithms=["PS256"], audience=emu.settings.audience)
    assert claims["uid"] == member_id
    assert claims["iss"] == emu.url
    assert claims["user"] == {
        "id": member_id,
        "email": "jwt@example.com",
        "planId": PLANS["free"].plan_id,
    }


def test_plan_and_price_ids_follow_the_plan(
    emu: EmulatorHandle, official_app: pluginlab_admin.App, member_id: str
) -> None:
    emu.set_plan(member_id, "pro")
    payload = official_app.get_auth().verify_token(emu.mint_token(member_id))
    assert payload.user.plan_id == PLANS["pro"].plan_id
    assert payload.user.price_id == PLANS["pro"].price_id
    assert len(PLANS["pro"].plan_id) == 20


def test_expired_and_foreign_tokens_are_rejected(
    emu: EmulatorHandle, official_app: pluginlab_admin.App, member_id: str
) -> None:
    auth = official_app.get_auth()
    with pytest.raises(jwt.ExpiredSignatureError):
        auth.verify_token(emu.mint_token(member_id, expires_in=-60))
    with pytest.raises(jwt.InvalidAudienceError):
        auth.verify_token(emu.mint_token(member_id, aud="plugin:other:admin"))


def test_overrides_add_and_replace_claims(emu: EmulatorHandle, member_id: str) -> None:
    token = emu.mint_token(member_id, iat=1000, role="tester", user={"givenName": "Given"})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iat"] == 1000 and claims["role"] == "tester"
    assert claims["user"]["givenName"] == "Given" and claims["user"]["id"] == member_id


def test_rotation_lists_new_key_first_and_keeps_the_old(
    emu: EmulatorHandle, official_app: pluginlab_admin.App, member_id: str
) -> None:
    old_kid = emu.health()["kid"]
    old_token = emu.mint_token(member_id)
    new_kid = emu.rotate_key()
    assert new_kid != old_kid
    kids = [key["kid"] for key in httpx.get(emu.settings.cert_url).json()["keys"]]
    assert kids == [new_kid, old_kid]
    # The official client verifies with the first key: new tokens pass, old ones need the kid.
    assert official_app.get_auth().verify_token(emu.mint_token(member_id)).uid == member_id
    with pytest.raises(jwt.InvalidSignatureError):
        official_app.get_auth().verify_token(old_token)
    key = PyJWKClient(emu.settings.cert_url).get_signing_key(old_kid).key
    assert jwt.decode(old_token, key, algorithms=["PS256"], audience=emu.settings.audience)
    emu.rotate_key()
    assert len(httpx.get(emu.settings.cert_url).json()["keys"]) == 2


def test_mint_for_unknown_member_is_404(emu: EmulatorHandle) -> None:
    response = httpx.post(emu.url + "/_emulator/tokens", json={"memberId": "mem_nope"})
    assert response.status_code == 404
    assert response.json()["code"] == "member-not-found"
