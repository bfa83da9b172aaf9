"""plabdata: data operations for PluginLab plugins, from pandas and Jupyter.

Explore the whole member base, bulk-sync it from a spreadsheet, backfill usage events from
logs — against PluginLab's real API or the bundled emulator (``plabdata.emulator``).

    >>> import plabdata
    >>> admin = plabdata.connect()                  # PLUGINLAB_* from the environment
    >>> base = plabdata.load_member_base(admin)
"""

from typing import TYPE_CHECKING, Any

from plabdata._version import __version__ as __version__
from plabdata.auth._tokens import (
    TokenPayload,
    TokenUser,
    TokenVerifier,
    verify_bearer,
    verify_token,
)
from plabdata.auth._webhooks import (
    WebhookEvent,
    WebhookHeader,
    parse_webhook,
    sign_webhook,
    verify_webhook,
)
from plabdata.client._core import AsyncAdmin
from plabdata.client._records import Identity, Member, MembersPage, QuotaUsage
from plabdata.client._sync import Admin, connect
from plabdata.config import Secret, Settings
from plabdata.errors import (
    ApiError,
    AuthError,
    BadRequest,
    ConfigError,
    Conflict,
    JournalError,
    NotFound,
    PaginationError,
    PlabdataError,
    PlanError,
    RateLimited,
    RefreshTokenFailed,
    ServerError,
    TokenAudienceError,
    TokenError,
    TokenExpired,
    TokenIssuerError,
    TokenMalformed,
    TokenSignatureError,
    TransportError,
    UnexpectedResponse,
    ValidationError,
    WebhookError,
    WebhookReplayError,
    WebhookSignatureError,
)
from plabdata.events._backfill import backfill_events
from plabdata.events._read import read_events
from plabdata.events._report import BackfillReport
from plabdata.events._validate import UPLOAD_TIME_NOTE, quota_impact, validate_events
from plabdata.jobs._journal import Journal, JournalEntry
from plabdata.members._apply import apply_plan, failed_rows
from plabdata.members._history import changes_between, member_changes
from plabdata.members._history_build import BuiltHistory, build_history
from plabdata.members._identities import refresh_identities
from plabdata.members._loaders import (
    join_member_base,
    load_identities,
    load_member_base,
    load_members,
    load_quota_usage,
)
from plabdata.members._plan import Plan, plan_member_changes
from plabdata.members._sheet import SheetResult, read_member_sheet
from plabdata.members._sheet_checks import PASSWORD_NOTES
from plabdata.members._snapshots import SnapshotResult, snapshot_member_base, write_snapshot
from plabdata.members._sources import SOURCES as EXPORT_SOURCES
from plabdata.members._store import default_snapshot_store, list_snapshots, read_snapshot
from plabdata.members._timeline import cohort_retention, member_timeline, plan_transitions
from plabdata.tables._export import export_frame

__all__ = [
    "DEMO_PLAN_NAMES",
    "EXPORT_SOURCES",
    "PASSWORD_NOTES",
    "UPLOAD_TIME_NOTE",
    "Admin",
    "ApiError",
    "AsyncAdmin",
    "AuthError",
    "BackfillReport",
    "BadRequest",
    "BuiltHistory",
    "ConfigError",
    "Conflict",
    "Identity",
    "Journal",
    "JournalEntry",
    "JournalError",
    "Member",
    "MembersPage",
    "NotFound",
    "PaginationError",
    "PlabdataError",
    "Plan",
    "PlanError",
    "QuotaUsage",
    "RateLimited",
    "RefreshTokenFailed",
    "Secret",
    "ServerError",
    "Settings",
    "SheetResult",
    "SnapshotResult",
    "TokenAudienceError",
    "TokenError",
    "TokenExpired",
    "TokenIssuerError",
    "TokenMalformed",
    "TokenPayload",
    "TokenSignatureError",
    "TokenUser",
    "TokenVerifier",
    "TransportError",
    "UnexpectedResponse",
    "ValidationError",
    "WebhookError",
    "WebhookEvent",
    "WebhookHeader",
    "WebhookReplayError",
    "WebhookSignatureError",
    "apply_plan",
    "backfill_events",
    "build_history",
    "changes_between",
    "cohort_retention",
    "connect",
    "default_snapshot_store",
    "export_frame",
    "failed_rows",
    "growth_chart",
    "join_member_base",
    "list_snapshots",
    "load_identities",
    "load_member_base",
    "load_members",
    "load_quota_usage",
    "member_changes",
    "member_explorer",
    "member_timeline",
    "notebook_admin",
    "notebook_journal",
    "parse_webhook",
    "plan_member_changes",
    "plan_preview",
    "plan_transitions",
    "plan_transitions_chart",
    "plans_chart",
    "quota_impact",
    "read_events",
    "read_member_sheet",
    "read_snapshot",
    "refresh_identities",
    "retention_chart",
    "sample_path",
    "sign_in_methods_chart",
    "sign_webhook",
    "snapshot_member_base",
    "validate_events",
    "verify_bearer",
    "verify_token",
    "verify_webhook",
    "write_report",
    "write_snapshot",
]

if TYPE_CHECKING:
    from plabdata.demo import PLAN_NAMES as DEMO_PLAN_NAMES
    from plabdata.demo import notebook_admin, notebook_journal, sample_path
    from plabdata.widgets import member_explorer, plan_preview
    from plabdata.widgets.history_charts import (
        growth_chart,
        plan_transitions_chart,
        plans_chart,
        retention_chart,
        sign_in_methods_chart,
    )
    from plabdata.widgets.report import write_report

# Imported on first use only: the widgets pull in ipywidgets and matplotlib (~0.4 s), the
# notebooks' helpers the emulator too. Public name -> (module, name there).
_LAZY = {
    "DEMO_PLAN_NAMES": ("plabdata.demo", "PLAN_NAMES"),
    "growth_chart": ("plabdata.widgets.history_charts", "growth_chart"),
    "member_explorer": ("plabdata.widgets", "member_explorer"),
    "notebook_admin": ("plabdata.demo", "notebook_admin"),
    "notebook_journal": ("plabdata.demo", "notebook_journal"),
    "plan_preview": ("plabdata.widgets", "plan_preview"),
    "plan_transitions_chart": ("plabdata.widgets.history_charts", "plan_transitions_chart"),
    "plans_chart": ("plabdata.widgets.history_charts", "plans_chart"),
    "retention_chart": ("plabdata.widgets.history_charts", "retention_chart"),
    "sample_path": ("plabdata.demo", "sample_path"),
    "sign_in_methods_chart": ("plabdata.widgets.history_charts", "sign_in_methods_chart"),
    "write_report": ("plabdata.widgets.report", "write_report"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'plabdata' has no attribute {name!r}")
