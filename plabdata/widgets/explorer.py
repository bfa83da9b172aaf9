"""``member_explorer``: filter the member base by plan, sign-in method, verification, signup
date and email, with a live count, a chart and the filtered table.

    >>> explorer = member_explorer(load_member_base(admin, plan_names={100: "free"}))
    >>> explorer                      # the last line of a notebook cell shows it
    >>> explorer.filtered             # the rows the filters keep, as a DataFrame
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd

from plabdata.widgets import _html
from plabdata.widgets.charts import figure_png, members_chart, png_img_tag

__all__ = ["MemberExplorer", "filter_members", "member_explorer"]

#: Columns the table shows first when the frame has them.
TABLE_COLUMNS = (
    "email",
    "name",
    "plan",
    "sign_in_method",
    "is_verified",
    "providers",
    "quota_usage_count",
    "quota_usage_limit",
    "created_at",
    "member_id",
)
VERIFIED_CHOICES = (("any", "any"), ("verified", "yes"), ("not verified", "no"))
LABEL = {"description_width": "70px"}


def filter_members(
    members: pd.DataFrame,
    *,
    plans: Sequence[str] | None = None,
    sign_in_methods: Sequence[str] | None = None,
    verified: bool | None = None,
    signed_up_from: dt.date | None = None,
    signed_up_to: dt.date | None = None,
    email_contains: str = "",
) -> pd.DataFrame:
    """The members matching every filter given (None: that filter is off). Pure.

    ``signed_up_to`` is inclusive (the whole day, UTC); ``email_contains`` ignores case.

    Example:
        >>> filter_members(base, plans=["pro"], verified=False)
    """
    keep = pd.Series(True, index=members.index)
    if plans is not None and "plan" in members.columns:
        keep &= members["plan"].astype(str).isin(list(plans))
    if sign_in_methods is not None:
        keep &= members["sign_in_method"].astype(str).isin(list(sign_in_methods))
    if verified is not None:
        keep &= members["is_verified"].fillna(False).astype(bool) == verified
    created = members["created_at"]
    if signed_up_from is not None:
        keep &= created >= pd.Timestamp(signed_up_from, tz="UTC")
    if signed_up_to is not None:
        keep &= created < pd.Timestamp(signed_up_to, tz="UTC") + pd.Timedelta(days=1)
    if email_contains.strip():
        needle = email_contains.strip().lower()
        keep &= members["email"].str.lower().str.contains(needle, regex=False).fillna(False)
    return members[keep.to_numpy(dtype=bool)]


class MemberExplorer(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The explorer widget. Build it with :func:`member_explorer`.

    The filter controls are attributes, so code (and tests) can set them like a person would:
    ``plan``, ``sign_in_method`` (``SelectMultiple``; None when the frame has no ``plan``
    column), ``verified`` (``ToggleButtons``: any / yes / no), ``signed_up_from`` /
    ``signed_up_to`` (``DatePicker``), ``email_contains`` (``Text``). ``count``, ``chart``
    and ``table`` are the outputs; :attr:`filtered` is the filtered DataFrame.
    """

    def __init__(self, members: pd.DataFrame, *, rows: int = 15) -> None:
        self.members = members
        self.rows = rows
        self.plan: widgets.SelectMultiple | None = None
        if "plan" in members.columns:
            plans = _options(members["plan"])
            self.plan = widgets.SelectMultiple(
                options=plans,
                value=plans,
                rows=min(len(plans), 5),
                description="plan",
                style=LABEL,
            )
        methods = _options(members["sign_in_method"])
        self.sign_in_method = widgets.SelectMultiple(
            options=methods,
            value=methods,
            rows=min(len(methods), 6),
            description="sign-in",
            style=LABEL,
        )
        self.verified = widgets.ToggleButtons(
            options=VERIFIED_CHOICES,
            value="any",
            description="verified",
            style={**LABEL, "button_width": "90px"},
        )
        first, last = _date_range(members)
        self.signed_up_from = widgets.DatePicker(value=first, description="signed up", style=LABEL)
        self.signed_up_to = widgets.DatePicker(value=last, description="until", style=LABEL)
        self.email_contains = widgets.Text(
            placeholder="part of an email", description="email", style=LABEL
        )
        self.reset_button = widgets.Button(description="Reset filters", icon="undo")
        self.count = widgets.HTML()
        self.chart = widgets.Image(format="png", layout=widgets.Layout(max_width="560px"))
        self.table = widgets.HTML()

        controls: list[widgets.Widget] = [self.sign_in_method, self.verified]
        if self.plan is not None:
            controls.insert(0, self.plan)
        left = widgets.VBox(controls)
        right = widgets.VBox(
            [self.signed_up_from, self.signed_up_to, self.email_contains, self.reset_button]
        )
        super().__init__([widgets.HBox([left, right]), self.count, self.chart, self.table])

        for control in self._controls():
            control.observe(self._on_change, names="value")
        self.reset_button.on_click(lambda _button: self.reset())
        self._filtered = members
        self._paused = False
        self.refresh()

    # -- state ------------------------------------------------------------------------------

    def _controls(self) -> list[widgets.ValueWidget]:
        found: list[Any] = [
            self.plan,
            self.sign_in_method,
            self.verified,
            self.signed_up_from,
            self.signed_up_to,
            self.email_contains,
        ]
        return [c for c in found if c is not None]

    @property
    def filtered(self) -> pd.DataFrame:
        """The members the filters keep (a copy; the widget's own state is not touched)."""
        return self._filtered.copy()

    def filters(self) -> dict[str, Any]:
        """The filters in force, as :func:`filter_members` keyword arguments."""
        verified = {"any": None, "yes": True, "no": False}[self.verified.value]
        every_method = len(self.sign_in_method.value) == len(self.sign_in_method.options)
        out: dict[str, Any] = {
            "sign_in_methods": None if every_method else list(self.sign_in_method.value),
            "verified": verified,
            "signed_up_from": self.signed_up_from.value,
            "signed_up_to": self.signed_up_to.value,
            "email_contains": self.email_contains.value,
        }
        if self.plan is not None and len(self.plan.value) != len(self.plan.options):
            out["plans"] = list(self.plan.value)
        return out

    def reset(self) -> None:
        """Every filter back to "all members"."""
        self._paused = True  # one redraw at the end, not one per control
        try:
            if self.plan is not None:
                self.plan.value = tuple(self.plan.options)
            self.sign_in_method.value = tuple(self.sign_in_method.options)
            self.verified.value = "any"
            self.signed_up_from.value, self.signed_up_to.value = _date_range(self.members)
            self.email_contains.value = ""
        finally:
            self._paused = False
        self.refresh()

    def _on_change(self, _change: Any) -> None:
        if not self._paused:
            self.refresh()

    def refresh(self) -> None:
        """Re-apply the filters and redraw the count, the chart and the table."""
        self._filtered = filter_members(self.members, **self.filters())
        self.count.value = f"<b>{len(self._filtered):,}</b> of {len(self.members):,} members" + (
            f" ({len(self._filtered) / len(self.members):.0%})" if len(self.members) else ""
        )
        self.chart.value = figure_png(members_chart(self._filtered, size=(6.0, 2.6)), dpi=90)
        self.table.value = _html.wrap(
            _html.table(
                self._table_frame(), limit=self.rows, empty="no member matches these filters"
            )
        )

    def _table_frame(self) -> pd.DataFrame:
        columns = [c for c in TABLE_COLUMNS if c in self._filtered.columns]
        newest = self._filtered.sort_values("created_at", ascending=False)[columns]
        return newest.assign(created_at=newest["created_at"].dt.strftime("%Y-%m-%d"))

    # -- text and HTML outside Jupyter -------------------------------------------------------

    def describe_filters(self) -> str:
        """The filters in force, in words (``all members`` when none)."""
        parts = []
        filters = self.filters()
        if filters.get("plans") is not None:
            parts.append("plan in " + ", ".join(filters["plans"]))
        if filters["sign_in_methods"] is not None:
            parts.append("sign-in in " + ", ".join(filters["sign_in_methods"]))
        if filters["verified"] is not None:
            parts.append("verified" if filters["verified"] else "not verified")
        first, last = _date_range(self.members)
        if (filters["signed_up_from"], filters["signed_up_to"]) != (first, last):
            parts.append(
                f"signed up {filters['signed_up_from'] or '…'} to {filters['signed_up_to'] or '…'}"
            )
        if filters["email_contains"].strip():
            parts.append(f"email contains {filters['email_contains'].strip()!r}")
        return "; ".join(parts) or "all members"

    def __repr__(self) -> str:
        return (
            f"MemberExplorer({len(self._filtered):,} of {len(self.members):,} members: "
            f"{self.describe_filters()})"
        )

    def to_html(self) -> str:
        """The explorer's current view as static HTML (count, chart, table)."""
        png = figure_png(members_chart(self._filtered), dpi=90)
        body = (
            f"<p>{self.count.value} — {html.escape(self.describe_filters())}</p>"
            + png_img_tag(png, "members per sign-in method and plan")
            + _html.table(
                self._table_frame(), limit=self.rows, empty="no member matches these filters"
            )
        )
        return _html.wrap(body)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self.to_html()  # where widgets do not render (nbconvert, GitHub)
        return bundle


def member_explorer(members: pd.DataFrame, *, rows: int = 15) -> MemberExplorer:
    """An interactive explorer of a member frame (``load_member_base`` or ``load_members``).

    Filters by plan (when the frame has a ``plan`` column), sign-in method, verification,
    signup date range and part of the email; shows the live count, members per sign-in method
    and plan, and the newest ``rows`` matching members. Outside Jupyter it prints as one line
    and renders as static HTML.

    Example:
        >>> explorer = member_explorer(load_member_base(admin, plan_names={100: "free"}))
        >>> explorer.verified.value = "no"; len(explorer.filtered)
    """
    return MemberExplorer(members, rows=rows)


def _options(values: pd.Series) -> tuple[str, ...]:
    """The values present, most common first."""
    counts = values.dropna().astype(str).value_counts()
    return tuple(str(v) for v in counts.index)


def _date_range(members: pd.DataFrame) -> tuple[dt.date | None, dt.date | None]:
    created = members["created_at"].dropna()
    if created.empty:
        return None, None
    return created.min().date(), created.max().date()
