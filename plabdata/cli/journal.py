"""``plabdata journal show``: what a job's journal holds — its binding, its counts, and the
entries a person should look at (in doubt, failed), without running the job."""

from __future__ import annotations

import click

from plabdata.cli._base import Api, api_options, errors_to_exit, main

SHOW = 20


@main.group()
def journal() -> None:
    """Look into the journals that make the bulk jobs resumable."""


@journal.command("show")
@click.argument("job", type=click.Choice(["members", "events"]))
@click.option(
    "--journal",
    "path",
    type=click.Path(dir_okay=False),
    help="The journal file (default: the plugin's own for JOB, "
    "$PLABDATA_HOME/journals/<plugin id>/<JOB>.journal).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="List the entries with this status (repeatable; default: pending, in-doubt, failed).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=SHOW,
    show_default=True,
    help="Entries listed at most.",
)
@api_options
@errors_to_exit
def show(job: str, path: str | None, statuses: tuple[str, ...], limit: int, api: Api) -> None:
    """Show JOB's journal: where it is, what it is bound to, entries per status, and the
    entries that need a look. Changes nothing; sends nothing."""
    from plabdata.jobs._open import journal_path, open_journal
    from plabdata.jobs._outcomes import PENDING

    wanted = statuses or (PENDING, "in-doubt", "failed")
    with api.connect() as admin:
        where = journal_path(admin, path, job)
        held = open_journal(admin, path, job, create=False)
    if held is None:
        click.echo(f"{where}: no journal yet (no {job} job has run for this plugin here)")
        return
    with held:
        counts = held.counts()
        frame = held.frame()
    click.echo(f"journal: {where}")
    click.echo(f"bound to plugin {held.plugin_id}, job {held.job}, API {held.api_url}")
    total = sum(counts.values())
    click.echo(
        f"{total:,} entries: " + (", ".join(f"{n:,} {s}" for s, n in counts.items()) or "none")
    )
    picked = frame[frame["status"].isin(wanted)]
    if picked.empty:
        click.echo(f"no entry is {' / '.join(wanted)}")
        return
    click.echo(f"\n{' / '.join(wanted)} ({len(picked):,}):")
    for item in picked.head(limit).to_dict("records"):
        detail = item["detail"] or {}
        where_from = ", ".join(f"{k}={v}" for k, v in sorted(detail.items()) if v is not None)
        error = f" — {item['error']}" if item["error"] else ""
        click.echo(f"  {item['status']:<10} {item['key']}  {where_from}{error}")
    if len(picked) > limit:
        click.echo(f"  … and {len(picked) - limit:,} more")
