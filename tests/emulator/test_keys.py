"""JWKS and user tokens: PS256, verified by PyJWT and by the official client; key rotation."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pluginlab_admin
import pytest
from jwt import PyJWKClient

from plabdata.emulator import PLANS, EmulatorHandle
from plabdata.wire import DEFAULT_ISSUER


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


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
    assert claims["iss"] == DEFAULT_ISSUER == "https://auth.pluginlab.ai"  # [TOK1], not emu.url
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
    claims = _claims(token)
    assert claims["iat"] == 1000 and claims["role"] == "tester"
    assert claims["user"]["givenName"] == "Given" and claims["user"]["id"] == member_id


def test_overrides_win_over_the_profile_even_when_malformed(
    emu: EmulatorHandle, member_id: str
) -> None:
    """A verifier's negative tests need tokens PyJWT's encoder would refuse (iss not a string)."""
    emu.set_profile(issuer="https://issuer.example", user_claims="snake")
    assert _claims(emu.mint_token(member_id, iss="https://evil.example"))["iss"] == (
        "https://evil.example"
    )
    assert _claims(emu.mint_token(member_id, iss=5))["iss"] == 5
    assert _claims(emu.mint_token(member_id, user="not-an-object"))["user"] == "not-an-object"
    assert _claims(emu.mint_token(member_id, user=None))["user"] is None
    merged = _claims(emu.mint_token(member_id, user={"id": "forced", "plan_id": None}))["user"]
    assert merged == {"email": "jwt@example.com", "id": "forced", "plan_id": None}
    assert emu.stats()["internalErrors"] == 0


def test_issuer_follows_the_profile(emu: EmulatorHandle, member_id: str) -> None:
    assert _claims(emu.mint_token(member_id))["iss"] == DEFAULT_ISSUER
    emu.set_profile(issuer="https://issuer.example")
    assert _claims(emu.mint_token(member_id))["iss"] == "https://issuer.example"


def test_user_claims_in_either_casing(
    emu: EmulatorHandle, official_app: pluginlab_admin.App, member_id: str
) -> None:
    official_app.get_auth().update_member(
        member_id, name="Jay Wt", given_name="Jay", family_name="Wt"
    )
    emu.set_plan(member_id, "pro")
    pro = PLANS["pro"]
    camel = _claims(emu.mint_token(member_id))
    # The SDKs' reading ([SDK041], [NODEDOC]); they carry no familyName.
    assert camel["user"] == {
        "id": member_id,
        "email": "jwt@example.com",
        "name": "Jay Wt",
        "givenName": "Jay",
        "planId": pro.plan_id,
        "priceId": pro.price_id,
    }
    emu.set_profile(user_claims="snake")
    snake = _claims(emu.mint_token(member_id))
    # The "Verifying ID Tokens" article's reading ([TOK2]): no id, the member is uid.
    assert snake["user"] == {
        "email": "jwt@example.com",
        "name": "Jay Wt",
        "given_name": "Jay",
        "family_name": "Wt",
        "plan_id": pro.plan_id,
        "price_id": pro.price_id,
    }
    assert snake["uid"] == member_id
    assert {key: snake[key] for key in ("iss", "aud")} == {
        key: camel[key] for key in ("iss", "aud")
    }


def test_snake_claims_leave_out_what_the_member_lacks(emu: EmulatorHandle, member_id: str) -> None:
    emu.set_profile(user_claims="snake")
    user = _claims(emu.mint_token(member_id))["user"]
    assert user == {"email": "jwt@example.com", "plan_id": PLANS["free"].plan_id}


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
