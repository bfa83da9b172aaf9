"""The gates CI applies, as tests: ruff lint and format on the whole tree, mypy strict on the
package and non-strict on the tests and benchmarks (``[tool.mypy]`` in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREE = ["plabdata", "tests", "benchmarks", "data"]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", *TREE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_ruff_format_is_applied() -> None:
    result = _run("ruff", "format", "--check", *TREE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


@pytest.mark.parametrize("target", [[], ["tests", "benchmarks"]], ids=["package", "tests"])
def test_mypy_is_clean(target: list[str]) -> None:
    result = _run("mypy", *target)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
