"""Settings: who we are to PluginLab (plugin id, secret), where its APIs live, how hard to push.

Every default is declared once, here. ``Settings.from_env()`` reads the same environment
variables the emulator prints (``plabdata emulator serve``), so one ``export`` block points
plabdata — or any PluginLab client — at the emulator or at the real service.

    >>> s = Settings(plugin_id="p1", secret="s3cr3t")
    >>> "s3cr3t" in repr(s)
    False
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plabdata.errors import ConfigError
from plabdata.wire import (
    DEFAULT_AUTH_URL,
    DEFAULT_CERT_URL,
    DEFAULT_EVENT_URL,
    DEFAULT_ISSUER,
    DEFAULT_MONETIZATION_URL,
    PLUGIN_ID_HEADER,
    SECRET_HEADER,
)

ENV_PLUGIN_ID = "PLUGINLAB_PLUGIN_ID"
ENV_SECRET = "PLUGINLAB_SECRET"
ENV_AUTH_URL = "PLUGINLAB_AUTH_URL"
ENV_CERT_URL = "PLUGINLAB_CERT_URL"
ENV_EVENT_URL = "PLUGINLAB_EVENT_URL"
ENV_MONETIZATION_URL = "PLUGINLAB_MONETIZATION_URL"
#: The ``iss`` user tokens must carry; only for a self-hosted PluginLab-compatible issuer.
ENV_ISSUER = "PLUGINLAB_ISSUER"
ENV_RATE_LIMIT = "PLABDATA_RATE_LIMIT"
ENV_TIMEOUT = "PLABDATA_TIMEOUT"
#: Where plabdata keeps its own state (default journals, snapshot stores): see ``jobs``.
ENV_HOME = "PLABDATA_HOME"


class Secret:
    """A string that never shows itself: not in repr, str, f-strings, logs or pickles of errors.

    Call :meth:`reveal` at the one place the value must leave (the HTTP header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (multiprocessing, caches) would otherwise copy the clear text around.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """Connection settings. Build with arguments, or :meth:`from_env` for the environment.

    ``rate_limit`` is the rate (requests/s) the client starts at. When the server announces
    its limit (``RateLimit-Limit``) the client moves to 97 % of it; it backs off on 429s and
    climbs back while healthy. ``max_rate``, when set, is a hard ceiling the client never
    exceeds whatever the server says. ``concurrency`` bounds requests in flight per bulk job;
    ``max_attempts`` and ``max_retry_seconds`` bound the retries of one call. ``timeout`` is
    the total deadline of one request, connect to last byte (``PLABDATA_TIMEOUT``; a server
    that accepts and never answers, or trickles its answer, is given up after a few of them
    and the error names its URL and the setting that chose it). ``issuer`` is the
    ``iss`` a user token must carry (PluginLab's, unless you run a compatible issuer).
    """

    plugin_id: str
    secret: Secret = field(repr=True)
    auth_url: str = DEFAULT_AUTH_URL
    cert_url: str = DEFAULT_CERT_URL
    event_url: str = DEFAULT_EVENT_URL
    monetization_url: str = DEFAULT_MONETIZATION_URL
    timeout: float = 30.0
    rate_limit: float = 100.0
    max_rate: float | None = None
    concurrency: int = 48
    max_attempts: int = 12
    max_retry_seconds: float = 300.0
    issuer: str = DEFAULT_ISSUER

    def __post_init__(self) -> None:
        if isinstance(self.secret, str):
            object.__setattr__(self, "secret", Secret(self.secret))
        if not self.plugin_id:
            raise ConfigError(f"no plugin id: pass plugin_id= or set {ENV_PLUGIN_ID}")
        if not self.secret:
            raise ConfigError(f"no admin secret: pass secret= or set {ENV_SECRET}")
        for name in ("auth_url", "cert_url", "event_url", "monetization_url"):
            object.__setattr__(self, name, str(getattr(self, name)).rstrip("/"))
        if self.rate_limit <= 0 or (self.max_rate is not None and self.max_rate <= 0):
            raise ConfigError("rate_limit and max_rate must be > 0 requests per second")
        if self.max_rate is not None and self.rate_limit > self.max_rate:
            object.__setattr__(self, "rate_limit", float(self.max_rate))
        if not self.timeout > 0:
            raise ConfigError("timeout must be > 0 seconds")
        if self.concurrency < 1:
            raise ConfigError("concurrency must be >= 1")
        if not self.issuer:
            raise ConfigError(f"no token issuer: pass issuer= or unset {ENV_ISSUER}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``PLUGINLAB_*`` variables; keyword arguments win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "plugin_id": env.get(ENV_PLUGIN_ID, ""),
            "secret": env.get(ENV_SECRET, ""),
            "auth_url": env.get(ENV_AUTH_URL, DEFAULT_AUTH_URL),
            "cert_url": env.get(ENV_CERT_URL, DEFAULT_CERT_URL),
            "event_url": env.get(ENV_EVENT_URL, DEFAULT_EVENT_URL),
            "monetization_url": env.get(ENV_MONETIZATION_URL, DEFAULT_MONETIZATION_URL),
            "issuer": env.get(ENV_ISSUER) or DEFAULT_ISSUER,
        }
        for name, key in ((ENV_RATE_LIMIT, "max_rate"), (ENV_TIMEOUT, "timeout")):
            if env.get(name):
                try:
                    values[key] = float(env[name])
                except ValueError as exc:
                    raise ConfigError(f"{name} must be a number, not {env[name]!r}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def members_url(self) -> str:
        """Base of the member endpoints: ``{auth}/admin/plugins/{pluginId}``."""
        return f"{self.auth_url}/admin/plugins/{self.plugin_id}"

    @property
    def audience(self) -> str:
        """The ``aud`` claim of this plugin's user tokens."""
        return f"plugin:{self.plugin_id}:admin"

    def headers(self) -> dict[str, str]:
        """The two headers every admin request carries (the only place the secret is revealed)."""
        return {SECRET_HEADER: self.secret.reveal(), PLUGIN_ID_HEADER: self.plugin_id}

    def export_lines(self, *, include_secret: bool = True) -> list[str]:
        """``export NAME=value`` lines that point a shell (and any PluginLab client) here."""
        pairs = [
            (ENV_PLUGIN_ID, self.plugin_id),
            (ENV_SECRET, self.secret.reveal() if include_secret else "**********"),
            (ENV_AUTH_URL, self.auth_url),
            (ENV_CERT_URL, self.cert_url),
            (ENV_EVENT_URL, self.event_url),
            (ENV_MONETIZATION_URL, self.monetization_url),
        ]
        if self.issuer != DEFAULT_ISSUER:  # the usual block stays as it was
            pairs.append((ENV_ISSUER, self.issuer))
        return [f"export {name}={value}" for name, value in pairs]
