"""``plan_preview``: review a member :class:`~plabdata.Plan` tab by tab, then apply it.

Tabs show the creates, the updates (each field before → after), the deletes, the differences
the API cannot apply and the sheet's invalid rows, each with its count. The Apply button runs
:func:`~plabdata.apply_plan` with a progress bar and shows the per-row results; it is
disabled without an admin (a preview only), and a plan that deletes members asks first.

    >>> preview = plan_preview(plan, admin)
    >>> preview                         # in a notebook: review, then click Apply
    >>> preview.results                 # the results table once applied
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from plabdata.client._sync import Admin
from plabdata.errors import PlabdataError
from plabdata.jobs._outcomes import MEMBER_APPLIED, MEMBER_FAILURES
from plabdata.members._apply import apply_plan
from plabdata.members._plan import Plan
from plabdata.widgets import _html

__all__ = ["PlanPreview", "plan_preview"]

TABS = ("create", "update", "delete", "unsupported", "invalid")
TAB_TITLES = {
    "create": "Creates",
    "update": "Updates",
    "delete": "Deletes",
    "unsupported": "Unsupported",
    "invalid": "Invalid rows",
}
EMPTY = {
    "create": "no member to create",
    "update": "no member to update",
    "delete": "no member to delete (deletes need delete_missing=True)",
    "unsupported": "no difference the API cannot apply",
    "invalid": "every sheet row is valid",
}


def plan_tables(plan: Plan) -> dict[str, pd.DataFrame]:
    """One display table per tab: creates with the fields they set, updates one line per
    changed field (``before`` → ``after``), deletes, unsupported differences, invalid rows."""
    frame = plan.to_frame()
    creates = frame[frame["op"] == "create"]
    fields = pd.DataFrame([dict(a) for a in creates["after"]], index=creates.index)
    create_table = pd.concat(
        [creates[["row", "email", "password_source"]], fields.astype("string")], axis=1
    )
    updates = frame[frame["op"] == "update"]
    update_rows = [
        {
            "row": item["row"],
            "email": item["email"],
            "field": name,
            "before": _text(item["before"].get(name)),
            "→": "→",
            "after": _text(value),
        }
        for item in updates.to_dict("records")
        for name, value in item["after"].items()
    ]
    update_table = pd.DataFrame(
        update_rows, columns=["row", "email", "field", "before", "→", "after"]
    )
    deletes = frame.loc[frame["op"] == "delete", ["email", "member_id", "expected_updated_at"]]
    odd = frame[frame["op"] == "unsupported"]
    unsupported = odd.assign(
        before=[_fields_text(b) for b in odd["before"]],
        after=[_fields_text(a) for a in odd["after"]],
    )[["row", "email", "fields", "before", "after", "problem"]]
    return {
        "create": create_table,
        "update": update_table,
        "delete": deletes,
        "unsupported": unsupported,
        "invalid": plan.invalid,
    }


def _text(value: Any) -> str:
    return "—" if value is None or value is pd.NA or value == "" else str(value)


def _fields_text(values: Any) -> str:
    if not isinstance(values, Mapping):
        return ""
    return ", ".join(f"{k}={_text(v)}" for k, v in values.items())


def result_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Rows per (op, status) of an ``apply_plan`` results table."""
    return results.groupby(["op", "status"]).size().rename("rows").reset_index()


