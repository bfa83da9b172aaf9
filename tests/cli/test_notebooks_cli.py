"""``plabdata notebooks DIR``: the shipped notebooks and their samples, written for Jupyter."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from plabdata.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.name for p in (ROOT / "plabdata" / "notebooks").glob("*.ipynb"))


def test_writes_every_notebook_and_sample_then_keeps_what_is_there(tmp_path: Path) -> None:
    folder = tmp_path / "nb"
    result = CliRunner().invoke(main, ["notebooks", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.glob("*.ipynb")) == SHIPPED and len(SHIPPED) >= 5
    assert (folder / "members_import.xlsx").is_file()
    assert (folder / "web_ui_events.parquet").is_file()
    assert (folder / "exports" / "auth0_users.ndjson").is_file()
    for name in SHIPPED:  # committed without outputs, and valid JSON notebooks
        notebook = json.loads((folder / name).read_text(encoding="utf-8"))
        assert all(not c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")
    assert f"jupyter lab {folder}" in result.output

    # The user edits a notebook and a sample: a second run keeps both.
    edited = folder / SHIPPED[0]
    edited.write_text("{}", encoding="utf-8")
    (folder / "members_import.xlsx").write_bytes(b"mine")
    again = CliRunner().invoke(main, ["notebooks", str(folder)])
    assert again.exit_code == 0 and "0 notebooks written" in again.output
    assert "kept as they were" in again.output
    assert edited.read_text(encoding="utf-8") == "{}"
    assert (folder / "members_import.xlsx").read_bytes() == b"mine"
    # --force overwrites the notebooks, never the samples.
    forced = CliRunner().invoke(main, ["notebooks", str(folder), "--force"])
    assert forced.exit_code == 0 and f"{len(SHIPPED)} notebooks written" in forced.output
    assert edited.read_text(encoding="utf-8") != "{}"
    assert (folder / "members_import.xlsx").read_bytes() == b"mine"


def test_refuses_an_empty_name_or_a_file(tmp_path: Path) -> None:
    empty = CliRunner().invoke(main, ["notebooks", ""])
    assert empty.exit_code == 2 and "empty" in empty.output
    file = tmp_path / "x.txt"
    file.write_text("x", encoding="utf-8")
    clash = CliRunner().invoke(main, ["notebooks", str(file)])
    assert clash.exit_code == 2 and "not a folder" in clash.output


def test_version_is_the_one_source() -> None:
    import plabdata
    from plabdata._version import __version__

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    assert plabdata.__version__ == __version__
