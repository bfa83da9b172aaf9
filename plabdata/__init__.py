"""plabdata: data operations for PluginLab plugins, from pandas and Jupyter.

Explore the whole member base, bulk-sync it from a spreadsheet, backfill usage events from
logs — against PluginLab's real API or the bundled emulator (``plabdata.emulator``).

    >>> import plabdata
    >>> admin = plabdata.connect()                  # PLUGINLAB_* from the environment
    >>> base = plabdata.load_member_base(admin)
"""

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
from plabdata.frames import export_frame
from plabdata.identities import refresh_identities
from plabdata.loaders import (
    join_member_base,
    load_identities,
    load_member_base,
    load_members,
    load_quota_usage,
)
from plabdata.records import Identity, Member, MembersPage, QuotaUsage
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
    "Admin",
    "ApiError",
    "AsyncAdmin",
    "AuthError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Identity",
    "JournalError",
    "Member",
    "MembersPage",
    "NotFound",
    "PaginationError",
    "PlabdataError",
    "PlanError",
    "QuotaUsage",
    "RateLimited",
    "RefreshTokenFailed",
    "Secret",
    "ServerError",
    "Settings",
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
    "connect",
    "export_frame",
    "join_member_base",
    "load_identities",
    "load_member_base",
    "load_members",
    "load_quota_usage",
    "parse_webhook",
    "refresh_identities",
    "sign_webhook",
    "verify_bearer",
    "verify_token",
    "verify_webhook",
]
