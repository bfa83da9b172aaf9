"""Default places: $PLABDATA_HOME and the journal of a plugin and a job, safe from odd ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from plabdata.errors import ConfigError
from plabdata.jobs._places import default_journal, path_part, plabdata_home


def test_home_is_plabdata_home_then_xdg_then_local_share() -> None:
    assert plabdata_home({"PLABDATA_HOME": "/srv/pd", "XDG_DATA_HOME": "/x"}) == Path("/srv/pd")
    assert plabdata_home({"XDG_DATA_HOME": "/x", "HOME": "/home/ada"}) == Path("/x/plabdata")
    local = Path("/home/ada/.local/share/plabdata")
    assert plabdata_home({"HOME": "/home/ada"}) == local
    # Empty means unset (an unset variable in a shell), and XDG requires an absolute path.
    assert plabdata_home({"PLABDATA_HOME": "", "XDG_DATA_HOME": "rel", "HOME": "/home/ada"}) == (
        local
    )


def test_a_relative_home_is_refused() -> None:
    with pytest.raises(ConfigError, match="PLABDATA_HOME='state' is a relative path"):
        plabdata_home({"PLABDATA_HOME": "state"})


def test_the_default_journal_belongs_to_the_plugin_and_the_job(plabdata_home: Path) -> None:
    assert default_journal("plg_1", "events") == plabdata_home / "journals/plg_1/events.journal"
    assert default_journal("plg_1", "members") == plabdata_home / "journals/plg_1/members.journal"
    with pytest.raises(ValueError, match="unknown job 'imports'"):
        default_journal("plg_1", "imports")


@pytest.mark.parametrize(
    "plugin_id", ["..", ".", "../../etc", "a/b", "/abs", ".hidden", "x" * 400, "é ü", "%2F", "~"]
)
def test_a_plugin_id_is_one_safe_path_component(plugin_id: str, plabdata_home: Path) -> None:
    part = path_part(plugin_id)
    assert "/" not in part and "\0" not in part
    assert part not in (".", "..") and not part.startswith(".")
    assert len(part.encode()) <= 120
    path = default_journal(plugin_id, "events")
    assert path.parent.parent == plabdata_home / "journals"  # never escapes, never nests


def test_different_plugin_ids_never_share_a_folder() -> None:
    ids = ["a/b", "a%2Fb", "a_b", "..", "%2E%2E", ".a", "%2Ea", "x" * 300, "x" * 301]
    assert len({path_part(i) for i in ids}) == len(ids)
    with pytest.raises(ValueError):
        path_part("")
