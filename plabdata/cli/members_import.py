"""``plabdata members import SHEET``: validate a sheet, plan the changes, apply them on demand.

A thin layer over :func:`~plabdata.read_member_sheet`,
:func:`~plabdata.plan_member_changes` and :func:`~plabdata.apply_plan`.
"""

from __future__ import annotations

from pathlib import Path

import click

from plabdata.cli._base import Api, api_options, errors_to_exit
from plabdata.cli.members import SHOW, members, plan_options, read_and_plan


@members.command("import")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Apply the plan. Without it nothing is changed: the sheet is validated and "
    "the plan printed.",
)
@plan_options
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
@api_options
@errors_to_exit
def import_members(
    sheet: Path,
    apply_: bool,
    delete_missing: bool,
    max_deletes: int,
    blank_means: str,
    key: str,
    sheet_name: str | None,
    source: str | None,
    column_map: dict[str, str | None],
    journal: str | None,
    concurrency: int,
    out: str | None,
    failed_out: str | None,
    api: Api,
) -> None:
    """Bring the member base in line with SHEET (.csv, .xlsx or .parquet), or with another
    platform's user export (--from auth0|firebase|clerk|supabase|memberstack|auto).

    Prints the issues found in the sheet and the plan (creates, updates, deletes, differences
    the API cannot apply). With --apply, applies it and prints the results. Exits with 1 when
    rows were invalid or failed.
    """
    from plabdata.jobs._open import journal_path
    from plabdata.jobs._outputs import check_outputs, set_aside, settle_aside
    from plabdata.members._apply import (
        apply_plan,
        failed_rows,
        problem_counts,
        summarize_results,
    )
    from plabdata.tables._export import export_frame

    if out is not None and Path(out).suffix.lower() not in (".csv", ".parquet"):
        raise click.BadParameter("must end in .csv or .parquet", param_hint="--out")
    outputs = {"--out": out, "--failed-out": failed_out}
    # Before reading: --out must never be the sheet (the only copy of its passwords). The
    # default journal's place needs the plugin id, so it is checked once connected.
    check_outputs([sheet], outputs, journal, journal_name="--journal")
    with api.connect() as admin:
        where = journal_path(admin, journal, "members")
        check_outputs([sheet], outputs, where, journal_name="--journal")
        result, plan = read_and_plan(
            admin,
            sheet,
            sheet_name=sheet_name,
            progress=api.progress,
            delete_missing=delete_missing,
            max_deletes=max_deletes,
            blank_means=blank_means,
            key=key,
            source=source,
            column_map=column_map,
        )
        if apply_:
            # Even with nothing to do: the run closes what an interrupted one left in doubt
            # (its request landed, so the member already matches, and the plan is empty).
            if not plan.is_empty:
                click.echo(f"\napplying (journal: {where}) …")
            results = apply_plan(  # journal None: the library's default place, shown above
                admin, plan, journal=journal, concurrency=concurrency, progress=api.progress
            )
        else:
            results = apply_plan(admin, plan, dry_run=True, progress=False)
            if not plan.is_empty:
                click.echo("\nNothing was changed. Run again with --apply to apply this plan.")
    if apply_:
        click.echo("\n" + summarize_results(results, limit=SHOW * 2))
        notes = results["note"].dropna().value_counts() if "note" in results else None
        if notes is not None and len(notes):
            click.echo(
                "members to tell: "
                + ", ".join(f"{n:,} {note}" for note, n in notes.items())
                + " (reset-needed: they had a password hash, which is never sent; ask them to "
                "reset it or sign in by email code; oauth-only: they sign in with their provider)"
            )
    if out is not None:
        export_frame(results, out)
        click.echo(f"results: {out}")
    problems = problem_counts(results)
    if failed_out is not None and problems:
        aside = set_aside(Path(failed_out))  # an earlier file may hold the operator's fixes
        export_frame(failed_rows(results, result).reset_index(), failed_out)
        click.echo(f"rows to fix: {failed_out}")
        kept = settle_aside(Path(failed_out), aside, "rows to fix")
        if kept is not None:
            click.echo(kept)
    if problems:
        summary = ", ".join(f"{n} {status}" for status, n in problems.items())
        click.secho(
            f"error: {summary} row(s); see the reasons above" + (f" and in {out}" if out else ""),
            err=True,
            fg="red",
        )
        raise SystemExit(1)
