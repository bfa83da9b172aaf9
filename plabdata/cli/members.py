"""``plabdata members …``: export the member base; import a sheet (see members_import)."""

from __future__ import annotations

from pathlib import Path

import click

from plabdata.cli._base import errors_to_exit, main

EXPORT_PARTS = ("identities", "quota")


@main.group()
def members() -> None:
    """Export the member base, or bring it in line with a spreadsheet."""


@members.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--with",
    "with_",
    default="",
    metavar="identities,quota",
    help="Also fetch and join identities and/or quota usage (comma-separated).",
)
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
@errors_to_exit
def export(out: Path, with_: str, progress: bool) -> None:
    """Export every member to OUT (.parquet, .csv or .xlsx).

    Parquet keeps every dtype; CSV and XLSX neutralise cells that a spreadsheet would run
    as formulas. Settings come from the PLUGINLAB_* environment variables.
    """
    from plabdata.client._sync import connect
    from plabdata.members._loaders import load_member_base
    from plabdata.tables._export import export_frame

    parts = {p.strip() for p in with_.split(",") if p.strip()}
    unknown = parts - set(EXPORT_PARTS)
    if unknown:
        raise click.BadParameter(
            f"unknown part(s) {sorted(unknown)}; choose from {', '.join(EXPORT_PARTS)}",
            param_hint="--with",
        )
    if out.suffix.lower() not in (".parquet", ".csv", ".xlsx"):
        raise click.BadParameter("OUT must end in .parquet, .csv or .xlsx", param_hint="OUT")
    with connect() as admin:
        frame = load_member_base(
            admin, include=[p for p in EXPORT_PARTS if p in parts], progress=progress
        )
    export_frame(frame, out)
    click.echo(f"wrote {len(frame):,} members ({len(frame.columns)} columns) to {out}")
