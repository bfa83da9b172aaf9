"""The member-history report: one self-contained HTML file for people who do not open Jupyter.

:func:`write_report` reads a snapshot store and writes today's member base (the latest
snapshot) and its history — plans over time, joins and departures, sign-in methods, cohort
retention, plan transitions, the latest changes — as one HTML file: charts are PNGs embedded
as ``data:`` URIs, the style is inline, there is no script and no external resource, so it
opens the same from a mail attachment, a shared drive or a browser with no network. Every
piece of member data (emails, names, metadata) is HTML-escaped.

    >>> write_report(store, "report.html")                         # doctest: +SKIP
    PosixPath('report.html')
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path

import pandas as pd

from plabdata.members._history import member_changes
from plabdata.members._store import METADATA_FILE, list_snapshots, read_snapshot
from plabdata.members._timeline import cohort_retention, member_timeline, plan_transitions
from plabdata.widgets.charts import figure_png, members_chart
from plabdata.widgets.history_charts import (
    growth_chart,
    plan_transitions_chart,
    plans_chart,
    retention_chart,
    sign_in_methods_chart,
)

__all__ = ["report_html", "write_report"]

#: Rows of the latest changes shown (the rest are counted).
RECENT_CHANGES = 40
_STYLE = """
body {font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2933; margin: 0; background: #f5f7fa}
main {max-width: 1000px; margin: 0 auto; padding: 24px 28px 48px; background: #fff}
h1 {font-size: 26px; margin: 0 0 4px} h2 {font-size: 18px; margin: 32px 0 8px;
  border-bottom: 1px solid #e4e7eb; padding-bottom: 4px}
p.lead {color: #52606d; margin: 0 0 18px} p.note {color: #7b8794; font-size: 12px}
.tiles {display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0}
.tile {flex: 1 1 150px; border: 1px solid #e4e7eb; border-radius: 6px; padding: 10px 12px}
.tile b {display: block; font-size: 22px} .tile span {color: #52606d; font-size: 12px}
.up {color: #1f7a6d} .down {color: #c0392b}
img {max-width: 100%; height: auto; display: block; margin: 8px 0}
table {border-collapse: collapse; font-size: 12px; margin: 8px 0}
th, td {padding: 3px 10px; border-bottom: 1px solid #e4e7eb; text-align: left}
th {border-bottom: 2px solid #9aa5b1} td.n {text-align: right; font-variant-numeric: tabular-nums}
code {background: #f0f4f8; padding: 1px 4px; border-radius: 3px; font-size: 12px}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, *, index: bool = True) -> str:
    """An escaped table; numbers right-aligned, missing values blank."""
    head = ([_e(frame.index.name or "")] if index else []) + [_e(c) for c in frame.columns]
    rows = []
    for label, row in frame.iterrows():
        cells = [f"<th>{_e(label)}</th>"] if index else []
        for value in row:
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                cells.append("<td></td>")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
                cells.append(f'<td class="n">{text}</td>')
            else:
                cells.append(f"<td>{_e(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _tile(value: str, label: str, delta: str = "") -> str:
    return f'<div class="tile"><b>{value}</b><span>{_e(label)}</span>{delta}</div>'


def _delta(now: float, before: float | None, what: str) -> str:
    if before is None:
        return ""
    change = now - before
    css = "up" if change > 0 else "down" if change < 0 else ""
    return f'<br><span class="{css}">{change:+,.0f} {_e(what)}</span>'


def _plugin(store: Path) -> str | None:
    try:
        meta = json.loads((store / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    plugin = meta.get("pluginId") if isinstance(meta, dict) else None
    return str(plugin) if plugin else None


def report_html(store: str | PathLike[str], *, title: str | None = None) -> str:
    """The report of ``store`` as one HTML document (see :func:`write_report`).

    Raises:
        ConfigError: ``store`` is not a snapshot store, or holds no snapshot.

    Example:
        >>> html_text = report_html(store)
    """
    folder = Path(store)
    snapshots = list_snapshots(folder)
    today = read_snapshot(folder, -1)
    timeline = member_timeline(folder)
    changes = member_changes(folder)
    plugin = _plugin(folder)
    latest = timeline.iloc[-1]
    previous = timeline.iloc[-2] if len(timeline) > 1 else None
    first_at, last_at = timeline.index[0], timeline.index[-1]
    heading = title or "Member base" + (f" of {plugin}" if plugin else "")
    parts = [
        f"<h1>{_e(heading)}</h1>",
        f'<p class="lead">As of {last_at:%d %B %Y, %H:%M} UTC — {len(snapshots):,} '
        f"snapshot{'s' if len(snapshots) != 1 else ''} since {first_at:%d %B %Y}.</p>",
        _tiles(latest, previous),
        "<h2>Today's member base</h2>",
        _img(figure_png(members_chart(today)), "members per sign-in method and plan"),
        _table(_plan_table(today, latest)),
    ]
    if len(timeline) > 1:
        retention = cohort_retention(folder, min_members=5)
        transitions = plan_transitions(folder, 0, -1)
        parts += [
            "<h2>Plans over time</h2>",
            _img(figure_png(plans_chart(timeline)), "members per plan over time"),
            "<h2>Joining and leaving</h2>",
            _img(figure_png(growth_chart(timeline)), "members joining and leaving"),
            "<h2>How members sign in</h2>",
            _img(figure_png(sign_in_methods_chart(timeline)), "sign-in methods over time"),
            "<h2>Cohort retention</h2>",
            '<p class="note">Each row is a signup month; each column, how many snapshots '
            "after a member was first seen; each cell, the share still a member "
            "(blank: fewer than 5 members to measure).</p>",
            _img(figure_png(retention_chart(retention)), "cohort retention heatmap"),
            f"<h2>Plan transitions since {first_at:%d %B %Y}</h2>",
            _img(figure_png(plan_transitions_chart(transitions)), "plan transition matrix"),
            "<h2>What changed, interval by interval</h2>",
            _table(_change_counts(changes)),
            f"<h2>The latest changes ({timeline.index[-2]:%d %b} → {last_at:%d %b %Y})</h2>",
            _recent(changes),
        ]
    else:
        parts.append(
            '<p class="note">One snapshot so far: take another (<code>plabdata members '
            "snapshot</code>, e.g. from cron) to see the history.</p>"
        )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(
        f'<p class="note">Generated by plabdata on {generated} from the snapshot store '
        f"<code>{_e(folder)}</code>. Any Parquet reader opens it, e.g. DuckDB: "
        "<code>SELECT snapshot, plan, count(*) FROM read_parquet('snapshot=*/*.parquet', "
        "hive_partitioning = true, union_by_name = true) GROUP BY ALL</code>.</p>"
    )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(heading)}</title><style>{_STYLE}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def _tiles(latest: pd.Series, previous: pd.Series | None) -> str:
    def before(name: str) -> float | None:
        return None if previous is None else float(previous[name])

    members = float(latest["members"])
    since = "since the previous snapshot"
    tiles = [
        _tile(f"{members:,.0f}", "members", _delta(members, before("members"), since)),
        _tile(f"{latest['verified_share']:.0%}", "verified their email"),
        _tile(f"{float(latest['with_usage']):,.0f}", "used the plugin this quota interval"),
        _tile(f"{float(latest['over_quota']):,.0f}", "over their quota"),
    ]
    if previous is not None:
        tiles.append(
            _tile(
                f"+{float(latest['joined']):,.0f} / −{float(latest['left']):,.0f}",
                "joined / left " + since,
            )
        )
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def _plan_table(today: pd.DataFrame, latest: pd.Series) -> pd.DataFrame:
    plans = [c for c in latest.index if str(c).startswith("plan.")]
    frame = pd.DataFrame(
        {"members": [float(latest[c]) for c in plans]},
        index=pd.Index([str(c).removeprefix("plan.") for c in plans], name="plan"),
    )
    total = float(latest["members"]) or 1.0
    frame["share"] = (frame["members"] / total * 100).round(1).astype(str) + " %"
    if "quota_is_over_limit" in today.columns:
        over = today.groupby(today["plan"].astype(str))["quota_is_over_limit"].sum()
        frame["over quota"] = [float(over.get(p, 0)) for p in frame.index]
    return frame


def _change_counts(changes: pd.DataFrame) -> pd.DataFrame:
    if changes.empty:
        return pd.DataFrame(index=pd.Index([], name="interval ending"))
    kinds = changes["change"].astype(str)
    kinds = kinds.where(changes["change"] != "plan", "plan " + changes["direction"].astype(str))
    counts = pd.crosstab(changes["after_at"].dt.strftime("%Y-%m-%d %H:%M"), kinds)
    counts.index.name = "interval ending"
    counts.columns.name = None
    order = [c for c in ("joined", "left", "plan upgrade", "plan downgrade") if c in counts]
    return counts[order + [c for c in counts.columns if c not in order]].iloc[::-1]


def _recent(changes: pd.DataFrame) -> str:
    last = changes[changes["after_at"] == changes["after_at"].max()]
    last = last.sort_values(["change", "email"], kind="stable")
    shown = last.head(RECENT_CHANGES)[["email", "change", "before", "after", "direction"]]
    more = len(last) - len(shown)
    note = f'<p class="note">… and {more:,} more in this interval.</p>' if more > 0 else ""
    return _table(shown.astype(object), index=False) + note


def write_report(
    store: str | PathLike[str], out: str | PathLike[str], *, title: str | None = None
) -> Path:
    """Write the member-history report of ``store`` to ``out`` (one self-contained HTML file).

    Args:
        store: a snapshot store (see :func:`plabdata.snapshot_member_base`).
        out: the HTML file to write (its folder is created).
        title: the page title (default: ``Member base of <plugin id>``).

    Raises:
        ConfigError: ``store`` is not a snapshot store, or holds no snapshot.

    Example:
        >>> write_report(default_snapshot_store(admin.settings.plugin_id), "report.html")
        PosixPath('report.html')
    """
    target = Path(out)
    text = report_html(store, title=title)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.tmp")
    scratch.write_text(text, encoding="utf-8")
    scratch.replace(target)
    return target
