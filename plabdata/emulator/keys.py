"""Signing keys: RSA-2048 keys in the store, the JWKS document, and PS256 user tokens.

The JWKS lists the current key first and the previous one second: the official client
verifies with ``signing_keys[0]``, and a client that honours ``kid`` can still verify tokens
minted just before a rotation.

    >>> ring = KeyRing(Store())
    >>> ring.jwks()["keys"][0]["alg"]
    'PS256'
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from plabdata.emulator.model import PLANS, MemberRecord
from plabdata.emulator.profile import UserClaims
from plabdata.emulator.store import Store
from plabdata.wire import DEFAULT_ISSUER

PUBLISHED_KEYS = 2  # the current key and the one it replaced


def _b64_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def audience_for(plugin_id: str) -> str:
    """The ``aud`` claim PluginLab puts in a plugin's user tokens."""
    return f"plugin:{plugin_id}:admin"


class KeyRing:
    """The emulator's signing keys, persisted in the store (a restart keeps verifying old tokens).

    A fresh store gets one key on construction.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        for kid, pem in store.signing_keys():
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                self._keys.append((kid, key))
        if not self._keys:
            self.rotate()

    @property
    def current_kid(self) -> str:
        """The ``kid`` that new tokens are signed with."""
        return self._keys[0][0]

    def rotate(self) -> str:
        """Make a new current key (the previous one stays published); returns its ``kid``."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_hex(20)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._store.add_signing_key(kid, pem)
        self._keys.insert(0, (kid, key))
        return kid

    def jwks(self) -> dict[str, Any]:
        """The public JWKS served at ``/admin/v1/cert``, current key first."""
        keys = []
        for kid, key in self._keys[:PUBLISHED_KEYS]:
            numbers = key.public_key().public_numbers()
            keys.append(
                {
                    "kty": "RSA",
                    "kid": kid,
                    "use": "sig",
                    "alg": "PS256",
                    "n": _b64_uint(numbers.n),
                    "e": _b64_uint(numbers.e),
                }
            )
        return {"keys": keys}

    def mint(
        self,
        member: MemberRecord,
        *,
        plugin_id: str,
        issuer: str = DEFAULT_ISSUER,
        user_claims: UserClaims = "camel",
        expires_in: int = 3600,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A PS256 user token for ``member``, as PluginLab would hand to a plugin.

        ``claims`` replace or add top-level claims (``exp``, ``aud``, ``iat``, anything); a
        ``user`` mapping in them is merged into the generated ``user`` claim, any other
        ``user`` value replaces it.
        """
        issued = int(time.time())
        payload: dict[str, Any] = {
            "uid": member.id,
            "iss": issuer,
            "aud": audience_for(plugin_id),
            "iat": issued,
            "exp": issued + expires_in,
            "user": user_claim(member, user_claims),
        }
        extra = dict(claims or {})
        extra_user = extra.get("user")
        if isinstance(extra_user, dict):
            extra["user"] = {**payload["user"], **extra_user}
        payload.update(extra)
        kid, key = self._keys[0]
        # Signed as raw JSON, not through jwt.encode: PyJWT refuses some claims (an ``iss``
        # that is not a string) that a verifier's negative tests must be able to mint.
        claims_json = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        return jwt.api_jws.encode(claims_json, key, algorithm="PS256", headers={"kid": kid})


def user_claim(member: MemberRecord, casing: UserClaims) -> dict[str, Any]:
    """The token's ``user`` claim in one of the two documented casings.

    ``"camel"`` is what both SDKs read ([SDK041], [NODEDOC]): ``{id, email, name?,
    givenName?, planId?, priceId?}``. ``"snake"`` is the payload example of PluginLab's
    "Verifying ID Tokens" article ([TOK2]): ``{email, name?, given_name?, family_name?,
    plan_id?, price_id?}``, with no ``id`` (the member id is the top-level ``uid``).
    """
    plan = PLANS[member.plan]
    if casing == "snake":
        fields: tuple[tuple[str, str | None], ...] = (
            ("email", member.email),
            ("name", member.name),
            ("given_name", member.given_name),
            ("family_name", member.family_name),
            ("plan_id", plan.plan_id),
            ("price_id", plan.price_id),
        )
    else:
        fields = (
            ("id", member.id),
            ("email", member.email),
            ("name", member.name),
            ("givenName", member.given_name),
            ("planId", plan.plan_id),
            ("priceId", plan.price_id),
        )
    return {key: value for key, value in fields if value is not None}
