"""Shared fixtures: one emulator per test session, reset before each test that asks for it.

``emu`` is the fixture most tests want: the session's emulator with no members, no events,
no faults and zeroed counters. Seed what the test needs (``emu.seed(n)``) or create it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pluginlab_admin
import pytest

from plabdata.emulator import EmulatorHandle, Profile, running
from plabdata.emulator import official_app as emulator_official_app
from tests.chaos.tally import CHAOS_PROPERTY, summary_lines

_chaos_runs: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def plabdata_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own PLABDATA_HOME: default journals never leak between tests."""
    home = tmp_path_factory.mktemp("plabdata-home")
    monkeypatch.setenv("PLABDATA_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    """The session's emulator (thread mode, empty). Prefer ``emu``, which resets it."""
    with running() as handle:
        yield handle


@pytest.fixture
def emu(emulator: EmulatorHandle) -> EmulatorHandle:
    """The session's emulator with its data, counters and faults reset."""
    emulator.clear_faults()
    emulator.set_profile(Profile())
    emulator.reset()
    return emulator


@pytest.fixture
def official_app(emu: EmulatorHandle) -> pluginlab_admin.App:
    """PluginLab's own Python client (``pluginlab_admin``), pointed at the emulator."""
    return emulator_official_app(emu.settings)


def pytest_addoption(parser: pytest.Parser) -> None:
    # Declared here (the root conftest) so `pytest --chaos-long` works from anywhere.
    parser.addoption(
        "--chaos-long",
        action="store_true",
        default=False,
        help="chaos suite: many seeds per job (tests/chaos; or PLABDATA_CHAOS_LONG=1)",
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Chaos runs' figures, from this process's tests or (under pytest-xdist) from a worker's.
    if report.when == "call":
        _chaos_runs.extend(v for k, v in report.user_properties if k == CHAOS_PROPERTY)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _chaos_runs:
        terminalreporter.section("chaos runs")
        for line in summary_lines(_chaos_runs):
            terminalreporter.write_line(line)
