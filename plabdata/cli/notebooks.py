"""``plabdata notebooks [DIR]``: write the shipped notebooks and the sample files they read
into a folder, ready for ``jupyter lab DIR`` (installed users have no checkout to open)."""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

import click

from plabdata.cli._base import main
from plabdata.samples import NOTEBOOK_SAMPLES, copy_samples


def shipped_notebooks() -> list[str]:
    """The names of the notebooks inside the package, in reading order."""
    folder = files("plabdata") / "notebooks"
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".ipynb"))


@main.command("notebooks")
@click.argument(
    "name",
    metavar="FOLDER",
    default="plabdata-notebooks",
    required=False,
)
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite notebooks already in FOLDER (sample files there are never overwritten).",
)
def notebooks_command(name: str, force: bool) -> None:
    """Write the notebooks and their sample files into FOLDER (default: plabdata-notebooks).

    A notebook already there is kept — it may hold your edits — unless --force is given; the
    notebooks read the sample copies next to them first, so edit those at will. Open them with
    `jupyter lab FOLDER` (pip install jupyterlab, if you have no Jupyter yet).
    """
    if not name.strip():
        raise click.UsageError("FOLDER is empty (an unset variable?): name a folder")
    folder = Path(name)
    if folder.exists() and not folder.is_dir():
        raise click.UsageError(f"{folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    for notebook in shipped_notebooks():
        target = folder / notebook
        if target.exists() and not force:
            kept.append(notebook)
            continue
        with as_file(files("plabdata") / "notebooks" / notebook) as source:
            shutil.copyfile(source, target)
        written.append(notebook)
    samples = copy_samples(folder, NOTEBOOK_SAMPLES)
    click.echo(
        f"{folder}/: {len(written)} notebooks written, {len(samples)} sample files written"
        + (f"; kept as they were: {', '.join(kept)} (--force overwrites)" if kept else "")
    )
    for notebook in written:
        click.echo(f"  {notebook}")
    click.echo(f"open them: jupyter lab {folder}")
