"""``plabdata demo``: the three jobs and the member history end to end, against the embedded
emulator by default (a thin layer over :func:`plabdata.demo.run_demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from plabdata.cli._base import errors_to_exit, main


@main.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("plabdata-demo-output"),
    show_default=True,
    help="Folder for the outputs (created).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=200),
    default=500,
    show_default=True,
    help="Demo members of the embedded emulator (the sample files are made for 500).",
)
@click.option(
    "--real",
    is_flag=True,
    help="Use the API the PLUGINLAB_* environment points at instead of the emulator. "
    "Read-only unless --apply is given.",
)
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="With --real: really import the sheet and upload the events.",
)
@click.option(
    "--sheet",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Member sheet to import (default: the shipped sample members_import.xlsx).",
)
@click.option(
    "--events",
    type=click.Path(exists=True, path_type=Path),
    help="Logs to backfill (default: three days of the shipped sample web_ui_events.parquet).",
)
@errors_to_exit
def demo(
    out: Path, seed: int, real: bool, apply_: bool, sheet: Path | None, events: Path | None
) -> None:
    """Explore, bulk-import and backfill end to end, and write the outputs to --out.

    Starts the embedded emulator with demo members, loads and exports the member base
    (Parquet, a chart), imports the sample member sheet (plan, apply, re-plan: nothing left)
    and backfills the sample web-UI logs (preview, upload, re-run: nothing sent twice).
    Exits with 1 if any row failed.
    """
    from plabdata.demo import run_demo

    if apply_ and not real:
        click.echo("note: --apply only matters with --real (the emulator always applies)")
    try:
        result = run_demo(
            out, seed=seed, real=real, apply=apply_, sheet=sheet, events=events, echo=click.echo
        )
    except FileNotFoundError as exc:  # the samples live in a checkout, not in the wheel
        raise click.ClickException(f"{exc}; pass --sheet and --events") from None
    if result.problems:
        for problem in result.problems[:20]:
            click.secho(f"error: {problem}", err=True, fg="red")
        raise SystemExit(1)
