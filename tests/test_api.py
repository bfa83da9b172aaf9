"""The public surface: what ``plabdata`` exports, and that every CLI command is documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import click

import plabdata
from plabdata.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted_and_complete():
    assert plabdata.__all__ == sorted(set(plabdata.__all__), key=_isort_key)
    for name in plabdata.__all__:
        assert hasattr(plabdata, name), name
    eager = {n for n in vars(plabdata) if not n.startswith("_")}
    modules = {n for n in eager if inspect.ismodule(getattr(plabdata, n))}
    typing_names = {"TYPE_CHECKING", "Any"}
    lazy = set(plabdata._LAZY)
    assert eager - modules - typing_names | lazy == set(plabdata.__all__)


def test_public_functions_have_docstrings_and_types():
    for name in plabdata.__all__:
        obj = getattr(plabdata, name)
        if inspect.isfunction(obj):
            assert obj.__doc__, f"{name} has no docstring"
            hints = inspect.signature(obj)
            assert hints.return_annotation is not inspect.Signature.empty, name


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


def test_every_cli_command_has_help_and_a_readme_entry():
    readme = README.read_text(encoding="utf-8")
    commands = _commands(main)
    assert commands
    for path, command in commands:
        assert (command.help or "").strip(), f"plabdata {path} has no help text"
        if not isinstance(command, click.Group):
            assert f"plabdata {path}" in readme, f"README does not mention `plabdata {path}`"
