"""Everything one emulator instance holds: its identity, store, clock, keys, faults, counters.

The plugin id and admin secret are kept in the store, so a server restarted on the same
database file answers to the same credentials unless new ones are given.
"""

from __future__ import annotations

import hmac
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plabdata.config import Secret
from plabdata.emulator.clock import Clock
from plabdata.emulator.faults import FaultInjector, Faults
from plabdata.emulator.keys import KeyRing
from plabdata.emulator.profile import Profile
from plabdata.emulator.store import Store

#: The plugin id of the deterministic sample data (``data/make_*.py``).
DEFAULT_PLUGIN_ID = "plg_emulator"


def new_plugin_id() -> str:
    """A fresh plugin id for a new store. Each emulator's member base is its own plugin, as on
    PluginLab: journals and snapshot stores, which belong to a plugin id, never mix two."""
    return "plg_emu_" + secrets.token_hex(4)


def new_secret() -> str:
    """A fresh random admin secret."""
    return "sk_emu_" + secrets.token_urlsafe(24)


@dataclass
class RequestCounters:
    """What the contract side served since start or the last reset (control calls excluded)."""

    served: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    injected_errors: int = 0
    drops: int = 0
    internal_errors: int = 0

    def to_json(self) -> dict[str, Any]:
        """Control-API view."""
        return {
            "requests": self.served,
            "responsesByStatus": {str(k): v for k, v in sorted(self.by_status.items())},
            "rateLimited": self.rate_limited,
            "injectedErrors": self.injected_errors,
            "drops": self.drops,
            "internalErrors": self.internal_errors,
        }


class EmulatorState:
    """One emulated plugin.

    Args:
        db: SQLite file to keep state in (None: in memory).
        plugin_id: the plugin id to answer to; None keeps the stored one (or makes a fresh one).
        secret: the admin secret; None keeps the stored one (or makes a random one).
        faults: initial fault knobs.
        profile: which documented reading to play (page cap…); default the strictest.
    """

    def __init__(
        self,
        *,
        db: str | Path | None = None,
        plugin_id: str | None = None,
        secret: str | None = None,
        faults: Faults | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.store = Store(db)
        self.plugin_id = plugin_id or self.store.get_meta("plugin_id") or new_plugin_id()
        secret_text = secret or self.store.get_meta("secret") or new_secret()
        self.store.set_meta("plugin_id", self.plugin_id)
        # The emulator must print this secret again after a restart, so it is kept as is.
        self.store.set_meta("secret", secret_text)
        self.secret = Secret(secret_text)
        self._secret_bytes = secret_text.encode()
        self.keys = KeyRing(self.store)
        #: The emulator's time (wall clock + a forward-only offset kept in the store).
        self.clock = Clock(self.store)
        self.faults = FaultInjector(faults)
        self.profile = profile or Profile()
        self.counters = RequestCounters()

    def secret_matches(self, candidate: str | None) -> bool:
        """Constant-time comparison of a presented secret with ours."""
        if candidate is None:
            return False
        return hmac.compare_digest(candidate.encode(), self._secret_bytes)

    def reset(self) -> None:
        """Forget all data and request counters and return to the wall clock; keep keys,
        credentials, faults and profile."""
        self.store.reset()
        self.clock.reload()
        self.counters = RequestCounters()

    def close(self) -> None:
        """Release the database."""
        self.store.close()
