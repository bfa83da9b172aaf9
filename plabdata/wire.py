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
