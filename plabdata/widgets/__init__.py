"""Jupyter widgets for the three jobs: explore the member base, preview and apply a plan.

Every widget also prints as one line of text and renders as static HTML where widgets do not
(nbconvert, GitHub, a terminal), and exposes its controls and results as attributes so it can
be driven from code.

    >>> from plabdata.widgets import member_explorer, plan_preview
    >>> member_explorer(load_member_base(admin))
    >>> plan_preview(plan, admin)
"""

from plabdata.widgets.charts import figure_png, members_chart, quota_impact_chart
from plabdata.widgets.explorer import MemberExplorer, filter_members, member_explorer
from plabdata.widgets.plan_view import PlanPreview, plan_preview

__all__ = [
    "MemberExplorer",
    "PlanPreview",
    "figure_png",
    "filter_members",
    "member_explorer",
    "members_chart",
    "plan_preview",
    "quota_impact_chart",
]
