"""``plabdata members snapshot`` and ``plabdata report``: the member base's history.

- ``members snapshot``: :func:`~plabdata.snapshot_member_base` — one dated snapshot appended
  to the store, one summary line; made for cron (no prompt, no progress bars off a terminal,
  exit code 0 only when the snapshot landed whole);
- ``report --out report.html``: :func:`~plabdata.write_report` — today's base and its
  history as one self-contained HTML file.

Both default to the plugin's own store, ``$PLABDATA_HOME/snapshots/<plugin id>/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plabdata.cli._base import Api, api_options, errors_to_exit, main
from plabdata.cli.members import members

REPORT_SUFFIXES = (".html", ".htm")
_STORE_HELP = (
    "The snapshot store (default: the plugin's own, $PLABDATA_HOME/snapshots/<plugin id>/)."
)


def _plan_names(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[int, str]:
    names: dict[int, str] = {}
    for value in values:
        limit, sep, name = value.partition("=")
        if not sep or not limit.strip().isdigit() or not name.strip():
            raise click.BadParameter(f"{value!r}: expected LIMIT=NAME, e.g. 5000=pro")
        names[int(limit)] = name.strip()
    return names


@members.command("snapshot")
@click.option(
    "--store", type=click.Path(file_okay=False, path_type=Path), default=None, help=_STORE_HELP
)
@click.option(
    "--plan-name",
    "plan_names",
    multiple=True,
    callback=_plan_names,
    metavar="LIMIT=NAME",
    help="Name a plan by its monthly limit (repeatable, e.g. --plan-name 100=free "
    "--plan-name 5000=pro); the store remembers the names for later snapshots.",
)
@api_options
@errors_to_exit
def snapshot(store: Path | None, plan_names: dict[int, str], api: Api) -> None:
    """Append today's member base (members, sign-in providers, quota, plan) to the
    snapshot store as one dated snapshot, and print one summary line.

    Made for cron: no prompt, progress bars only on a terminal, exit code 0 once the
    snapshot is written whole (a crash leaves the store as it was). No secret, password or
    identity token is stored.

    \b
    Example crontab line (every day at 06:00):
      0 6 * * *  plabdata members snapshot --store /srv/plabdata/snapshots
    """
    from plabdata.members._snapshots import snapshot_member_base

    with api.connect() as admin:
        try:
            result = snapshot_member_base(
                admin,
                store,
                plan_names=plan_names or None,
                progress=api.progress and sys.stderr.isatty(),
            )
        except OSError as exc:
            # A full disk or a read-only folder: one line for the cron mail, not a traceback.
            where = store or "the default snapshot store"
            click.secho(f"error: cannot write the snapshot to {where}: {exc}", err=True, fg="red")
            raise SystemExit(1) from None
    click.echo(result.summary())


@main.command("report")
@click.option(
    "--store", type=click.Path(file_okay=False, path_type=Path), default=None, help=_STORE_HELP
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The HTML file to write (.html; replaced if it exists).",
)
@click.option(
    "--plugin-id",
    envvar="PLUGINLAB_PLUGIN_ID",
    help="Plugin id whose default store to read (PLUGINLAB_PLUGIN_ID); not needed with --store.",
)
@click.option("--title", help="Page title (default: Member base of <plugin id>).")
@errors_to_exit
def report(store: Path | None, out: Path, plugin_id: str | None, title: str | None) -> None:
    """Write the member-history report of a snapshot store: today's base and its history
    (plans, joins and departures, sign-in methods, cohorts, plan transitions, the latest
    changes) as one self-contained HTML file, charts embedded. Reads the store only; sends
    nothing to PluginLab."""
    from plabdata.members._store import default_snapshot_store, list_snapshots
    from plabdata.widgets.report import write_report

    given = store is not None
    if store is None:
        if not plugin_id:
            raise click.UsageError(
                "no store: give --store DIR, or set PLUGINLAB_PLUGIN_ID (or --plugin-id) "
                "for the plugin's default store"
            )
        store = default_snapshot_store(plugin_id)
    _check_out(out, store)
    first_run = "run `plabdata members snapshot" + (f" --store {store}" if given else "") + "`"
    if not store.exists():
        raise click.UsageError(f"no snapshot store at {store} yet: {first_run} first")
    snapshots = list_snapshots(store)  # ConfigError (exit 2): a folder that is no store
    if snapshots.empty:
        raise click.UsageError(f"{store} holds no snapshot yet: {first_run} first")
    written = write_report(store, out, title=title)
    first, last = snapshots["snapshot_at"].iloc[0], snapshots["snapshot_at"].iloc[-1]
    n = len(snapshots)
    click.echo(
        f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB): {n:,} snapshot"
        + ("s" if n != 1 else "")
        + f", {first:%Y-%m-%d} → {last:%Y-%m-%d}, {int(snapshots['members'].iloc[-1]):,} members"
    )


def _check_out(out: Path, store: Path) -> None:
    """Refuse an OUT that would overwrite an input or land inside the store (where every
    Parquet reader would trip over it)."""
    if out.suffix.lower() not in REPORT_SUFFIXES:
        what = "an existing file" if out.exists() else "a file"
        raise click.BadParameter(
            f"{out} is {what} that is not HTML: the report is written to a .html file",
            param_hint="--out",
        )
    target, folder = out.resolve(), store.resolve()
    if target == folder or target.is_relative_to(folder):
        raise click.BadParameter(
            f"{out} is inside the snapshot store {store}: write the report elsewhere",
            param_hint="--out",
        )