class PlanPreview(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The plan widget. Build it with :func:`plan_preview`.

    Attributes for code and tests: ``tabs`` (one tab per kind, titles with counts),
    ``apply_button``, ``confirm_button`` / ``cancel_button`` (shown before deletes),
    ``progress``, ``status``; :attr:`results` (the ``apply_plan`` table once applied, else
    None) and :attr:`error` (the error that stopped an apply, else None).
    """

    def __init__(
        self,
        plan: Plan,
        admin: Admin | None = None,
        *,
        journal: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        rows: int = 50,
    ) -> None:
        self.plan = plan
        self.admin = admin
        self.journal = Path(journal) if journal is not None else None
        self.concurrency = concurrency
        self.rows = rows
        self.results: pd.DataFrame | None = None
        self.error: Exception | None = None
        self.counts = plan.counts()
        self.tables = plan_tables(plan)

        self.summary = widgets.HTML(_html.wrap(self._summary_html()))
        kinds = [k for k in TABS if k != "invalid" or self.counts["invalid"]]
        self.tabs = widgets.Tab(
            children=[
                widgets.HTML(_html.wrap(_html.table(self.tables[k], limit=rows, empty=EMPTY[k])))
                for k in kinds
            ],
            titles=tuple(f"{TAB_TITLES[k]} ({self.counts[k]:,})" for k in kinds),
        )
        self.apply_button = widgets.Button(description="Apply", button_style="primary", icon="play")
        self.apply_button.disabled, self.apply_button.tooltip = self._apply_state()
        self.confirm_button = widgets.Button(
            description=f"Delete {self.counts['delete']:,} members", button_style="danger"
        )
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox(
            [
                widgets.HTML(
                    f"<b>This plan deletes {self.counts['delete']:,} member(s).</b> "
                    "Their data cannot be recovered.&nbsp;"
                ),
                self.confirm_button,
                self.cancel_button,
            ],
            layout=widgets.Layout(display="none"),
        )
        self.progress = widgets.IntProgress(
            min=0,
            max=max(self._to_apply(), 1),
            description="applying",
            layout=widgets.Layout(display="none"),
        )
        self.status = widgets.HTML(
            f'<span class="note">{html.escape(self.apply_button.tooltip)}</span>'
            if self.apply_button.disabled
            else ""
        )
        self.results_view = widgets.HTML()
        super().__init__(
            [
                self.summary,
                self.tabs,
                widgets.HBox([self.apply_button, self.progress]),
                self.confirm_box,
                self.status,
                self.results_view,
            ]
        )
        self.apply_button.on_click(lambda _b: self._on_apply())
        self.confirm_button.on_click(lambda _b: self._on_confirm())
        self.cancel_button.on_click(lambda _b: self._on_cancel())

    # -- state ------------------------------------------------------------------------------

    def _to_apply(self) -> int:
        return self.counts["create"] + self.counts["update"] + self.counts["delete"]

    def _apply_state(self) -> tuple[bool, str]:
        if self.results is not None:
            return True, "applied: plan again to see what is left"
        if self.admin is None:
            return True, "preview only: pass an admin (plan_preview(plan, admin)) to apply"
        if self.plan.is_empty:
            return True, "nothing to apply: every valid row already matches its member"
        return (
            False,
            f"apply {self._to_apply():,} change(s) to plugin {self.admin.settings.plugin_id}",
        )

    def _summary_html(self) -> str:
        source = self.plan.meta.get("source")
        head = f"Plan for plugin <code>{html.escape(str(self.plan.plugin_id))}</code>"
        if source:
            head += f" from <code>{html.escape(str(source))}</code>"
        note = (
            "<p><b>Nothing to do:</b> every valid row already matches its member.</p>"
            if self.plan.is_empty
            else ""
        )
        return f"<p>{head}</p>{_html.counts(self.counts)}{note}"

    # -- applying ---------------------------------------------------------------------------

    def _on_apply(self) -> None:
        if self.apply_button.disabled:
            return
        if self.counts["delete"]:
            self.confirm_box.layout.display = "flex"
            self.apply_button.disabled = True
            self.status.value = "Confirm the deletes to apply, or cancel."
            return
        self.apply()

    def _on_confirm(self) -> None:
        self.confirm_box.layout.display = "none"
        self.apply()

    def _on_cancel(self) -> None:
        self.confirm_box.layout.display = "none"
        self.apply_button.disabled = False
        self.status.value = "Cancelled: nothing was applied."

    def apply(self) -> pd.DataFrame | None:
        """Apply the plan now (what Apply does, minus the delete confirmation).

        Returns the results table, or None when the apply failed (the reason is in
        :attr:`error` and shown under the buttons).
        """
        if self.admin is None:
            raise PlabdataError("plan_preview has no admin: it cannot apply the plan")
        admin = self.admin
        self.apply_button.disabled = True
        self.progress.value = 0
        self.progress.description = "applying"
        self.progress.layout.display = "flex"
        self.progress.bar_style = ""
        self.status.value = f"Applying {self._to_apply():,} change(s)…"

        def advance(done: int, total: int | None) -> None:
            self.progress.value = min(done, self.progress.max)

        self.error = None
        try:
            results = apply_plan(
                admin,
                self.plan,
                journal=self.journal,  # None: the plugin's own journal, as everywhere
                concurrency=self.concurrency,
                progress=advance,
            )
        except PlabdataError as exc:  # the widget is a boundary: errors become text
            self.error = exc
            self.progress.bar_style = "danger"
            self.status.value = (
                f'<span class="error">Not applied: {type(exc).__name__}: '
                f"{html.escape(str(exc))}</span>"
            )
            self.apply_button.disabled = False
            return None
        self.results = results
        self.progress.value = self.progress.max
        self.progress.description = "applied"
        problems = int(results["status"].isin(MEMBER_FAILURES).sum())
        self.progress.bar_style = "warning" if problems else "success"
        applied = int(results["status"].isin(MEMBER_APPLIED).sum())
        self.status.value = (
            f"Applied: <b>{applied:,}</b> change(s) done"
            + (f', <span class="error">{problems:,} failed or stale</span>' if problems else "")
            + "."
        )
        self.apply_button.disabled, self.apply_button.tooltip = self._apply_state()
        self.apply_button.description = "Applied"
        self.results_view.value = _html.wrap(self._results_html())
        return results

    def _results_html(self) -> str:
        if self.results is None:
            return ""
        results = self.results
        problems = results[results["status"].isin(MEMBER_FAILURES)]
        out = ["<h4>Results</h4>", _html.table(result_summary(results), limit=30)]
        if len(problems):
            out += [
                f"<h4>Failed or stale ({len(problems):,})</h4>",
                _html.table(problems, limit=self.rows),
            ]
        changed = results[results["op"].isin(["create", "update", "delete"])]
        out += ["<h4>Changes</h4>", _html.table(changed, limit=self.rows)]
        return "".join(out)

    # -- text and HTML outside Jupyter -------------------------------------------------------

    def __repr__(self) -> str:
        state = "applied" if self.results is not None else "not applied"
        return f"PlanPreview({self.plan!r}, {state})"

    def to_html(self) -> str:
        """The preview (and the results, once applied) as static HTML."""
        parts = [self._summary_html()]
        for kind in TABS:
            if kind == "invalid" and not self.counts["invalid"]:
                continue
            parts.append(f"<h4>{TAB_TITLES[kind]} ({self.counts[kind]:,})</h4>")
            parts.append(_html.table(self.tables[kind], limit=self.rows, empty=EMPTY[kind]))
        parts.append(self.status.value and f"<p>{self.status.value}</p>")
        parts.append(self._results_html())
        return _html.wrap("".join(parts))

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self.to_html()
        return bundle


def plan_preview(
    plan: Plan,
    admin: Admin | None = None,
    *,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    rows: int = 50,
) -> PlanPreview:
    """A tabbed preview of a member plan, with an Apply button when ``admin`` is given.

    Args:
        plan: from :func:`~plabdata.plan_member_changes`.
        admin: the connection to apply with; None makes a read-only preview.
        journal: the journal that makes the apply resumable (default: the plugin's own,
            as for :func:`~plabdata.apply_plan`).
        concurrency: requests in flight while applying.
        rows: rows shown per table.

    Example:
        >>> preview = plan_preview(plan_member_changes(sheet, load_members(admin)), admin)
        >>> preview.apply_button.click(); preview.results.status.value_counts()
    """
    return PlanPreview(plan, admin, journal=journal, concurrency=concurrency, rows=rows)
