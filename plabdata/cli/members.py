"""``plabdata members …``: one command per member job of the library.

- ``members export OUT``: :func:`~plabdata.load_member_base`, then ``export_frame``;
- ``members plan SHEET``: :func:`~plabdata.read_member_sheet`, then
  :func:`~plabdata.plan_member_changes` (``--save plan.json`` to apply it later);
- ``members apply PLAN``: :func:`~plabdata.apply_plan` of a saved plan;
- ``members import SHEET``: plan, then apply with ``--apply`` (``members_import.py``);
- ``members refresh-identities``: :func:`~plabdata.refresh_identities`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from plabdata.cli._base import Api, api_options, errors_to_exit, main

if TYPE_CHECKING:
    from plabdata.members._plan import Plan
    from plabdata.members._sheet import SheetResult

PARTS = ("identities", "quota")
SHOW = 10


@main.group()
def members() -> None:
    """Export the member base, plan and apply changes from a sheet, refresh identities."""


def _parts(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise click.BadParameter(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in parts]


@members.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--include",
    "--with",
    "include",
    default="",
    callback=_parts,
    metavar="identities,quota",
    help="Also fetch and join identities and/or quota usage (comma-separated; each page's "
    "members are fetched while the next pages are walked).",
)
@api_options
@errors_to_exit
def export(out: Path, include: list[str], api: Api) -> None:
    """Export every member to OUT (.parquet, .csv or .xlsx).

    Parquet keeps every dtype; CSV and XLSX neutralise cells that a spreadsheet would run
    as formulas. Settings come from the PLUGINLAB_* environment variables.
    """
    from plabdata.members._loaders import load_member_base
    from plabdata.tables._export import export_frame

    if out.suffix.lower() not in (".parquet", ".csv", ".xlsx"):
        raise click.BadParameter("OUT must end in .parquet, .csv or .xlsx", param_hint="OUT")
    with api.connect() as admin:
        frame = load_member_base(admin, include=include, progress=api.progress)
    export_frame(frame, out)
    click.echo(f"wrote {len(frame):,} members ({len(frame.columns)} columns) to {out}")


# ---------------------------------------------------------------------------- plan options


def plan_options(func: Any) -> Any:
    """The options of :func:`~plabdata.plan_member_changes`, shared by ``plan`` and
    ``import``."""
    options = [
        click.option(
            "--delete-missing",
            is_flag=True,
            help="Also delete members whose email is not in the sheet (refused while the "
            "sheet has errors: a member on an unreadable row would be deleted).",
        ),
        click.option(
            "--max-deletes",
            type=click.IntRange(min=0),
            default=50,
            show_default=True,
            help="Refuse a plan deleting more members than this.",
        ),
        click.option(
            "--blank-means",
            type=click.Choice(["keep", "clear"]),
            default="keep",
            show_default=True,
            help="What a blank cell means for an existing member.",
        ),
        click.option(
            "--key",
            type=click.Choice(["email", "member_id"]),
            default="email",
            show_default=True,
            help="Match sheet rows to members by email or by member id.",
        ),
        click.option("--sheet", "sheet_name", help="XLSX worksheet to read (default: the first)."),
        click.option(
            "--from",
            "source",
            type=click.Choice(["auto", *_sources()]),
            help="The file is another platform's user export: read it with that platform's "
            "preset (auto: recognise it from its shape). Password hashes are never sent.",
        ),
        click.option(
            "--map",
            "column_map",
            multiple=True,
            callback=_map_pairs,
            metavar="COLUMN=FIELD",
            help="Map a column (or an export's field path) to a member field, e.g. "
            "'E-mail=email' or 'app_metadata.plan=metadata.plan'; 'COLUMN=' ignores it.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _sources() -> tuple[str, ...]:
    from plabdata.members._sources import SOURCES

    return tuple(SOURCES)


def _map_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str | None]:
    pairs: dict[str, str | None] = {}
    for value in values:
        column, sep, field = value.partition("=")
        if not sep or not column.strip():
            raise click.BadParameter(f"{value!r}: expected COLUMN=FIELD, e.g. E-mail=email")
        pairs[column.strip()] = field.strip() or None
    return pairs


def read_and_plan(
    admin: Any,
    sheet_path: Path,
    *,
    sheet_name: str | None,
    progress: bool,
    source: str | None = None,
    column_map: dict[str, str | None] | None = None,
    **planning: Any,
) -> tuple[SheetResult, Plan]:
    """Read and validate the sheet (printing its issues), load the members, plan."""
    from plabdata.members._loaders import load_members
    from plabdata.members._plan import plan_member_changes
    from plabdata.members._sheet import read_member_sheet

    sheet = read_member_sheet(
        sheet_path, sheet=sheet_name, source=source, column_map=column_map or None
    )
    if sheet.source_reason:
        click.echo(sheet.source_reason)
    echo_sheet(sheet)
    current = load_members(admin, progress=progress)
    plan = plan_member_changes(sheet, current, plugin_id=admin.settings.plugin_id, **planning)
    click.echo(plan.describe(limit=SHOW))
    return sheet, plan


@members.command("plan")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@plan_options
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan (no passwords) to this JSON file, to review and apply later with "
    "`plabdata members apply`.",
)
@api_options
@errors_to_exit
def plan(
    sheet: Path,
    delete_missing: bool,
    max_deletes: int,
    blank_means: str,
    key: str,
    sheet_name: str | None,
    source: str | None,
    column_map: dict[str, str | None],
    save: Path | None,
    api: Api,
) -> None:
    """Plan the creates, updates and deletes that bring the members in line with SHEET.

    Nothing is changed. Exits with 1 when the sheet has rows with errors (they are left out
    of the plan and listed).
    """
    from plabdata.jobs._outputs import check_outputs

    check_outputs([sheet], {"--save": save})
    with api.connect() as admin:
        result, made = read_and_plan(
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
    if save is not None:
        made.save(save)
        passwords = (
            " (the sheet's passwords are not in it: pass --sheet-passwords"
            f" {sheet} to `members apply`)"
            if made.needs_passwords
            else ""
        )
        click.echo(f"\nplan saved: {save}{passwords}")
    if result.invalid_rows:
        raise SystemExit(1)


@members.command("apply")
@click.argument(
    "plan_file", metavar="PLAN", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--sheet-passwords",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sheet the plan was made from: a saved plan keeps no passwords, so creates "
    "that take the sheet's password need it again.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False),
    help="Journal that makes the apply resumable. Default: the plugin's own, "
    "$PLABDATA_HOME/journals/<plugin id>/members.journal.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Requests in flight (the rate limit still applies).",
)
@click.option("--dry-run", is_flag=True, help="Send nothing: every op comes back planned.")
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Read the touched members back and fail any that does not match.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the per-op results to this .csv or .parquet file.",
)
@api_options
@errors_to_exit
def apply(
    plan_file: Path,
    sheet_passwords: Path | None,
    journal: str | None,
    concurrency: int,
    dry_run: bool,
    verify: bool,
    out: str | None,
    api: Api,
) -> None:
    """Apply PLAN, a plan saved by `plabdata members plan --save`.

    Each update and delete checks that its member has not changed since the plan was made
    (else it is stale, never overwritten). Exits with 1 when ops failed or were stale.
    """
    from plabdata.jobs._outputs import check_outputs
    from plabdata.members._apply import apply_plan, problem_counts, summarize_results
    from plabdata.members._plan import Plan
    from plabdata.members._sheet import read_member_sheet

    _check_results_path(out)
    inputs = [plan_file, *([sheet_passwords] if sheet_passwords else [])]
    check_outputs(inputs, {"--out": out}, journal, journal_name="--journal")
    saved = Plan.load(plan_file)
    if sheet_passwords is not None:
        saved = saved.with_passwords(read_member_sheet(sheet_passwords))
    click.echo(saved.describe(limit=SHOW))
    with api.connect() as admin:
        results = apply_plan(
            admin,
            saved,
            journal=journal,
            concurrency=concurrency,
            dry_run=dry_run,
            verify=verify,
            progress=api.progress,
        )
    click.echo("\n" + summarize_results(results, limit=SHOW * 2))
    _write_and_exit(results, out, problem_counts(results))


# ---------------------------------------------------------------------------- identities


@members.command("refresh-identities")
@click.option(
    "--expiring-within",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Refresh access tokens expiring within this window (e.g. 30min, 1h, 2d).",
)
@click.option(
    "--providers",
    default="google,gitlab",
    show_default=True,
    help="Providers to refresh (PluginLab refreshes google and gitlab tokens).",
)
@click.option("--concurrency", type=click.IntRange(1, 256), help="Requests in flight.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write one row per identity (status, expiries, error) to .csv or .parquet.",
)
@api_options
@errors_to_exit
def refresh_identities_command(
    expiring_within: str, providers: str, concurrency: int | None, out: str | None, api: Api
) -> None:
    """Refresh the OAuth access tokens of every identity about to expire.

    A provider that refuses (the refresh token was revoked or expired) marks that member
    reauth-needed: they must sign in again. Exits with 1 when any identity needs attention.
    """
    from plabdata.jobs._outcomes import REFRESH_PROBLEMS, RefreshOutcome
    from plabdata.members._identities import refresh_identities

    _check_results_path(out)
    wanted = [p.strip() for p in providers.split(",") if p.strip()]
    with api.connect() as admin:
        result = refresh_identities(
            admin,
            expiring_within=expiring_within,
            providers=wanted,
            concurrency=concurrency,
            progress=api.progress,
        )
    counts = result["status"].value_counts()
    click.echo(
        f"{len(result):,} identities: "
        + ", ".join(f"{int(counts.get(s, 0)):,} {s}" for s in RefreshOutcome)
    )
    bad = result[result["status"].isin(REFRESH_PROBLEMS)]
    for item in bad.head(SHOW * 2).to_dict("records"):
        click.echo(f"  {item['member_id']} {item['provider']}: {item['status']}: {item['error']}")
    _write_and_exit(result, out, {str(k): int(v) for k, v in bad["status"].value_counts().items()})


# ---------------------------------------------------------------------------- shared output


def _check_results_path(out: str | None) -> None:
    if out is not None and Path(out).suffix.lower() not in (".csv", ".parquet"):
        raise click.BadParameter("must end in .csv or .parquet", param_hint="--out")


def _write_and_exit(results: pd.DataFrame, out: str | None, problems: dict[str, int]) -> None:
    from plabdata.tables._export import export_frame

    if out is not None:
        export_frame(results, out)
        click.echo(f"results: {out}")
    if problems:
        summary = ", ".join(f"{n} {status}" for status, n in problems.items())
        click.secho(
            f"error: {summary} row(s); see the reasons above" + (f" and in {out}" if out else ""),
            err=True,
            fg="red",
        )
        raise SystemExit(1)


def echo_sheet(result: SheetResult) -> None:
    """The sheet's counts and its first issues (row, column, value, severity, problem)."""
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
