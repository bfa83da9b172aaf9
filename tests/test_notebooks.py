"""Every notebook runs top to bottom against the embedded emulator, as Jupyter would run it.

Notebooks are committed without outputs; this test executes each in a fresh ``python3`` kernel
(the kernelspec ipykernel installs with pip) with no ``PLUGINLAB_*`` variables, so the first
cell starts the emulator with its demo data. The kernel keeps its default matplotlib backend
(the inline one, headless), so each chart must really render to a PNG.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "plabdata" / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def _kernel_env() -> dict[str, str]:
    """This environment without PluginLab credentials or a forced matplotlib backend."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("PLUGINLAB_") and k != "MPLBACKEND"
    }


def _run(name: str, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=_kernel_env())
    return notebook


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


def _code(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if c.cell_type == "code"]


def _cell(notebook: nbformat.NotebookNode, starts: str) -> nbformat.NotebookNode:
    return next(c for c in _code(notebook) if c.source.startswith(starts))


def _pngs(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in _code(notebook) for o in c.outputs)


def test_the_three_notebooks_are_there() -> None:
    assert ALL == [
        "01_explore_members.ipynb",
        "02_bulk_import_members.ipynb",
        "03_backfill_web_usage.ipynb",
        "04_member_history.ipynb",
        "05_migrate_from_auth0.ipynb",
    ]


@pytest.mark.parametrize("name", ALL)
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in _code(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    intro = notebook.cells[0].source
    assert "PLUGINLAB_SECRET" in intro and "emulator" in intro and "real" in intro
    assert "notebook_admin(" in _code(notebook)[0].source


@pytest.mark.parametrize("name", ALL)
def test_notebooks_import_from_plabdata_only(name: str) -> None:
    # The public names (plabdata/__init__.py), never a module that may change under them.
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in _code(notebook):
        for line in cell.source.splitlines():
            assert not re.match(r"\s*(from|import)\s+plabdata\.", line), (name, line)


def test_python3_kernel_is_available_without_a_hand_install() -> None:
    # jupyter_client finds ipykernel's own spec (shipped in the wheel) or falls back to it.
    assert "python3" in KernelSpecManager().find_kernel_specs()


def test_explore_members_notebook() -> None:
    notebook = _run("01_explore_members.ipynb", ROOT)  # from the repository root
    assert "embedded emulator with 500 demo members" in _text(_code(notebook)[0])
    assert "500 members" in _text(_cell(notebook, "base = "))
    assert _pngs(notebook) == 5  # plan, method, signups, providers, quota: every chart drew
    explorer = _code(notebook)[-1].outputs[-1]["data"]
    assert WIDGET in explorer and "text/html" in explorer
    assert explorer["text/plain"] == "MemberExplorer(500 of 500 members: all members)"


def test_bulk_import_notebook() -> None:
    notebook = _run("02_bulk_import_members.ipynb", NOTEBOOKS)  # as Jupyter starts it
    assert "valid_rows=301, invalid_rows=6" in _text(_cell(notebook, "sheet = "))
    assert "89 creates, 50 updates" in _text(_cell(notebook, "members = "))
    results = _text(_cell(notebook, "APPLY = "))
    assert re.search(r"create\s+done\s+89", results) and re.search(r"update\s+done\s+50", results)
    assert "0 failed or stale rows" in _text(_cell(notebook, "problems = "))
    again = _text(_cell(notebook, "again = "))
    assert "0 creates, 0 updates, 0 deletes" in again and "Nothing to do" in again


def test_backfill_notebook() -> None:
    notebook = _run("03_backfill_web_usage.ipynb", NOTEBOOKS)
    preview = _text(_cell(notebook, "members = "))
    to_send = int(re.search(r"would send ([\d,]+)", preview)[1].replace(",", ""))  # type: ignore[index]
    assert to_send > 1000 and "invalid 8" in preview
    assert "pushed over" in _text(_cell(notebook, "impact = "))
    assert _pngs(notebook) >= 1
    report = _text(_cell(notebook, "UPLOAD = "))
    assert f"sent {to_send:,}" in report
    checked = re.search(
        r"([\d,]+) of ([\d,]+) members' quota usage matches", _text(_cell(notebook, "now = "))
    )
    assert checked and checked[1] == checked[2]
    assert f"sent 0, already-done {to_send:,}" in _text(_cell(notebook, "again = "))


def test_member_history_notebook() -> None:
    notebook = _run("04_member_history.ipynb", NOTEBOOKS)
    built = _text(_cell(notebook, "if emulator is not None:"))
    assert re.search(r"13 snapshots, \S+ → \S+: 200 → [\d,]+ members \(\+[\d,]+ joined", built)
    timeline = _text(_cell(notebook, "timeline = "))
    assert "verified_share" in timeline and "over_quota" in timeline
    assert _pngs(notebook) == 5  # plans, growth, sign-in methods, cohorts, transitions
    assert "(joined)" in _text(_cell(notebook, "# The last four snapshots"))
    assert re.search(
        r"[\d,]+ upgrades and [\d,]+ downgrades", _text(_cell(notebook, "upgrades = "))
    )
    written = re.search(
        r"wrote (\S+member_history\.html)", _text(_cell(notebook, "report_path = "))
    )
    assert written
    read = _text(_cell(notebook, "import pyarrow.dataset"))
    assert "free" in read and "unlimited" in read


def test_migrate_from_auth0_notebook() -> None:
    notebook = _run("05_migrate_from_auth0.ipynb", NOTEBOOKS)
    read = _text(_cell(notebook, "sheet = "))
    assert "auto chose auth0" in read and "valid_rows=29, invalid_rows=1" in read
    plan = _text(_cell(notebook, "members = "))
    assert "29 creates" in plan and "Passwords: 23 create(s) had a password" in plan
    assert re.search(r"create\s+done\s+oauth-only\s+6", _text(_cell(notebook, "APPLY = ")))
    told = _text(_cell(notebook, "to_tell = "))
    assert "29 members to tell: 23 reset their password, 6 signed in" in told
    again = _text(_cell(notebook, "again = "))
    assert "0 creates, 0 updates, 0 deletes, 29 unchanged" in again
