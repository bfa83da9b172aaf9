"""PluginLab's wire contract in constants: URLs, headers, names and limits, declared once.

The client sends these, the emulator serves them, and neither re-spells them. Where
PluginLab's public documents disagree, the constant says which reading it is and why
(``docs/emulator.md`` lists every documented behaviour with its source).

    >>> SECRET_HEADER
    'X-PluginLab-Admin-Sdk-Secret'
"""

from __future__ import annotations

DEFAULT_AUTH_URL = "https://auth.pluginlab.ai"
DEFAULT_CERT_URL = "https://auth.pluginlab.ai/admin/v1/cert"
DEFAULT_EVENT_URL = "https://event.pluginlab.ai"
DEFAULT_MONETIZATION_URL = "https://monetization.pluginlab.ai/v1"

SECRET_HEADER = "X-PluginLab-Admin-Sdk-Secret"
PLUGIN_ID_HEADER = "X-PluginLab-Plugin-Id"

SIGN_IN_METHODS = (
    "email-and-password",
    "magic-email-code",
    "google",
    "github",
    "gitlab",
    "microsoft",
)
PROVIDERS = ("google", "github", "gitlab", "microsoft")

#: ``iss`` of PluginLab's user tokens; its token articles require the check ([TOK1]).
DEFAULT_ISSUER = "https://auth.pluginlab.ai"

#: Members per page. PluginLab's RESTful API article says ``limit`` is "a number between 1 and
#: 50"; its Python SDK page says "up to 100"; the official client defaults to 50. The client
#: asks for 50 (the size every reading accepts) and survives a server that caps lower.
PAGE_SIZE = 50
#: The largest page any public document allows (the SDK page's "up to 100").
MAX_DOCUMENTED_PAGE_SIZE = 100
