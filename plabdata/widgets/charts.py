"""The charts the widgets and the demo draw: pandas ``.plot`` on a bare matplotlib ``Figure``.

A bare ``Figure`` (not ``pyplot``) needs no GUI backend and no global state, so the same code
draws inside a widget callback, in a worker thread, in a headless test and in ``plabdata demo``.

    >>> fig = members_chart(base)
    >>> fig.savefig("members.png")
"""

from __future__ import annotations

import base64
import html
import io
from os import PathLike

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["figure_png", "members_chart", "quota_impact_chart"]


def members_chart(
    members: pd.DataFrame, *, title: str | None = None, size: tuple[float, float] = (7.0, 3.6)
) -> Figure:
    """Members per sign-in method, stacked by plan when the frame has a ``plan`` column.

    Args:
        members: a ``load_members`` or ``load_member_base`` frame (any subset of it).
        title: the chart's title (default: how many members it shows).
        size: figure size in inches.

    Example:
        >>> members_chart(load_member_base(admin)).savefig("members.png")
    """
    counts = member_counts(members)
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    if counts.empty:
        ax.text(0.5, 0.5, "no members", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    counts = counts.rename(index=_label, columns=_label)
    counts.plot.barh(ax=ax, stacked=True, width=0.75, legend=counts.shape[1] > 1)
    ax.invert_yaxis()  # the most common method on top
    ax.set_xlabel("members")
    ax.set_ylabel("")
    total = int(counts.to_numpy().sum())
    fig.suptitle(
        title
        or f"{total:,} members per sign-in method"
        + (" and plan" if "plan" in members.columns else ""),
        x=0.01,
        ha="left",
        fontsize=11,
    )
    if counts.shape[1] > 1:
        ax.legend(title="plan", frameon=False, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def member_counts(members: pd.DataFrame) -> pd.DataFrame:
    """Members per sign-in method (rows, busiest first) and plan (columns; one ``members``
    column when the frame has no plan). Methods nobody uses are left out."""
    if members.empty:
        return pd.DataFrame()
    methods = members["sign_in_method"].astype(str)
    if "plan" in members.columns:
        plans = members["plan"].astype(str)
        counts = pd.crosstab(methods, plans)
        ordered = [p for p in _plan_order(members["plan"]) if p in counts.columns]
        counts = counts[ordered]
    else:
        counts = methods.value_counts().rename("members").to_frame()
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    counts.index.name = "sign-in method"
    counts.columns.name = "plan"
    return counts


def _label(text: object) -> str:
    """A label from the data (an email, a plan name) drawn as written: matplotlib reads
    ``$…$`` as math, and an email such as ``a$\\frac{b@x.io`` would stop the drawing."""
    return str(text).replace("$", r"\$")


def _plan_order(plans: pd.Series) -> list[str]:
    if isinstance(plans.dtype, pd.CategoricalDtype):
        return [str(c) for c in plans.cat.categories]
    return sorted(plans.dropna().astype(str).unique())


def quota_impact_chart(
    impact: pd.DataFrame, *, top: int = 15, size: tuple[float, float] = (7.0, 3.6)
) -> Figure:
    """Usage before and after a backfill for the members it affects most, against their limit.

    Args:
        impact: a :func:`plabdata.quota_impact` frame (``member_id``,
            ``usage_count``, ``usage_after``, ``usage_limit``, ``is_unlimited``,
            ``pushed_over_limit``); an ``email`` column, when present, labels the bars.
        top: how many members to show (those pushed over their limit first).
        size: figure size in inches.

    Example:
        >>> quota_impact_chart(preview.quota_impact).savefig("quota.png")
    """
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    limited = impact[~impact["is_unlimited"].astype("boolean").fillna(False)]
    if limited.empty:
        ax.text(
            0.5,
            0.5,
            "no member with a quota limit is affected",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return fig
    shown = limited.head(top)
    labels = shown["email"] if "email" in shown.columns else shown["member_id"].str[:12]
    used = shown["usage_count"].astype("float64")
    added = shown["usage_after"].astype("float64") - used
    limit = shown["usage_limit"].astype("float64")
    # As a share of each member's own limit, so free (100) and pro (5,000) fit one axis.
    frame = pd.DataFrame(
        {
            "used before": (used / limit * 100).to_numpy(),
            "backfilled": (added / limit * 100).to_numpy(),
        },
        index=pd.Index([_label(v) for v in labels.astype(str)]),
    )
    frame.plot.barh(ax=ax, stacked=True, width=0.75, color=["#9aa5b1", "#e4572e"])
    ax.axvline(100, color="black", linewidth=1, linestyle="--", label="limit")
    after = shown["usage_after"].astype("float64")
    for y, (share, total, cap) in enumerate(zip(after / limit * 100, after, limit, strict=True)):
        ax.text(share, y, f" {total:,.0f} / {cap:,.0f}", va="center", fontsize=7)
    ax.set_xlim(0, max(float((after / limit * 100).max()) * 1.18, 110))
    ax.invert_yaxis()
    ax.set_xlabel("% of the member's quota (labels: usage after / limit)")
    ax.set_ylabel("")
    pushed = int(impact["pushed_over_limit"].sum())
    fig.suptitle(
        f"Quota after the backfill: {pushed:,} member(s) pushed over their limit"
        + (f" (top {len(shown)} of {len(limited):,} shown)" if len(limited) > len(shown) else ""),
        x=0.01,
        ha="left",
        fontsize=11,
    )
    ax.legend(frameon=False, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def figure_png(fig: Figure, path: str | PathLike[str] | None = None, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (also written to ``path`` when given).

    Example:
        >>> png = figure_png(members_chart(base), "members.png")
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        with open(path, "wb") as handle:
            handle.write(data)
    return data


def png_img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inlined (for the HTML fallbacks)."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}"/>'
