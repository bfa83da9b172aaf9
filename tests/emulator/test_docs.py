"""``docs/emulator.md`` names every profile setting, fault knob and control route."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from starlette.routing import Route

from plabdata.emulator import Faults, Profile
from plabdata.emulator.control import ControlApi
from plabdata.emulator.profile import (
    EVENT_RESPONSE_CHOICES,
    OVER_CAP_CHOICES,
    USER_CLAIMS_CHOICES,
)
from plabdata.emulator.state import EmulatorState

DOC = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text()


def _row_of(name: str) -> str:
    """The first table row whose first cell is ``name`` in backquotes."""
    match = re.search(rf"^\| `{re.escape(name)}` \|.*$", DOC, re.MULTILINE)
    assert match, f"docs/emulator.md has no row for {name}"
    return match.group(0)


@pytest.mark.parametrize("value", [Profile(), Faults()], ids=["profile", "faults"])
def test_every_setting_has_a_row_with_its_json_name_and_cli_option(
    value: Profile | Faults,
) -> None:
    json_names = value.to_json()
    for field, json_name in zip(fields(value), json_names, strict=True):
        row = _row_of(field.name)
        assert f"`{json_name}`" in row
        assert f"`--{field.name.replace('_', '-')}`" in row


def test_every_profile_value_is_documented() -> None:
    for value in (*OVER_CAP_CHOICES, *USER_CLAIMS_CHOICES, *EVENT_RESPONSE_CHOICES):
        assert f"`{value}`" in DOC, value


def test_every_control_route_is_documented() -> None:
    state = EmulatorState()
    try:
        routes = [route for route in ControlApi(state).routes() if isinstance(route, Route)]
    finally:
        state.close()
    documented = {
        re.sub(r"\{[^}]+\}", "{}", path)
        for path in re.findall(r"`\w+(?:/\w+)? (/_emulator/[^ `?]*)", DOC)
    }
    for route in routes:
        assert re.sub(r"\{[^}]+\}", "{}", route.path) in documented, route.path
