"""The one-command demo (``plabdata demo``) and the notebooks' connection helper.

``run_demo`` does the three jobs end to end — explore the member base, bulk-import a member
sheet, backfill usage events from logs — then builds weeks of member history and writes its
HTML report, against the embedded emulator with its demo data
(or, with ``real=True``, against the API the environment points at, writing nothing unless
``apply=True``), prints a short summary of each step and writes the outputs to one folder.

    >>> admin, emulator = notebook_admin()     # the emulator unless PLUGINLAB_SECRET is set
    >>> run_demo(Path("plabdata-demo-output"))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from plabdata.client._sync import Admin, connect
from plabdata.config import ENV_SECRET
from plabdata.emulator import EmulatorHandle, running
from plabdata.events._backfill import backfill_events
from plabdata.jobs._outcomes import MEMBER_FAILURES, EventOutcome
from plabdata.jobs._places import default_journal
from plabdata.members._apply import apply_plan
from plabdata.members._history_build import build_history
from plabdata.members._loaders import load_member_base, load_members
from plabdata.members._plan import plan_member_changes
from plabdata.members._sheet import read_member_sheet
from plabdata.members._snapshots import write_snapshot
from plabdata.members._store import METADATA_FILE
from plabdata.samples import packaged_sample
from plabdata.tables._export import export_frame
from plabdata.widgets.charts import figure_png, member_counts, members_chart, quota_impact_chart
from plabdata.widgets.report import write_report

__all__ = [
    "DEMO_SEED",
    "PLAN_NAMES",
    "SAMPLE_WINDOW",
    "DemoResult",
    "emulator_admin",
    "notebook_admin",
    "notebook_journal",
    "run_demo",
    "sample_path",
]

#: Demo members the embedded emulator starts with (the sample files are made for this seed).
DEMO_SEED = 500
#: The emulator's plans by monthly limit (the admin API exposes limits, not plan names).
PLAN_NAMES = {100: "free", 5000: "pro"}
SAMPLE_SHEET = "members_import.xlsx"
SAMPLE_EVENTS = "web_ui_events.parquet"
#: The stretch of the sample logs the demo backfills (three days, ~4,300 events): the whole
#: file (30,000 events) takes a minute or two against the emulator.
SAMPLE_WINDOW = ("2026-10-05", "2026-10-08")
#: The emulator enforces no rate limit; the client's default start (100/s) is for the real API.
EMULATOR_RATE = 2000.0
#: A member is "near" their quota from this share of the limit.
NEAR_QUOTA = 0.8
#: The history step: weeks of churn on a fresh emulator base of this many demo members, one
#: snapshot a week. Small, because each snapshot loads the whole base over HTTP (two calls
#: a member, ~1 s for 100 members here): 5 snapshots of ~100 members and the report take
#: ~6 s, 13 snapshots of 500 members over a minute.
HISTORY_WEEKS = 4
HISTORY_MEMBERS = 100

Echo = Callable[[str], None]


def sample_path(name: str) -> Path:
    """A sample file a notebook or the demo reads: a copy of that name in the working folder
    wins (``plabdata notebooks DIR`` writes one next to the notebooks, to edit at will), else
    the sample shipped inside plabdata (:mod:`plabdata.samples`).

    Raises:
        FileNotFoundError: neither exists (the message lists the shipped samples).

    Example:
        >>> sheet = read_member_sheet(sample_path("members_import.xlsx"))
    """
    local = Path.cwd() / name
    if local.is_file():
        return local
    return packaged_sample(name)


def emulator_admin(emulator: EmulatorHandle) -> Admin:
    """An :class:`Admin` for the emulator, paced for it (it has no rate limit to respect).

    Example:
        >>> with running(seed=500) as emu, emulator_admin(emu) as admin: ...
    """
    return Admin(emulator.settings.replace(rate_limit=EMULATOR_RATE))


_notebook_session = contextlib.ExitStack()
atexit.register(_notebook_session.close)


def notebook_admin(
    seed: int = DEMO_SEED, *, echo: Echo = print
) -> tuple[Admin, EmulatorHandle | None]:
    """The connection a notebook works with, and the emulator it started (or None).

    With ``PLUGINLAB_SECRET`` set, connects to the API the ``PLUGINLAB_*`` variables point at
    (the real PluginLab by default). Without it, starts the embedded emulator with ``seed``
    demo members; it runs until the kernel stops, and calling this again starts a fresh one.
    Says which in one line.

    Example:
        >>> admin, emulator = notebook_admin()
        Using the embedded emulator with 500 demo members (PLUGINLAB_SECRET is not set) …
    """
    _notebook_session.close()  # a re-run cell starts from a clean emulator
    if os.environ.get(ENV_SECRET):
        admin = _notebook_session.enter_context(connect())
        echo(
            f"Using the PluginLab API at {admin.settings.auth_url} for plugin "
            f"{admin.settings.plugin_id} (PLUGINLAB_SECRET is set)."
        )
        return admin, None
    emulator = _notebook_session.enter_context(running(seed=seed))
    admin = _notebook_session.enter_context(emulator_admin(emulator))
    echo(
        f"Using the embedded emulator with {seed:,} demo members (PLUGINLAB_SECRET is not "
        f"set) at {emulator.url}. Set PLUGINLAB_PLUGIN_ID and PLUGINLAB_SECRET to use "
        "the real PluginLab."
    )
    return admin, emulator


def notebook_journal(job: str, emulator: EmulatorHandle | None) -> Path | None:
    """The journal a notebook's job uses: ``None`` (the plugin's default journal,
    ``$PLABDATA_HOME/journals/<plugin id>/<job>.journal``, kept, so a re-run resumes and
    never sends anything twice) for the real API; for the emulator, a scratch file removed
    when the kernel stops, since the emulator's state dies with the kernel too.

    Example:
        >>> apply_plan(admin, plan, journal=notebook_journal("members", emulator))
    """
    if emulator is None:
        return None
    scratch = _notebook_session.enter_context(tempfile.TemporaryDirectory(prefix="plabdata-"))
    return Path(scratch) / f"{job}.journal"


# --------------------------------------------------------------------------- the demo


@dataclass
class DemoResult:
    """What ``run_demo`` wrote and what went wrong.

    Attributes:
        out: the output folder.
        files: output name → path, in the order written.
        problems: one line per row that failed, was stale or is in doubt (empty: success).
        lines: the summary as printed (also in ``summary.txt``).
    """

    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


class _Report:
    """Prints the summary as it goes and keeps it for ``summary.txt``."""

    def __init__(self, result: DemoResult, echo: Echo) -> None:
        self.result = result
        self.echo = echo

    def line(self, text: str = "") -> None:
        self.result.lines.append(text)
        self.echo(text)

    def item(self, text: str) -> None:
        self.line(f"    {text}")

    def wrote(self, path: Path) -> str:
        self.result.files[path.name] = path
        return path.name

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.line()
        self.line(title)
        started = time.perf_counter()
        yield
        self.item(f"({time.perf_counter() - started:.1f} s)")


def run_demo(
    out: Path,
    *,
    seed: int = DEMO_SEED,
    real: bool = False,
    apply: bool = False,
    sheet: Path | None = None,
    events: Path | None = None,
    echo: Echo = print,
) -> DemoResult:
    """Run the three jobs end to end, then the member history, and write the outputs to
    ``out``.

    The history step resets the embedded emulator (the three jobs are done with it) and
    builds :data:`HISTORY_WEEKS` weeks of snapshots of a fresh base; against the real API
    it adds one snapshot of the base step 1 loaded to ``out/snapshots`` (each run one more).

    Args:
        out: the output folder (created).
        seed: demo members of the embedded emulator (the samples are made for 500).
        real: use the API the ``PLUGINLAB_*`` environment points at instead of the emulator.
        apply: with ``real``, really import the sheet and upload the events (otherwise a
            plan and a dry run only). The emulator always applies.
        sheet: the member sheet to import (default: the shipped sample ``members_import.xlsx``).
        events: the logs to backfill (default: three days of the shipped ``web_ui_events.parquet``).
        echo: where the summary lines go.

    Returns:
        The :class:`DemoResult`; ``problems`` is empty when every step succeeded.

    Example:
        >>> result = run_demo(Path("out"))
        >>> sorted(result.files)[:2]
        ['backfill_quota_impact.parquet', 'backfill_quota_impact.png']
    """
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)
    report = _Report(result, echo)
    writes = apply or not real
    emulator: EmulatorHandle | None = None
    with contextlib.ExitStack() as stack:
        if real:
            admin = stack.enter_context(connect())
            report.line(
                f"plabdata demo — PluginLab API at {admin.settings.auth_url}, plugin "
                f"{admin.settings.plugin_id}"
                + ("" if apply else " (read-only: add --apply to write)")
            )
            # The plugin's default journals, whatever --out: a re-run resumes, sending nothing
            # twice, and so does any later `plabdata members import` / `events backfill`.
            journals: Path | None = None
        else:
            emulator = stack.enter_context(running(seed=seed))
            admin = stack.enter_context(emulator_admin(emulator))
            report.line(f"plabdata demo — the embedded emulator ({seed:,} demo members)")
            # The emulator's state dies with it, so its journals must too.
            journals = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plabdata-")))
        report.line(f"outputs: {out}/")
        explored_at = pd.Timestamp.now(tz="UTC")
        members = _explore(admin, out, report)
        _import_members(
            admin, sheet or packaged_sample(SAMPLE_SHEET), members, out, journals, writes, report
        )
        _backfill(admin, events, out, journals, writes, report)
        _history(admin, emulator, members, explored_at, out, report)
    if real and writes:
        report.line()
        report.line(
            f"journals: {default_journal(admin.settings.plugin_id, 'members')} and "
            f"{default_journal(admin.settings.plugin_id, 'events')} — run again to resume; "
            "nothing is applied or sent twice"
        )
    report.line()
    report.line(
        "done: "
        + (
            "every step succeeded"
            if not result.problems
            else f"{len(result.problems)} problem(s) — see above"
        )
    )
    summary = out / "summary.txt"
    summary.write_text("\n".join(result.lines) + "\n", encoding="utf-8")
    result.files[summary.name] = summary
    return result


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _explore(admin: Admin, out: Path, report: _Report) -> pd.DataFrame:
    with report.step("1/4 Explore: load the whole member base"):
        base = load_member_base(admin, plan_names=PLAN_NAMES, progress=False)
        n = len(base)
        plans = base["plan"].value_counts()
        report.item(f"{n:,} members: " + ", ".join(f"{v:,} {k}" for k, v in plans.items()))
        methods = base["sign_in_method"].value_counts()
        report.item(
            "sign-in: " + ", ".join(f"{k} {_share(int(v), n)}" for k, v in methods.items() if v)
        )
        verified = int(base["is_verified"].fillna(False).sum())
        with_identity = int((base["n_identities"] > 0).sum())
        limited = base[~base["quota_is_unlimited"].fillna(False)]
        use = limited["quota_usage_count"] / limited["quota_usage_limit"]
        over = int(limited["quota_is_over_limit"].fillna(False).sum())
        near = int(((use >= NEAR_QUOTA) & ~limited["quota_is_over_limit"].fillna(False)).sum())
        report.item(
            f"verified {_share(verified, n)}, with an OAuth identity "
            f"{_share(with_identity, n)}; {over:,} over their quota, {near:,} within "
            f"{1 - NEAR_QUOTA:.0%} of it"
        )
        names = [
            report.wrote(export_frame(base, out / "members.parquet")),
            report.wrote(
                export_frame(
                    member_counts(base).reset_index(), out / "members_by_plan_and_method.csv"
                )
            ),
        ]
        png = out / "members_by_plan_and_method.png"
        figure_png(members_chart(base), png)
        names.append(report.wrote(png))
        report.item("→ " + ", ".join(names))
    return base


def _import_members(
    admin: Admin,
    sheet_path: Path,
    base: pd.DataFrame,
    out: Path,
    journals: Path | None,
    writes: bool,
    report: _Report,
) -> None:
    with report.step(f"2/4 Bulk import: bring the members in line with {sheet_path.name}"):
        sheet = read_member_sheet(sheet_path)
        issues = report.wrote(export_frame(sheet.issues, out / "import_issues.csv"))
        warned = len(sheet.warnings)
        report.item(
            f"sheet: {len(sheet.rows) + len(sheet.invalid_rows):,} rows, "
            f"{len(sheet.invalid_rows):,} with problems"
            + (f", {warned:,} with a warning (kept)" if warned else "")
            + f" (→ {issues})"
        )
        plugin_id = admin.settings.plugin_id
        columns = [
            c
            for c in base.columns
            if not str(c).startswith("quota_") and c not in ("plan", "providers", "n_identities")
        ]
        plan = plan_member_changes(sheet, base[columns], plugin_id=plugin_id)
        plan.save(out / "import_plan.json")
        c = plan.counts()
        report.item(
            f"plan: {c['create']:,} creates, {c['update']:,} updates, {c['delete']:,} "
            f"deletes, {c['unchanged']:,} unchanged, {c['unsupported']:,} the API "
            f"cannot apply (→ {report.wrote(out / 'import_plan.json')})"
        )
        results_path = out / "import_results.parquet"
        if not writes:
            export_frame(apply_plan(admin, plan, dry_run=True, progress=False), results_path)
            report.item(f"not applied (read-only) → {report.wrote(results_path)}")
            return
        journal = None if journals is None else journals / "members.journal"
        results = apply_plan(admin, plan, journal=journal, progress=False)
        export_frame(results, results_path)
        statuses = results.loc[results["op"].isin(["create", "update", "delete"]), "status"]
        counts = statuses.value_counts()
        report.item(
            "applied: "
            + (", ".join(f"{v:,} {k}" for k, v in counts.items()) or "nothing to do")
            + f" (→ {report.wrote(results_path)})"
        )
        bad = results[results["status"].isin(MEMBER_FAILURES)]
        report.result.problems += [
            f"import row {r.row} ({r.email}): {r.status}: {r.error}" for r in bad.itertuples()
        ]
        again = plan_member_changes(sheet, load_members(admin, progress=False), plugin_id=plugin_id)
        c = again.counts()
        report.item(
            "re-plan: "
            + (
                "nothing to do"
                if again.is_empty
                else f"{c['create']} creates, {c['update']} updates left"
            )
            + f" ({c['unchanged']:,} rows already match)"
        )
        if not again.is_empty:
            report.result.problems.append("the re-plan after applying is not empty")


def _backfill(
    admin: Admin,
    events: Path | None,
    out: Path,
    journals: Path | None,
    writes: bool,
    report: _Report,
) -> None:
    logs = events or packaged_sample(SAMPLE_EVENTS)
    since, until = (None, None) if events is not None else SAMPLE_WINDOW
    window = f" from {since} to {until}" if since else ""
    with report.step(f"3/4 Backfill: usage events from {logs.name}{window}"):
        journal = None if journals is None else journals / "events.journal"
        members = load_members(admin, progress=False)
        rejected = out / f"backfill_rejected{'.csv' if logs.suffix == '.csv' else '.parquet'}"
        preview = backfill_events(
            admin,
            logs,
            journal=journal,
            dry_run=True,
            since=since,
            until=until,
            members=members,
            load_quota=True,
            progress=False,
            rejects_path=rejected,
        )
        counts = preview.counts
        line = (
            f"preview: {counts.get(EventOutcome.WOULD_SEND, 0):,} to send, "
            f"{counts.get(EventOutcome.INVALID, 0):,} invalid"
        )
        if rejected.exists():
            line += f" (→ {report.wrote(rejected)})"
        words = {
            EventOutcome.ALREADY_DONE: "already done",
            EventOutcome.IN_DOUBT: "in doubt",
            EventOutcome.FILTERED: "outside the window",
        }
        extra = [f"{counts[s]:,} {w}" for s, w in words.items() if counts.get(s)]
        report.item(line + (", " + ", ".join(extra) if extra else ""))
        impact = preview.quota if preview.quota is not None else pd.DataFrame()
        if len(impact):
            impact = impact.merge(members[["member_id", "email"]], on="member_id", how="left")
            pushed = int(impact["pushed_over_limit"].sum())
            table = report.wrote(export_frame(impact, out / "backfill_quota_impact.parquet"))
            figure_png(quota_impact_chart(impact), out / "backfill_quota_impact.png")
            chart = report.wrote(out / "backfill_quota_impact.png")
            report.item(
                f"quota: {len(impact):,} members gain events, {pushed:,} would go over "
                f"their limit (→ {table}, {chart})"
            )
        if not writes:
            report.item("not uploaded (read-only)")
            return
        rows = out / "backfill_rows.parquet"
        done = backfill_events(
            admin,
            logs,
            journal=journal,
            since=since,
            until=until,
            members=members,
            progress=False,
            report_path=rows,
        )
        report.item(
            f"backfill: {done.counts.get(EventOutcome.SENT, 0):,} sent, "
            f"{done.counts.get(EventOutcome.FAILED, 0):,} failed, "
            f"{done.counts.get(EventOutcome.IN_DOUBT, 0):,} in doubt in {done.elapsed_s:.1f} s "
            f"(→ {report.wrote(rows)})"
        )
        for status in (EventOutcome.FAILED, EventOutcome.IN_DOUBT):
            if done.counts.get(status):
                report.result.problems.append(f"backfill: {done.counts[status]:,} rows {status}")
        again = backfill_events(
            admin, logs, journal=journal, since=since, until=until, members=members, progress=False
        )
        sent = again.counts.get(EventOutcome.SENT, 0)
        report.item(
            f"re-run: {sent:,} sent, {again.counts.get(EventOutcome.ALREADY_DONE, 0):,} already "
            "done" + (" — nothing is sent twice" if not sent else "")
        )
        if sent:
            report.result.problems.append(f"the backfill re-run sent {sent:,} events again")


def _history(
    admin: Admin,
    emulator: EmulatorHandle | None,
    base: pd.DataFrame,
    explored_at: pd.Timestamp,
    out: Path,
    report: _Report,
) -> None:
    store = out / "snapshots"
    html = out / "member_history.html"
    if emulator is None:
        with report.step("4/4 History: a snapshot of the member base, and the report"):
            # The base step 1 loaded: loading it again would cost the real API as much again.
            result = write_snapshot(
                base,
                store,
                at=explored_at,
                plugin_id=admin.settings.plugin_id,
                plan_names=PLAN_NAMES,
            )
            write_report(store, html)
            report.item(
                f"snapshot {result.snapshot} of {result.members:,} members, "
                f"{result.snapshots:,} in the store (→ {report.wrote(store)}/, "
                f"{report.wrote(html)}; run again, or `plabdata members snapshot`, for more)"
            )
        return
    with report.step(
        f"4/4 History: {HISTORY_WEEKS} weeks of churn on {HISTORY_MEMBERS} fresh demo members"
    ):
        if (store / METADATA_FILE).is_file():
            shutil.rmtree(store)  # the previous run's: another emulator, another plugin id
        history = build_history(
            emulator,
            admin,
            store,
            weeks=HISTORY_WEEKS,
            members=HISTORY_MEMBERS,
            plan_names=PLAN_NAMES,
        )
        write_report(store, html)
        first, last = history.snapshots[0], history.snapshots[-1]
        joined = sum(week.get("signups", 0) for week in history.churn)
        left = sum(week.get("deletions", 0) for week in history.churn)
        report.item(
            f"{len(history.snapshots)} weekly snapshots, {first.at:%Y-%m-%d} → "
            f"{last.at:%Y-%m-%d}: {first.members:,} → {last.members:,} members (+{joined:,} "
            f"joined, −{left:,} left) (→ {report.wrote(store)}/, {report.wrote(html)})"
        )
