"""``pip install plabdata`` gives the whole product: build the sdist and, from it, the wheel;
check both hold what a user needs; install the wheel into a fresh virtual environment outside
the checkout; run ``plabdata demo`` in an empty folder and one notebook written by
``plabdata notebooks`` — the way a new user would, with nothing from the checkout on the path.

One test, about 2 minutes on 2 cores (most of it installing the wheel's dependencies into the
new environment, from pip's cache when it has them). ``PLABDATA_SKIP_WHEEL=1`` skips it
locally; CI always runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("PLABDATA_SKIP_WHEEL") == "1", reason="PLABDATA_SKIP_WHEEL=1"
    ),
]

# What the installed demo and notebooks read: it must be inside the wheel.
MUST_SHIP = {
    "plabdata/py.typed",
    "plabdata/samples/members_import.xlsx",
    "plabdata/samples/members_import.csv",
    "plabdata/samples/web_ui_events.parquet",
    "plabdata/samples/exports/auth0_users.ndjson",
    "plabdata/notebooks/01_explore_members.ipynb",
    "plabdata/emulator/__init__.py",
}


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-3000:]}\n"
        f"{done.stderr[-3000:]}"
    )
    return done.stdout


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user's shell with the new venv activated: no checkout on the path,
    no PluginLab settings, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLUGINLAB_", "PLABDATA_"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["HOME"] = str(venv.parent / "home")
    env["MPLBACKEND"] = "Agg"
    # pip's cache (and its config: index, mirrors) stays the machine's, as for a user.
    env.setdefault(
        "PIP_CACHE_DIR", str(Path(os.environ.get("HOME", "~")).expanduser() / ".cache" / "pip")
    )
    return env


def _readme_demo_files() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("The outputs land in", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for cell in re.findall(r"^\| `([^|]+)` \|", section, re.M):
        first, *others = [c.strip(" `") for c in cell.split("/")]
        names.add(first)
        stem = first.rsplit(".", 1)[0]
        names.update(f"{stem}{other}" for other in others)  # `x.csv` / `.png`
    return names


def test_an_installed_wheel_runs_the_demo_and_a_notebook_in_an_empty_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    # sdist first, then the wheel built from the sdist: both must be complete.
    _run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        cwd=work,
        env=dict(os.environ),
    )
    wheel = next(dist.glob("plabdata-*.whl"))
    sdist = next(dist.glob("plabdata-*.tar.gz"))
    from plabdata import __version__

    assert f"plabdata-{__version__}-" in wheel.name, wheel.name

    names = set(zipfile.ZipFile(wheel).namelist())
    missing = MUST_SHIP - names
    assert not missing, f"the wheel lacks {sorted(missing)}"
    assert not {n for n in names if n.startswith(("tests/", "benchmarks/", "data/"))}
    assert not {n for n in names if "__pycache__" in n or n.endswith(".journal")}
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "no LICENSE"
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    assert "Requires-Python: >=3.11" in metadata
    assert "License-Expression: MIT" in metadata
    assert "Description-Content-Type: text/markdown" in metadata
    runtime = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)[^;\n]*$", metadata, re.M)
    dev_only = {"pytest", "ruff", "mypy", "pluginlab_admin", "pluginlab-admin", "build", "twine"}
    assert not dev_only & set(runtime), runtime
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert {"LICENSE", "README.md", "pyproject.toml", "plabdata/_version.py"} <= members
    assert members >= MUST_SHIP
    _run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        work,
        dict(os.environ),
    )

    # A fresh venv, outside the checkout; the wheel and what a kernel needs, nothing else.
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=dict(os.environ))
    env = _clean_env(venv)
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", "-q", str(wheel), "nbclient", "ipykernel"],
        cwd=work,
        env=env,
        timeout=900,
    )

    empty = work / "empty"
    empty.mkdir()
    said = _run([str(venv / "bin" / "plabdata"), "demo"], cwd=empty, env=env)
    out = empty / "plabdata-demo-output"
    written = {p.name for p in out.iterdir()}
    assert _readme_demo_files() <= written, _readme_demo_files() - written
    assert "nothing" in said.lower()  # the re-runs: nothing left to do, nothing sent twice

    notebooks = empty / "nb"
    said = _run([str(venv / "bin" / "plabdata"), "notebooks", str(notebooks)], empty, env)
    assert (notebooks / "members_import.xlsx").is_file(), said
    shipped = sorted(p.name for p in notebooks.glob("*.ipynb"))
    assert len(shipped) >= 5, shipped
    # One notebook, run top to bottom by a real kernel of the new venv, in its folder.
    _run(
        [
            python,
            "-c",
            "import nbclient, nbformat, sys;"
            "nb = nbformat.read(sys.argv[1], as_version=4);"
            "nbclient.NotebookClient(nb, timeout=300, kernel_name='python3',"
            " resources={'metadata': {'path': sys.argv[2]}}).execute()",
            str(notebooks / "02_bulk_import_members.ipynb"),
            str(notebooks),
        ],
        cwd=notebooks,
        env=env,
        timeout=600,
    )
    # Again: the notebooks already there are kept (they may hold the user's edits).
    said = _run([str(venv / "bin" / "plabdata"), "notebooks", str(notebooks)], empty, env)
    assert "0 notebooks written" in said and "kept" in said, said
