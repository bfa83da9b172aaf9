"""Charts of the member base over time, for a deck: plans, growth, sign-in methods, cohort
retention and plan transitions. Bare matplotlib ``Figure`` objects, as in :mod:`.charts`.

Each takes the frame its query returns (:func:`plabdata.member_timeline`,
:func:`plabdata.cohort_retention`, :func:`plabdata.plan_transitions`).

    >>> timeline = member_timeline(store)
    >>> plans_chart(timeline).savefig("plans.png")
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from plabdata.widgets.charts import _label

__all__ = [
    "growth_chart",
    "plan_transitions_chart",
    "plans_chart",
    "retention_chart",
    "sign_in_methods_chart",
]

#: One colour per plan position (cheapest first: matplotlib's first colours, as the member
#: chart's bars have them) and per sign-in method, the same in every chart.
PLAN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
METHOD_COLOURS = {
    "email-and-password": "#3b82c4",
    "magic-email-code": "#8ecae6",
    "google": "#e4572e",
    "github": "#333333",
    "gitlab": "#e4a11b",
    "microsoft": "#2a9d8f",
}
_SIZE = (8.0, 3.4)


def _figure(size: tuple[float, float], title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return fig, ax


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _dates(timeline: pd.DataFrame) -> np.ndarray:
    index = pd.DatetimeIndex(timeline.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_pydatetime()


def _time_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _columns(timeline: pd.DataFrame, prefix: str) -> pd.DataFrame:
    picked = timeline[[c for c in timeline.columns if str(c).startswith(prefix)]]
    picked = picked.astype("float64").fillna(0.0)
    picked.columns = [str(c).removeprefix(prefix) for c in picked.columns]
    return picked.loc[:, picked.sum() > 0]


def plans_chart(timeline: pd.DataFrame, *, size: tuple[float, float] = _SIZE) -> Figure:
    """Members per plan over time, stacked (plans by limit, cheapest at the bottom).

    Example:
        >>> plans_chart(member_timeline(store)).savefig("plans.png")
    """
    plans = _columns(timeline, "plan.")
    last = int(timeline["members"].iloc[-1]) if len(timeline) else 0
    fig, ax = _figure(size, f"Members per plan over time ({last:,} now)")
    if plans.empty:
        _empty(ax, "no snapshots yet")
        return fig
    colours = [PLAN_COLOURS[i % len(PLAN_COLOURS)] for i in range(plans.shape[1])]
    labels = [_label(p) for p in plans.columns]
    ax.stackplot(_dates(plans), plans.to_numpy().T, labels=labels, colors=colours, alpha=0.9)
    ax.set_ylabel("members")
    ax.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        names[::-1],
        title="plan",
        frameon=False,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
    )
    _time_axis(ax)
    return fig


def growth_chart(timeline: pd.DataFrame, *, size: tuple[float, float] = _SIZE) -> Figure:
    """Members who joined (up) and left (down) between snapshots, with the net change.

    Example:
        >>> growth_chart(member_timeline(store)).savefig("growth.png")
    """
    fig, ax = _figure(size, "Members joining and leaving, per snapshot interval")
    if len(timeline) < 2:
        _empty(ax, "one snapshot so far: growth shows from the second")
        return fig
    moves = timeline.iloc[1:]
    dates = _dates(moves)
    width = np.median(np.diff(_dates(timeline)).astype("timedelta64[s]").astype(float)) / 86_400
    joined = moves["joined"].astype("float64").to_numpy()
    left = moves["left"].astype("float64").to_numpy()
    ax.bar(dates, joined, width=width * 0.7, color="#2a9d8f", label="joined")
    ax.bar(dates, -left, width=width * 0.7, color="#e4572e", label="left")
    ax.plot(dates, joined - left, color="black", marker="o", markersize=3, linewidth=1, label="net")
    ax.axhline(0, color="#666666", linewidth=0.8)
    ax.set_ylabel("members")
    ax.legend(frameon=False, loc="upper left", fontsize=8, ncols=3)
    _time_axis(ax)
    return fig


def sign_in_methods_chart(timeline: pd.DataFrame, *, size: tuple[float, float] = _SIZE) -> Figure:
    """Each sign-in method's share of the members over time (one line per method).

    Example:
        >>> sign_in_methods_chart(member_timeline(store)).savefig("sign_in.png")
    """
    methods = _columns(timeline, "sign_in.")
    fig, ax = _figure(size, "How members sign in, over time (share of members)")
    if methods.empty:
        _empty(ax, "no snapshots yet")
        return fig
    shares = methods.div(timeline["members"].astype("float64").replace(0, np.nan), axis=0) * 100
    dates = _dates(shares)
    for method in shares.columns:
        ax.plot(
            dates,
            shares[method].to_numpy(),
            label=_label(method),
            color=METHOD_COLOURS.get(method),
            marker="o" if len(shares) < 20 else None,
            markersize=3,
            linewidth=1.6,
        )
    ax.set_ylabel("% of members")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    _time_axis(ax)
    return fig


def retention_chart(
    retention: pd.DataFrame, *, cohorts: int = 12, size: tuple[float, float] = (8.0, 4.2)
) -> Figure:
    """Cohort retention as a heatmap: signup months (rows) by snapshots later (columns).

    Args:
        retention: :func:`plabdata.cohort_retention` (shares; ask it for ``min_members=5``
            to blank the cells too small to read as a share).
        cohorts: the most recent signup months shown.
        size: figure size in inches.

    Example:
        >>> retention_chart(cohort_retention(store, min_members=5)).savefig("cohorts.png")
    """
    fig, ax = _figure(size, "Cohort retention: share of each signup month still a member")
    shown = retention.tail(cohorts)
    if shown.empty:
        _empty(ax, "no snapshots yet")
        return fig
    values = shown.astype("float64").to_numpy()
    image = ax.imshow(values * 100, aspect="auto", cmap="YlGnBu", vmin=0, vmax=100)
    ax.set_yticks(range(len(shown)), [_label(c) for c in shown.index], fontsize=8)
    ax.set_xticks(range(values.shape[1]), [str(k) for k in shown.columns], fontsize=8)
    ax.set_xlabel("snapshots after the member was first seen")
    ax.set_ylabel("signup month")
    if values.size <= 400:
        for (row, col), value in np.ndenumerate(values):
            if not np.isnan(value):
                ax.text(
                    col,
                    row,
                    f"{value:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if value > 0.6 else "black",
                )
    fig.colorbar(image, ax=ax, label="% still members", shrink=0.85)
    return fig


def plan_transitions_chart(
    matrix: pd.DataFrame, *, size: tuple[float, float] = (6.4, 4.0)
) -> Figure:
    """The plan-transition matrix as an annotated heatmap (members moving from row to column).

    Example:
        >>> plan_transitions_chart(plan_transitions(store)).savefig("transitions.png")
    """
    fig, ax = _figure(size, "Plan transitions (members)")
    if matrix.empty:
        _empty(ax, "no snapshots yet")
        return fig
    values = matrix.astype("float64").to_numpy()
    stay = np.zeros_like(values, dtype=bool)
    for i, plan in enumerate(matrix.index):
        if plan in matrix.columns:
            stay[i, list(matrix.columns).index(plan)] = True
    # Staying put dwarfs every move: colour the moves, grey the diagonal.
    moves = np.where(stay, np.nan, values)
    top = float(np.nanmax(moves)) if np.isfinite(np.nanmax(moves, initial=np.nan)) else 1.0
    top = max(top, 1.0)
    ax.imshow(moves, cmap="Oranges", vmin=0, vmax=top, aspect="auto")
    ax.imshow(np.where(stay, 1.0, np.nan), cmap="Greys", vmin=0, vmax=4, alpha=0.9, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [_label(c) for c in matrix.columns], fontsize=8)
    ax.set_yticks(range(values.shape[0]), [_label(c) for c in matrix.index], fontsize=8)
    ax.set_xlabel(_label(matrix.columns.name or "after"))
    ax.set_ylabel(_label(matrix.index.name or "before"))
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    impossible = (len(values) - 1, values.shape[1] - 1)  # joined and left in one interval
    for (row, col), value in np.ndenumerate(values):
        if (row, col) == impossible and value == 0:
            continue
        dark = not stay[row, col] and value > 0.6 * top
        colour = "white" if dark else "black"
        ax.text(col, row, f"{value:,.0f}", ha="center", va="center", fontsize=9, color=colour)
    return fig
