"""Fixtures of the token tests: signing keys and a local cert endpoint (see local_cert.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.auth.local_cert import CertServer, Signer


@pytest.fixture(scope="session")
def signers() -> tuple[Signer, Signer]:
    """Two 2048-bit keys (generated once: ~0.1 s each)."""
    return tuple(  # type: ignore[return-value]
        Signer(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        for kid in ("k1", "k2")
    )


@pytest.fixture
def cert_server(signers: tuple[Signer, Signer]) -> Iterator[CertServer]:
    """A cert endpoint publishing the first key (``k1``); tests switch its ``mode``."""
    server = CertServer(jwks={"keys": [signers[0].jwk()]}).start()
    yield server
    server.stop()
