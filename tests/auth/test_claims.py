"""Claims (plabdata/auth/_claims.py): the issuer check and both casings of the ``user`` claim.

Tokens are signed here with a test key served by a local cert endpoint (tests/auth/conftest),
so they can carry any issuer and either casing whatever the emulator mints; one test checks
the emulator's tokens meet the same rules.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest

import plabdata
from plabdata.auth import _tokens as tokens_module
from plabdata.auth._claims import TokenUser, user_from_claim
from plabdata.auth._tokens import TokenVerifier, verify_bearer, verify_token
from plabdata.config import ENV_CERT_URL, ENV_ISSUER, ENV_PLUGIN_ID, Settings
from plabdata.emulator import EmulatorHandle, Profile
from plabdata.errors import ConfigError, TokenError, TokenIssuerError, TokenMalformed
from plabdata.wire import DEFAULT_ISSUER
from tests.auth.local_cert import AUDIENCE, CertServer, Signer, claims

OWN_ISSUER = "https://issuer.example.test"


@pytest.fixture
def verifier(cert_server: CertServer) -> Iterator[TokenVerifier]:
    with TokenVerifier(cert_url=cert_server.url, audience=AUDIENCE) as verifier:
        yield verifier


@pytest.fixture
def signer(signers: tuple[Signer, Signer]) -> Signer:
    return signers[0]


def _settings(cert_server: CertServer, **changes: Any) -> Settings:
    return Settings(
        plugin_id=AUDIENCE.split(":")[1], secret="unused", cert_url=cert_server.url, **changes
    )


# -- the issuer ------------------------------------------------------------------------------


def test_pluginlab_issuer_is_accepted_by_default(verifier: TokenVerifier, signer: Signer) -> None:
    assert verifier.issuer == DEFAULT_ISSUER == "https://auth.pluginlab.ai"
    assert verifier.verify(signer.sign(claims())).iss == DEFAULT_ISSUER


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example",
        "http://auth.pluginlab.ai",
        "https://auth.pluginlab.ai/",
        "https://AUTH.pluginlab.ai",
        "http://127.0.0.1:8000",  # what the emulator used to mint
    ],
)
def test_foreign_issuer_is_refused(verifier: TokenVerifier, signer: Signer, foreign: str) -> None:
    token = signer.sign(claims(iss=foreign))
    with pytest.raises(TokenIssuerError) as info:
        verifier.verify(token)
    message = str(info.value)
    assert repr(foreign) in message and repr(DEFAULT_ISSUER) in message
    assert isinstance(info.value, TokenError)
    for part in token.split("."):
        assert part[:24] not in f"{message} {info.value!r}"


def test_a_long_foreign_issuer_is_shortened_in_the_message(
    verifier: TokenVerifier, signer: Signer
) -> None:
    with pytest.raises(TokenIssuerError) as info:
        verifier.verify(signer.sign(claims(iss="https://x.test/" + "a" * 5000)))
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("iss", [None, 7, "", ["https://auth.pluginlab.ai"]])
def test_missing_or_non_string_issuer_is_malformed(
    verifier: TokenVerifier, signer: Signer, iss: object
) -> None:
    with pytest.raises(TokenMalformed, match="'iss'"):
        verifier.verify(signer.sign(claims(iss=iss)))


def test_custom_issuer_is_accepted_and_pluginlab_refused(
    cert_server: CertServer, signer: Signer
) -> None:
    own, pluginlab = signer.sign(claims(iss=OWN_ISSUER)), signer.sign(claims())
    for verifier in (
        TokenVerifier(cert_url=cert_server.url, audience=AUDIENCE, issuer=OWN_ISSUER),
        TokenVerifier(_settings(cert_server, issuer=OWN_ISSUER)),
        TokenVerifier(_settings(cert_server), issuer=OWN_ISSUER),  # the argument wins
    ):
        with verifier:
            assert verifier.verify(own).iss == OWN_ISSUER
            with pytest.raises(TokenIssuerError, match=re.escape(OWN_ISSUER)):
                verifier.verify(pluginlab)
            assert OWN_ISSUER in repr(verifier)


def test_issuer_must_be_a_non_empty_string(cert_server: CertServer) -> None:
    with pytest.raises(ConfigError, match="issuer"):
        TokenVerifier(cert_url=cert_server.url, audience=AUDIENCE, issuer="")
    with pytest.raises(ConfigError, match="issuer"):
        _settings(cert_server, issuer="")


def test_module_helpers_take_an_issuer_and_keep_one_verifier_per_issuer(
    cert_server: CertServer, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "_shared", {})
    settings = _settings(cert_server)
    own, pluginlab = signer.sign(claims(iss=OWN_ISSUER)), signer.sign(claims())
    assert verify_token(pluginlab, settings=settings).iss == DEFAULT_ISSUER
    assert verify_token(own, settings=settings, issuer=OWN_ISSUER).iss == OWN_ISSUER
    assert verify_bearer(f"Bearer {own}", settings=settings, issuer=OWN_ISSUER).uid
    with pytest.raises(TokenIssuerError):
        verify_token(own, settings=settings)
    with pytest.raises(TokenIssuerError):
        verify_bearer(f"Bearer {pluginlab}", settings=settings, issuer=OWN_ISSUER)
    assert sorted(issuer for _, _, issuer in tokens_module._shared) == [
        DEFAULT_ISSUER,
        OWN_ISSUER,
    ]


def test_issuer_from_the_environment(
    cert_server: CertServer, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "_shared", {})
    monkeypatch.setenv(ENV_PLUGIN_ID, AUDIENCE.split(":")[1])
    monkeypatch.setenv(ENV_CERT_URL, cert_server.url)
    monkeypatch.setenv(ENV_ISSUER, OWN_ISSUER)
    own = signer.sign(claims(iss=OWN_ISSUER))
    with TokenVerifier() as verifier:
        assert verifier.verify(own).iss == OWN_ISSUER
    assert verify_token(own).iss == OWN_ISSUER
    settings = Settings.from_env(secret="unused")
    assert settings.issuer == OWN_ISSUER
    assert f"export {ENV_ISSUER}={OWN_ISSUER}" in settings.export_lines()
    monkeypatch.setenv(ENV_ISSUER, "")  # empty means unset: PluginLab's issuer
    assert Settings.from_env(secret="unused").issuer == DEFAULT_ISSUER
    assert not any(ENV_ISSUER in line for line in _settings(cert_server).export_lines())


def test_emulator_tokens_minted_with_pluginlab_issuer_verify(emu: EmulatorHandle) -> None:
    member_id = emu.seed(1, random_seed=4)[0]
    with TokenVerifier(emu.settings) as verifier:
        assert verifier.verify(emu.mint_token(member_id, iss=DEFAULT_ISSUER)).uid == member_id
        with pytest.raises(TokenIssuerError):
            verifier.verify(emu.mint_token(member_id, iss=emu.settings.auth_url))


@pytest.mark.parametrize("casing", ["camel", "snake"])
def test_emulator_tokens_in_either_casing_give_the_members_plan(
    emu: EmulatorHandle, casing: str
) -> None:
    if "user_claims" not in {f.name for f in dataclasses.fields(Profile)}:
        pytest.skip("this emulator does not offer both claim casings")
    emu.set_profile(Profile(user_claims=casing))
    member_id = emu.seed(1, random_seed=5)[0]
    emu.set_plan(member_id, "pro")
    plan = emu.plan(member_id)
    with TokenVerifier(emu.settings) as verifier:
        user = verifier.verify(emu.mint_token(member_id, iss=DEFAULT_ISSUER)).user
    assert (user.id, user.plan_id, user.price_id) == (member_id, plan["planId"], plan["priceId"])


# -- the casing of the user claim ------------------------------------------------------------

SNAKE_USER = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "plan_id": "plan_pro",
    "price_id": "price_pro_monthly",
}


def test_snake_case_token_gives_its_plan(verifier: TokenVerifier, signer: Signer) -> None:
    # PluginLab's token article: snake_case, and no user.id (the member id is the uid).
    payload = verifier.verify(signer.sign(claims(uid="mem_snake", user=SNAKE_USER)))
    assert payload.user == TokenUser(
        id="mem_snake",
        email="ada@example.com",
        name="Ada Lovelace",
        given_name="Ada",
        plan_id="plan_pro",
        price_id="price_pro_monthly",
        family_name="Lovelace",
    )


def test_camel_case_token_gives_its_plan(verifier: TokenVerifier, signer: Signer) -> None:
    camel = {
        "id": "mem_camel",
        "email": "ada@example.com",
        "givenName": "Ada",
        "familyName": "Lovelace",
        "planId": "plan_pro",
        "priceId": "price_pro_monthly",
    }
    user = verifier.verify(signer.sign(claims(uid="mem_other", user=camel))).user
    assert (user.id, user.given_name, user.family_name) == ("mem_camel", "Ada", "Lovelace")
    assert (user.plan_id, user.price_id) == ("plan_pro", "price_pro_monthly")


def test_camel_case_wins_when_both_are_present() -> None:
    both = {
        **SNAKE_USER,
        "givenName": "Augusta",
        "familyName": "King",
        "planId": "plan_free",
        "priceId": "price_free",
    }
    user = user_from_claim(both, uid="mem_1")
    assert (user.given_name, user.family_name) == ("Augusta", "King")
    assert (user.plan_id, user.price_id) == ("plan_free", "price_free")


def test_a_null_camel_claim_falls_back_to_snake() -> None:
    user = user_from_claim({"email": "a@x.test", "planId": None, "plan_id": "plan_pro"}, uid="u")
    assert user.plan_id == "plan_pro"
    assert user_from_claim({"email": "a@x.test"}, uid="u").plan_id is None


@pytest.mark.parametrize(
    ("user", "named"),
    [
        ({"email": "a@x.test", "plan_id": 3}, "user.plan_id"),
        ({"email": "a@x.test", "familyName": ["x"]}, "user.familyName"),
        ({"email": "a@x.test", "given_name": {}}, "user.given_name"),
        ({"email": "a@x.test", "id": 5}, "user.id"),
        ({"email": "a@x.test", "id": ""}, "user.id"),
        ({"plan_id": "plan_pro"}, "user.email"),
    ],
)
def test_wrong_types_in_either_casing_are_malformed(user: dict[str, Any], named: str) -> None:
    with pytest.raises(TokenMalformed, match=named.replace(".", r"\.")):
        user_from_claim(user, uid="u")


def test_snake_case_token_through_the_public_api(cert_server: CertServer, signer: Signer) -> None:
    settings = _settings(cert_server)
    token = signer.sign(claims(uid="mem_snake", user=SNAKE_USER))
    with plabdata.TokenVerifier(settings) as verifier:
        payload = verifier.verify_bearer(f"Bearer {token}")
    assert (payload.user.id, payload.user.plan_id) == ("mem_snake", "plan_pro")
    assert issubclass(plabdata.TokenIssuerError, plabdata.TokenError)


def test_token_user_stays_positionally_compatible() -> None:
    user = TokenUser("mem_1", "a@x.test", "Ada", "Ada", "plan_pro", "price_1")
    assert (user.plan_id, user.price_id, user.family_name) == ("plan_pro", "price_1", None)
