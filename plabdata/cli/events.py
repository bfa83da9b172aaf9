"""``plabdata events …``: backfill usage events from exported logs (a thin layer over
:func:`plabdata.backfill_events`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from plabdata.cli._base import Api, api_options, errors_to_exit, main
from plabdata.jobs._outcomes import EVENT_PROBLEMS, EventOutcome

SAMPLE_ROWS = 10


@main.group()
def events() -> None:
    """Backfill custom usage events from CSV / Parquet logs."""


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a --since/--until the library would refuse, before any work (same rules)."""
    if value is None:
        return None
    from plabdata.errors import ValidationError
    from plabdata.events._timestamps import parse_time_bound

    try:
        parse_time_bound(value, name=param.name or "time")
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _column_pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    pairs = {}
    for value in values:
        canonical, sep, name = value.partition("=")
        if not sep or not canonical or not name:
            raise click.BadParameter(f"{value!r}: expected CANONICAL=NAME, e.g. email=user_mail")
        pairs[canonical.strip()] = name.strip()
    return pairs


@events.command("backfill")
@click.argument("logs", nargs=-1, required=True)
@click.option(
    "--source",
    "source_name",
    metavar="NAME",
    help="Event source (1-10 characters, e.g. WEB_UI) of rows whose log gives "
    "none: no event_source/source column, or a blank value.",
)
@click.option("--email-column", metavar="NAME", help="The column holding member emails.")
@click.option("--member-id-column", metavar="NAME", help="The column holding member ids.")
@click.option(
    "--column",
    "column_pairs",
    multiple=True,
    callback=_column_pairs,
    metavar="CANONICAL=NAME",
    help="Map any recognised column (timestamp, email, member_id, event_source, "
    "country_code, subdivision_code, is_in_quota) to a column of the logs.",
)
@click.option(
    "--in-quota/--not-in-quota",
    default=None,
    help="Count every event toward quota, or none (default: the is_in_quota "
    "column, blank meaning yes).",
)
@click.option(
    "--since",
    callback=_when,
    metavar="TIME",
    help="Only rows at or after this time (ISO 8601; naive means UTC).",
)
@click.option("--until", callback=_when, metavar="TIME", help="Only rows before this time.")
@click.option(
    "--timestamp-format",
    metavar="FORMAT",
    help="How the log's timestamps read when they are not ISO 8601: day-first, "
    "month-first, iso, or a strptime pattern such as '%d/%m/%Y %H:%M'. Needed only when "
    "the dates could be read both ways (03/04/2024); the error says so.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False),
    help="The journal that makes re-runs send only rows not yet sent, whatever the "
    "logs' names and order. Default: the plugin's own, "
    "$PLABDATA_HOME/journals/<plugin id>/events.journal (PLABDATA_HOME defaults to "
    "~/.local/share/plabdata).",
)
@click.option(
    "--on-in-doubt",
    type=click.Choice(["skip", "retry"]),
    default="skip",
    show_default=True,
    help="Rows sent without a definite answer: skip them (never double-count) or "
    "send again (may double-count; the report says how many).",
)
@click.option(
    "--unknown-member",
    type=click.Choice(["reject", "anonymous"]),
    default="reject",
    show_default=True,
    help="Rows whose member is unknown or blank: reject them, or send them "
    "without a member (no quota).",
)
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Upload. Without it: validate, resolve and preview; nothing is sent.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write the per-row table (every row's outcome) to this Parquet file.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False),
    help="Where to write rejected rows, in the logs' format with a problem column, to fix "
    "and feed back. Default: next to the first log, <LOG>.rejected.csv / .parquet. An "
    "earlier file there is kept aside unless the run writes the same rows again.",
)
@click.option("--concurrency", type=click.IntRange(min=1), help="Requests in flight.")
@click.option(
    "--quota-preview/--no-quota-preview",
    default=True,
    help="In a preview, load quota usage of the members concerned (one request "
    "each) and flag those the backfill would push over their limit.",
)
@api_options
@errors_to_exit
def backfill(
    logs: tuple[str, ...],
    source_name: str | None,
    email_column: str | None,
    member_id_column: str | None,
    column_pairs: dict[str, str],
    in_quota: bool | None,
    since: str | None,
    until: str | None,
    timestamp_format: str | None,
    journal_path: str | None,
    on_in_doubt: str,
    unknown_member: str,
    apply_: bool,
    report_path: str | None,
    rejects_path: str | None,
    concurrency: int | None,
    quota_preview: bool,
    api: Api,
) -> None:
    """Backfill LOGS (CSV / Parquet files, folders or globs) as PluginLab custom events.

    Every row is fingerprinted and journaled, so running the same logs again, or a later
    export that overlaps them (under any name, in any order), uploads only rows not yet
    sent. PluginLab records the events at upload time, not at the logs' timestamps.

    Folders and globs skip plabdata's own files (journals, per-row reports, rejected rows)
    and say so; to feed fixed rejected rows back, name their file. No output may be an
    input or the journal.

    Exit status with --apply: 0 when every row was sent or already done; 1 when rows
    failed, were invalid or are in doubt (the message says which).
    """
    from plabdata.events._backfill import backfill_events
    from plabdata.events._read import resolve_sources
    from plabdata.jobs._open import journal_path as journal_place
    from plabdata.jobs._outputs import check_outputs, collect_skipped, rejects_name

    columns = dict(column_pairs)
    if email_column:
        columns["email"] = email_column
    if member_id_column:
        columns["member_id"] = member_id_column
    with collect_skipped():  # the report lists the files skipped; say it once
        sources = resolve_sources(list(logs))
    first = sources[0].path or Path("events")
    if rejects_path is None:
        rejects_path = os.fspath(
            rejects_name(first, "csv" if sources[0].format == "csv" else "parquet")
        )
    inputs = [src.path for src in sources if src.path is not None]
    outputs = {"--report": report_path, "--rejects": rejects_path}
    check_outputs(inputs, outputs, journal_path, journal_name="--journal")
    with api.connect() as admin:
        journal = journal_place(admin, journal_path, "events")  # the default needs the plugin
        check_outputs(inputs, outputs, journal, journal_name="--journal")
        fresh = "" if journal.exists() else " (new: nothing was sent through it yet)"
        click.echo(f"journal: {journal}{fresh}")
        report = backfill_events(
            admin,
            list(logs),
            journal=journal_path,  # None: the library's default place, the one shown
            concurrency=concurrency,
            dry_run=not apply_,
            in_quota=in_quota,
            on_in_doubt=on_in_doubt,  # type: ignore[arg-type]
            unknown_member=unknown_member,  # type: ignore[arg-type]
            source_name=source_name,
            columns=columns or None,
            since=since,
            until=until,
            timestamp_format=timestamp_format,
            progress=api.progress,
            load_quota=quota_preview and not apply_,
            report_path=report_path,
            rejects_path=rejects_path,
        )
    click.echo(report.summary())
    _show_samples(report)
    click.echo(f"journal: {journal}")
    if report_path is not None:
        click.echo(f"per-row report: {report_path}")
    if not apply_:
        click.echo("preview only: nothing was sent; add --apply to upload")
        return
    problems = [
        f"{report.counts[s]:,} {s}"
        for s in EventOutcome
        if s in EVENT_PROBLEMS and report.counts.get(s)
    ]
    if problems:
        click.secho(f"not clean: {', '.join(problems)} rows", err=True, fg="red")
        raise SystemExit(1)


def _show_samples(report: Any) -> None:
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_colwidth", 70):
        invalid = report.rows(EventOutcome.INVALID)
        if len(invalid):
            click.echo(
                f"\ninvalid rows (first {min(SAMPLE_ROWS, len(invalid))} of {len(invalid):,}):"
            )
            click.echo(invalid[["file", "row", "error"]].head(SAMPLE_ROWS).to_string(index=False))
        doubt = report.rows(EventOutcome.IN_DOUBT)
        if len(doubt):
            click.echo(f"\nin-doubt rows (first {min(SAMPLE_ROWS, len(doubt))} of {len(doubt):,}):")
            click.echo(
                doubt[["file", "row", "fingerprint", "error"]]
                .head(SAMPLE_ROWS)
                .to_string(index=False)
            )
        if report.quota is not None:
            over = report.quota[report.quota["pushed_over_limit"]]
            if len(over):
                click.echo(f"\nmembers pushed over their quota ({len(over):,}):")
                shown = over[
                    [
                        "member_id",
                        "in_quota_events",
                        "usage_count",
                        "usage_limit",
                        "usage_after",
                        "interval",
                    ]
                ]
                click.echo(shown.head(SAMPLE_ROWS).to_string(index=False))
    click.echo("")
