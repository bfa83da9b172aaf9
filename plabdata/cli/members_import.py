"""``plabdata members import SHEET``: validate a sheet, plan the changes, apply them on demand.

A thin layer over :func:`~plabdata.read_member_sheet`,
:func:`~plabdata.plan_member_changes` and :func:`~plabdata.apply_plan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from plabdata.cli._base import connect_with_options, connection_options, errors_to_exit
from plabdata.cli.members import members
from plabdata.jobs._outcomes import MEMBER_FAILURES, MEMBER_PROBLEMS

SHOW = 10


@members.command("import")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Apply the plan. Without it nothing is changed: the sheet is validated and "
    "the plan printed.",
)
@click.option(
    "--delete-missing",
    is_flag=True,
    help="Also delete members whose email is not in the sheet (refused while the "
    "sheet has invalid rows).",
)
@click.option(
    "--max-deletes",
    type=int,
    default=50,
    show_default=True,
    help="Refuse a plan deleting more members than this.",
)
@click.option(
    "--blank-means",
    type=click.Choice(["keep", "clear"]),
    default="keep",
    show_default=True,
    help="What a blank cell means for an existing member.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    help="Journal that makes --apply resumable (re-run after a crash: nobody is created "
    "twice), whatever the sheet's name. Default: the plugin's own, "
    "$PLABDATA_HOME/journals/<plugin id>/members.journal (PLABDATA_HOME defaults to "
    "~/.local/share/plabdata).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Requests in flight (the rate limit still applies).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the per-row results to this .csv or .parquet file (not the sheet).",
)
@click.option(
    "--failed-out",
    type=click.Path(dir_okay=False),
    help="Write the failed and invalid rows, in the sheet's own columns with a "
    "problem column (passwords left out), to fix and feed back. An earlier file there "
    "is kept aside unless the run writes the same rows again.",
)
@click.option("--sheet", "sheet_name", help="XLSX worksheet to read (default: the first).")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
@connection_options
@errors_to_exit
def import_members(
    sheet: Path,
    apply_: bool,
    delete_missing: bool,
    max_deletes: int,
    blank_means: str,
    journal: str | None,
    concurrency: int,
    out: str | None,
    failed_out: str | None,
    sheet_name: str | None,
    progress: bool,
    plugin_id: str | None,
    rate_limit: float | None,
) -> None:
    """Bring the member base in line with SHEET (.csv, .xlsx or .parquet).

    Prints the issues found in the sheet and the plan (creates, updates, deletes, differences
    the API cannot apply). With --apply, applies it and prints the results. Exits with 1 when
    rows were invalid or failed.
    """
    from plabdata.jobs._open import journal_path
    from plabdata.jobs._outputs import check_outputs, set_aside, settle_aside
    from plabdata.members._apply import apply_plan, failed_rows
    from plabdata.members._loaders import load_members
    from plabdata.members._plan import plan_member_changes
    from plabdata.members._sheet import read_member_sheet
    from plabdata.tables._export import export_frame

    if out is not None and Path(out).suffix.lower() not in (".csv", ".parquet"):
        raise click.BadParameter("must end in .csv or .parquet", param_hint="--out")
    outputs = {"--out": out, "--failed-out": failed_out}
    # Before reading: --out must never be the sheet (the only copy of its passwords). The
    # default journal's place needs the plugin id, so it is checked once connected.
    check_outputs([sheet], outputs, journal, journal_name="--journal")
    result = read_member_sheet(sheet, sheet=sheet_name)
    _echo_sheet(result)
    with connect_with_options(plugin_id, rate_limit) as admin:
        where = journal_path(admin, journal, "members")
        check_outputs([sheet], outputs, where, journal_name="--journal")
        current = load_members(admin, progress=progress)
        plan = plan_member_changes(
            result,
            current,
            delete_missing=delete_missing,
            max_deletes=max_deletes,
            blank_means=blank_means,  # type: ignore[arg-type]
            plugin_id=admin.settings.plugin_id,
        )
        click.echo(plan.describe(limit=SHOW))
        if apply_:
            # Even with nothing to do: the run closes what an interrupted one left in doubt
            # (its request landed, so the member already matches, and the plan is empty).
            if not plan.is_empty:
                click.echo(f"\napplying (journal: {where}) …")
            results = apply_plan(  # journal None: the library's default place, shown above
                admin, plan, journal=journal, concurrency=concurrency, progress=progress
            )
        else:
            results = apply_plan(admin, plan, dry_run=True, progress=False)
            if not plan.is_empty:
                click.echo("\nNothing was changed. Run again with --apply to apply this plan.")
    if apply_:
        _echo_results(results)
    if out is not None:
        export_frame(results, out)
        click.echo(f"results: {out}")
    problems = results[results["status"].isin(MEMBER_PROBLEMS)]
    if failed_out is not None and len(problems):
        aside = set_aside(Path(failed_out))  # an earlier file may hold the operator's fixes
        export_frame(failed_rows(results, result).reset_index(), failed_out)
        click.echo(f"rows to fix: {failed_out}")
        kept = settle_aside(Path(failed_out), aside, "rows to fix")
        if kept is not None:
            click.echo(kept)
    if len(problems):
        counts = problems["status"].value_counts()
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        click.secho(
            f"error: {summary} row(s); see the reasons above" + (f" and in {out}" if out else ""),
            err=True,
            fg="red",
        )
        raise SystemExit(1)


def _echo_sheet(result: Any) -> None:
    issues: pd.DataFrame = result.issues
    warnings = int((issues["severity"] == "warning").sum())
    click.echo(
        f"{result.source}: {len(result.rows):,} valid rows, "
        f"{len(result.invalid_rows):,} invalid rows"
        + (f", {warnings:,} warning(s) (rows kept)" if warnings else "")
    )
    if result.ignored_columns:
        click.echo(f"ignored columns (no member field): {', '.join(result.ignored_columns)}")
    for item in issues.head(SHOW * 2).to_dict("records"):
        value = f" {item['value']!r}" if item["value"] else ""
        where = f"row {item['row']}" if not pd.isna(item["row"]) else "sheet"
        click.echo(
            f"  {where}, {item['column'] or 'row'}{value}: {item['severity']}: {item['problem']}"
        )
    if len(issues) > SHOW * 2:
        click.echo(f"  … and {len(issues) - SHOW * 2} more issues")
    click.echo("")


def _echo_results(results: pd.DataFrame) -> None:
    counts = results.groupby(["op", "status"]).size()
    click.echo("\nresults:")
    for (op, status), n in zip(counts.index, counts.tolist(), strict=True):
        click.echo(f"  {op:<12} {status:<18} {n:,}")
    failed = results[results["status"].isin(MEMBER_FAILURES)]
    for item in failed.head(SHOW * 2).to_dict("records"):
        click.echo(
            f"  row {item['row']} {item['op']} {item['email']}: {item['status']}: {item['error']}"
        )
    if len(failed) > SHOW * 2:
        click.echo(f"  … and {len(failed) - SHOW * 2} more")
