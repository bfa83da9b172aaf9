"""Fixtures for the emulator's own tests: an authenticated httpx client on the contract."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from plabdata.emulator import EmulatorHandle


@pytest.fixture
def api(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    """httpx client with the admin headers, based at the emulator's origin."""
    with httpx.Client(base_url=emu.url, headers=emu.settings.headers(), timeout=10) as client:
        yield client


@pytest.fixture
def members_path(emu: EmulatorHandle) -> str:
    """``/admin/plugins/{pluginId}`` — prefix of the member endpoints."""
    return f"/admin/plugins/{emu.plugin_id}"
