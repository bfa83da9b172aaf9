"""The widgets, driven headless: set filters like a person would, click Apply, check the server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from plabdata.client._sync import Admin
from plabdata.demo import PLAN_NAMES, emulator_admin
from plabdata.emulator import EmulatorHandle
from plabdata.members._loaders import load_member_base, load_members
from plabdata.members._plan import plan_member_changes
from plabdata.members._sheet import read_member_sheet
from plabdata.widgets import (
    figure_png,
    filter_members,
    member_explorer,
    members_chart,
    plan_preview,
    quota_impact_chart,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    with emulator_admin(emu) as client:  # paced for the emulator, which has no rate limit
        yield client


@pytest.fixture
def base(emu: EmulatorHandle, admin: Admin) -> pd.DataFrame:
    emu.seed(80)
    return load_member_base(admin, plan_names=PLAN_NAMES, progress=False)


def _plan(admin: Admin, sheet: pd.DataFrame, **options: object):  # type: ignore[no-untyped-def]
    current = load_members(admin, progress=False)
    return plan_member_changes(sheet, current, plugin_id=admin.settings.plugin_id, **options)


# ------------------------------------------------------------------------------ explorer


def test_explorer_filters_update_count_table_and_filtered(base: pd.DataFrame) -> None:
    explorer = member_explorer(base, rows=500)
    assert len(explorer.filtered) == len(base) == 80
    assert "<b>80</b> of 80 members" in explorer.count.value
    assert bytes(explorer.chart.value).startswith(PNG_MAGIC)

    explorer.plan.value = ("free",)
    explorer.verified.value = "yes"
    expected = base[(base["plan"] == "free") & base["is_verified"]]
    assert 0 < len(expected) < len(base)
    assert set(explorer.filtered["member_id"]) == set(expected["member_id"])
    assert f"<b>{len(expected)}</b> of 80 members" in explorer.count.value
    others = base[~base["member_id"].isin(expected["member_id"])]
    assert all(email in explorer.table.value for email in expected["email"])
    assert not any(f">{email}<" in explorer.table.value for email in others["email"])


def test_explorer_sign_in_method_date_range_and_email(base: pd.DataFrame) -> None:
    explorer = member_explorer(base)
    explorer.sign_in_method.value = ("google",)
    assert set(explorer.filtered["sign_in_method"].astype(str)) == {"google"}

    explorer.sign_in_method.value = tuple(explorer.sign_in_method.options)
    middle = base["created_at"].sort_values().iloc[40]
    explorer.signed_up_from.value = middle.date()
    expected = base[base["created_at"] >= pd.Timestamp(middle.date(), tz="UTC")]
    assert len(explorer.filtered) == len(expected)
    explorer.signed_up_to.value = middle.date() - dt.timedelta(days=1)
    assert explorer.filtered.empty
    assert "no member matches" in explorer.table.value
    assert "<b>0</b> of 80" in explorer.count.value

    explorer.reset_button.click()
    assert len(explorer.filtered) == 80
    one = base["email"].iloc[7]
    explorer.email_contains.value = one.upper()
    assert explorer.filtered["email"].tolist() == [one]


def test_explorer_text_and_html_fallbacks(base: pd.DataFrame) -> None:
    explorer = member_explorer(base)
    explorer.verified.value = "no"
    n = int((~base["is_verified"]).sum())
    assert repr(explorer) == f"MemberExplorer({n} of 80 members: not verified)"
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == repr(explorer)
    html = explorer.to_html()
    assert bundle["text/html"] == html
    assert "data:image/png;base64," in html
    assert f"<b>{n}</b> of 80 members" in html


def test_explorer_without_plan_column(admin: Admin, emu: EmulatorHandle) -> None:
    emu.seed(10)
    explorer = member_explorer(load_members(admin, progress=False))
    assert explorer.plan is None
    explorer.verified.value = "yes"
    assert explorer.filtered["is_verified"].all()


def test_filter_members_is_pure(base: pd.DataFrame) -> None:
    before = base.copy()
    kept = filter_members(base, plans=["pro", "unlimited"], sign_in_methods=["google"])
    assert set(kept["plan"].astype(str)) <= {"pro", "unlimited"}
    assert set(kept["sign_in_method"].astype(str)) <= {"google"}
    pd.testing.assert_frame_equal(base, before)


# ------------------------------------------------------------------------------ plan preview

NEW = ["ana@example.org", "ben@example.org", "chloe@example.org"]


def _sheet(base: pd.DataFrame) -> pd.DataFrame:
    renamed = base["email"].iloc[0]
    return pd.DataFrame(
        {
            "email": [*NEW, renamed],
            "name": ["Ana A", "Ben B", "Chloé C", "Renamed Member"],
        }
    )


def test_plan_preview_without_admin_is_read_only(admin: Admin, base: pd.DataFrame) -> None:
    preview = plan_preview(_plan(admin, _sheet(base)))
    assert preview.apply_button.disabled
    assert "preview only" in preview.apply_button.tooltip
    assert preview.tabs.titles[:4] == (
        "Creates (3)",
        "Updates (1)",
        "Deletes (0)",
        "Unsupported (0)",
    )
    updates = preview.tabs.children[1].value
    assert "Renamed Member" in updates and "→" in updates
    assert all(email in preview.tabs.children[0].value for email in NEW)
    assert "PlanPreview(Plan(" in repr(preview) and "not applied" in repr(preview)
    assert "Creates (3)" in preview.to_html()


def test_plan_preview_apply_button_applies_and_shows_results(
    admin: Admin, base: pd.DataFrame, emu: EmulatorHandle
) -> None:
    preview = plan_preview(_plan(admin, _sheet(base)), admin)
    assert not preview.apply_button.disabled
    preview.apply_button.click()

    assert preview.error is None
    results = preview.results
    assert results is not None
    changed = results[results["op"].isin(["create", "update"])]
    assert sorted(changed["status"]) == ["done"] * 4
    assert preview.progress.value == preview.progress.max == 4
    assert preview.apply_button.disabled and preview.apply_button.description == "Applied"
    assert "Applied: <b>4</b>" in preview.status.value
    assert "ana@example.org" in preview.results_view.value
    # The server has them.
    assert emu.stats()["members"] == 83
    assert admin.get_member_by_email("ben@example.org") is not None
    renamed = admin.get_member(str(base["member_id"].iloc[0]))
    assert renamed is not None and renamed.name == "Renamed Member"
    # Planned again, nothing is left and Apply stays disabled.
    again = plan_preview(_plan(admin, _sheet(base)), admin)
    assert again.apply_button.disabled and "nothing to apply" in again.apply_button.tooltip


def test_plan_preview_deletes_need_confirmation(
    admin: Admin, base: pd.DataFrame, emu: EmulatorHandle
) -> None:
    keep = base.iloc[:78][["email"]]
    plan = _plan(admin, keep, delete_missing=True)
    preview = plan_preview(plan, admin)
    assert preview.tabs.titles[2] == "Deletes (2)"

    preview.apply_button.click()
    assert preview.confirm_box.layout.display == "flex"
    assert preview.results is None and emu.stats()["members"] == 80
    preview.cancel_button.click()
    assert preview.confirm_box.layout.display == "none"
    assert "nothing was applied" in preview.status.value
    assert emu.stats()["members"] == 80

    preview.apply_button.click()
    preview.confirm_button.click()
    assert preview.results is not None
    deleted = preview.results[preview.results["op"] == "delete"]
    assert deleted["status"].tolist() == ["done", "done"]
    assert emu.stats()["members"] == 78
    gone = base["member_id"].iloc[79]
    assert admin.get_member(str(gone)) is None


def test_plan_preview_shows_a_failed_apply_as_text(admin: Admin, base: pd.DataFrame) -> None:
    plan = plan_member_changes(
        _sheet(base), load_members(admin, progress=False), plugin_id="plg_someone_else"
    )
    preview = plan_preview(plan, admin)
    preview.apply_button.click()
    assert preview.results is None
    assert preview.error is not None
    assert "Not applied: PlanError" in preview.status.value
    assert not preview.apply_button.disabled  # fix the cause, then try again


# ------------------------------------------------------------------------------ charts


def test_charts_render_to_png(base: pd.DataFrame, tmp_path: object) -> None:
    png = figure_png(members_chart(base))
    assert png.startswith(PNG_MAGIC)
    assert figure_png(members_chart(base.iloc[:0])).startswith(PNG_MAGIC)
    impact = pd.DataFrame(
        {
            "member_id": ["m1", "m2"],
            "email": ["a@x.org", "b@x.org"],
            "in_quota_events": [30, 5],
            "usage_count": [90, 10],
            "usage_limit": [100, 100],
            "is_unlimited": [False, False],
            "usage_after": [120, 15],
            "pushed_over_limit": [True, False],
        }
    )
    fig = quota_impact_chart(impact)
    assert "1 member(s) pushed over" in fig.get_suptitle()
    assert figure_png(fig).startswith(PNG_MAGIC)


# ------------------------------------------------------------------------------ escaping

MARKUP = "<img src=x onerror=alert(1)>"


def test_plan_preview_escapes_file_names_member_names_and_errors(
    admin: Admin, base: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / f"{MARKUP}.csv"
    path.write_text(
        "email,name,metadata.<i>k</i>\n"
        f"new@example.org,{MARKUP},<u>v</u>\n"
        f"{base['email'].iloc[0]},<script>alert(2)</script>,\n"
    )
    sheet = read_member_sheet(path)
    plan = plan_member_changes(sheet, load_members(admin, progress=False), plugin_id="<b>p</b>")
    preview = plan_preview(plan, admin)
    pages = [preview.to_html(), preview.summary.value, *(t.value for t in preview.tabs.children)]
    for page in pages:
        for raw in (MARKUP, "<script>", "<u>v", "<i>k", "<b>p"):
            assert raw not in page, (raw, page[:200])
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in preview.to_html()
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in preview.tabs.children[1].value
    preview.apply_button.click()  # another plugin's plan: refused, and the error is escaped
    assert preview.error is not None and "&lt;b&gt;p&lt;/b&gt;" in preview.status.value
    assert "<b>p</b>" not in preview.status.value


def test_explorer_and_charts_show_markup_and_dollars_as_text(base: pd.DataFrame) -> None:
    newest = base["created_at"].idxmax()  # the explorer's table shows the newest first
    odd = base.assign(
        plan=base["plan"].astype(str).where(base.index != newest, f"{MARKUP} $\\frac{{$"),
        email=base["email"].where(base.index != newest, "a$\\frac{b$<script>@example.org"),
    )
    explorer = member_explorer(odd)
    page = explorer.to_html()
    assert MARKUP not in page and "<script>" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page
    assert bytes(explorer.chart.value).startswith(PNG_MAGIC)  # drawn: '$' is no math here
    impact = pd.DataFrame(
        {
            "member_id": ["m1"],
            "email": ["a$\\frac{b$@x.org"],
            "usage_count": [90],
            "usage_limit": [100],
            "is_unlimited": [False],
            "usage_after": [120],
            "pushed_over_limit": [True],
        }
    )
    assert figure_png(quota_impact_chart(impact)).startswith(PNG_MAGIC)
