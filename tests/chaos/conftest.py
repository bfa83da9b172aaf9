"""The chaos suite's switches, seeds and tally.

Short by default (the CI run): each test module's ``SHORT_SEEDS``. Long with ``--chaos-long``
(when pytest is pointed at ``tests/chaos``) or ``PLABDATA_CHAOS_LONG=1`` (anywhere, and in CI):
seeds 1…``PLABDATA_CHAOS_SEEDS`` (default 50) per job. ``PLABDATA_CHAOS_SEED=17`` (or
``3,17``) runs exactly those seeds — the way to reproduce a failure. Each run's figures are
summed per job at the end of the session and, with ``PLABDATA_CHAOS_REPORT=<file>``, appended
to that file as JSON lines.

    PLABDATA_CHAOS_LONG=1 PLABDATA_CHAOS_REPORT=chaos.jsonl python -m pytest tests/chaos
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.tally import CHAOS_PROPERTY

LONG_OPTION = "--chaos-long"
LONG_ENV = "PLABDATA_CHAOS_LONG"
SEEDS_ENV = "PLABDATA_CHAOS_SEEDS"
SEED_ENV = "PLABDATA_CHAOS_SEED"
REPORT_ENV = "PLABDATA_CHAOS_REPORT"
LONG_SEEDS = 50


def pytest_addoption(parser: pytest.Parser) -> None:
    # pytest reads this hook only from the conftests it loads at start-up: this one when the
    # command line names tests/chaos (or a file in it); PLABDATA_CHAOS_LONG=1 works always.
    with contextlib.suppress(ValueError):  # ValueError: declared by a conftest higher up
        parser.addoption(
            LONG_OPTION,
            action="store_true",
            default=False,
            help="chaos suite: many seeds per job instead of the short CI run",
        )


def is_long(config: pytest.Config) -> bool:
    """Whether the long chaos run was asked for (option or environment)."""
    return bool(config.getoption(LONG_OPTION, default=False)) or os.environ.get(
        LONG_ENV, ""
    ).strip().lower() in ("1", "true", "yes")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" not in metafunc.fixturenames:
        return
    chosen = os.environ.get(SEED_ENV, "").strip()
    if chosen:
        seeds = [int(part) for part in chosen.replace(" ", "").split(",") if part]
    elif is_long(metafunc.config):
        seeds = list(range(1, int(os.environ.get(SEEDS_ENV) or LONG_SEEDS) + 1))
    else:
        seeds = list(metafunc.module.SHORT_SEEDS)
    metafunc.parametrize("chaos_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture
def chaos_long(request: pytest.FixtureRequest) -> bool:
    """True in the long run (more kills per seed, kills at any moment)."""
    return is_long(request.config)


@pytest.fixture
def chaos_record(request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], None]:
    """Keep one run's figures for the end-of-session summary (and the JSON report).

    They travel on the test's report (``user_properties``), so the summary that
    ``tests/conftest.py`` prints sums every run, also when pytest-xdist ran them in workers."""

    def record(figures: dict[str, Any]) -> None:
        request.node.user_properties.append((CHAOS_PROPERTY, figures))
        path = os.environ.get(REPORT_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(figures) + "\n")

    return record
