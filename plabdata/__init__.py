"""plabdata: data operations for PluginLab plugins, from pandas and Jupyter.

Explore the whole member base, bulk-sync it from a spreadsheet, backfill usage events from
logs — against PluginLab's real API or the bundled emulator (``plabdata.emulator``).

    >>> import plabdata
    >>> admin = plabdata.connect()                  # PLUGINLAB_* from the environment
    >>> base = plabdata.load_member_base(admin)
"""

from typing import TYPE_CHECKING, Any

from plabdata.apply import apply_plan, failed_rows
from plabdata.client import Admin, AsyncAdmin, connect
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
    TokenMalformed,
    TokenSignatureError,
    TransportError,
    ValidationError,
    WebhookError,
    WebhookReplayError,
    WebhookSignatureError,
)
from plabdata.events import (
    UPLOAD_TIME_NOTE,
    BackfillReport,
    backfill_events,
    quota_impact,
    read_events,
    validate_events,
)
from plabdata.frames import export_frame
from plabdata.identities import refresh_identities
from plabdata.journal import Journal, JournalEntry
from plabdata.loaders import (
    join_member_base,
    load_identities,
    load_member_base,
    load_members,
    load_quota_usage,
)
from plabdata.plan import Plan, plan_member_changes
from plabdata.records import Identity, Member, MembersPage, QuotaUsage
from plabdata.sheets import SheetResult, read_member_sheet
from plabdata.tokens import TokenPayload, TokenUser, TokenVerifier, verify_bearer, verify_token
from plabdata.webhooks import (
    WebhookEvent,
    WebhookHeader,
    parse_webhook,
    sign_webhook,
    verify_webhook,
)

__version__ = "0.1.0"

__all__ = [
    "UPLOAD_TIME_NOTE",
    "Admin",
    "ApiError",
    "AsyncAdmin",
    "AuthError",
    "BackfillReport",
    "BadRequest",
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
    "TokenAudienceError",
    "TokenError",
    "TokenExpired",
    "TokenMalformed",
    "TokenPayload",
    "TokenSignatureError",
    "TokenUser",
    "TokenVerifier",
    "TransportError",
    "ValidationError",
    "WebhookError",
    "WebhookEvent",
    "WebhookHeader",
    "WebhookReplayError",
    "WebhookSignatureError",
    "apply_plan",
    "backfill_events",
    "connect",
    "export_frame",
    "failed_rows",
    "join_member_base",
    "load_identities",
    "load_member_base",
    "load_members",
    "load_quota_usage",
    "member_explorer",
    "parse_webhook",
    "plan_member_changes",
    "plan_preview",
    "quota_impact",
    "read_events",
    "read_member_sheet",
    "refresh_identities",
    "sign_webhook",
    "validate_events",
    "verify_bearer",
    "verify_token",
    "verify_webhook",
]

if TYPE_CHECKING:
    from plabdata.widgets import member_explorer, plan_preview

# The widgets pull in ipywidgets and matplotlib (~0.4 s): imported on first use only.
_LAZY = {"member_explorer": "plabdata.widgets", "plan_preview": "plabdata.widgets"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'plabdata' has no attribute {name!r}")
