"""``EmulatorHandle``: a running emulator's address, credentials and control API.

Every method is an HTTP call to ``/_emulator/…``, so a handle drives an emulator in this
process or in another one alike.

    >>> with running(seed=10) as emu:                     # doctest: +SKIP
    ...     emu.set_faults(error_rate=0.1, random_seed=3)
    ...     Admin(emu.settings).members()
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from plabdata.config import Secret, Settings
from plabdata.emulator.faults import Faults
from plabdata.emulator.profile import Profile
from plabdata.errors import error_for_status

CONTROL = "/_emulator"


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), name)


#: The client's starting rate against a local emulator. Against an unknown server the client
#: starts politely (Settings.rate_limit) and climbs; the emulator answers in about a
#: millisecond and announces its limit (RateLimit-Limit) whenever one is set, so start high.
EMULATOR_START_RATE = 1000.0


def settings_for(url: str, plugin_id: str, secret: Secret | str, **overrides: Any) -> Settings:
    """Settings whose four base URLs all point at the emulator at ``url``."""
    overrides.setdefault("rate_limit", EMULATOR_START_RATE)
    return Settings(
        plugin_id=plugin_id,
        secret=secret if isinstance(secret, Secret) else Secret(secret),
        auth_url=url,
        cert_url=f"{url}/admin/v1/cert",
        event_url=url,
        monetization_url=f"{url}/v1",
        **overrides,
    )


def official_app(settings: Settings) -> Any:
    """PluginLab's official client (``pluginlab_admin.App``) pointed at ``settings``' URLs.

    The official client is a development extra (``pip install -e '.[dev]'``): tests and
    benchmarks use it as the emulator's proof and plabdata's baseline.
    """
    from pluginlab_admin import App

    return App(
        secret_key=settings.secret.reveal(),
        plugin_id=settings.plugin_id,
        auth_url=settings.auth_url,
        auth_cert_url=settings.cert_url,
        event_url=settings.event_url,
        monetization_url=settings.monetization_url,
    )


class EmulatorHandle:
    """A running emulator.

    Attributes:
        url: the origin, e.g. ``http://127.0.0.1:8787``.
        plugin_id: the plugin id the emulator answers to.
        secret: its admin secret (a :class:`~plabdata.config.Secret`).
    """

    def __init__(self, url: str, plugin_id: str, secret: Secret, *, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.plugin_id = plugin_id
        self.secret = secret
        self._http = httpx.Client(base_url=self.url + CONTROL, timeout=timeout)

    def __repr__(self) -> str:
        return f"EmulatorHandle(url={self.url!r}, plugin_id={self.plugin_id!r})"

    @property
    def settings(self) -> Settings:
        """:class:`~plabdata.config.Settings` with all four URLs pointing at this emulator."""
        return settings_for(self.url, self.plugin_id, self.secret)

    def close(self) -> None:
        """Close the control connection (the emulator keeps running)."""
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        if response.is_error:
            try:
                error = response.json()
            except ValueError:
                error = {}
            raise error_for_status(
                method,
                CONTROL + path,
                response.status_code,
                error.get("code"),
                error.get("message"),
            )
        return response.json()

    def health(self) -> dict[str, Any]:
        """``{"ok": true, "pluginId": …, "kid": …}``."""
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def reset(self) -> None:
        """Delete every member, identity and event and zero the request counters."""
        self._call("POST", "/reset")

    def seed(self, n: int, random_seed: int = 0) -> list[str]:
        """Add ``n`` deterministic demo members; returns their ids."""
        result = self._call("POST", "/seed", {"members": n, "randomSeed": random_seed})
        return list(result["memberIds"])

    def clock(self) -> dict[str, Any]:
        """The emulator's time: ``{nowMs, now (ISO 8601), offsetMs}``."""
        result: dict[str, Any] = self._call("GET", "/clock")
        return result

    def set_clock(
        self, now_ms: int | None = None, *, days_ago: float | None = None
    ) -> dict[str, Any]:
        """Set the emulator's time to ``now_ms`` (epoch ms) or ``days_ago`` days before the
        wall clock. Earlier than now is refused (409 ``clock-backwards``, a
        :class:`~plabdata.errors.Conflict`) while the emulator holds data: reset it first.
        """
        if (now_ms is None) == (days_ago is None):
            raise TypeError("pass either now_ms or days_ago")
        body = {"nowMs": now_ms} if now_ms is not None else {"daysAgo": days_ago}
        result: dict[str, Any] = self._call("PUT", "/clock", body)
        return result

    def advance(
        self, days: float = 7, *, churn: bool = True, random_seed: int = 0
    ) -> dict[str, Any]:
        """Let ``days`` pass, applying seeded, realistic churn unless ``churn=False``.

        Returns ``{nowMs, now, offsetMs, fromMs, days, steps, churn: {signups, deletions,
        upgrades, downgrades, identitiesAdded, identitiesRemoved, verified, profileEdits,
        events}, members}``.

        Example:
            >>> emu.advance(days=7, random_seed=1)["churn"]["signups"]
            17
        """
        body = {"days": days, "churn": churn, "randomSeed": random_seed}
        result: dict[str, Any] = self._call("POST", "/clock/advance", body)
        return result

    def faults(self) -> Faults:
        """The fault knobs in force."""
        return Faults.from_json(self._call("GET", "/faults"))

    def set_faults(self, faults: Faults | None = None, /, **knobs: Any) -> Faults:
        """Replace the fault knobs: ``set_faults(Faults(...))`` or ``set_faults(error_rate=.1)``.

        Knobs not given take their defaults (no fault); the fault generator is reseeded.
        """
        if faults is None:
            faults = Faults(**knobs)
        elif knobs:
            raise TypeError("pass either a Faults value or keyword knobs, not both")
        return Faults.from_json(self._call("PUT", "/faults", faults.to_json()))

    def clear_faults(self) -> None:
        """No latency, errors, rate limit or drops."""
        self.set_faults(Faults())

    def profile(self) -> Profile:
        """The documented reading in force (page cap, what a larger limit gets, …)."""
        return Profile.from_json(self._call("GET", "/profile"))

    def set_profile(self, profile: Profile | None = None, /, **settings: Any) -> Profile:
        """Play another reading: ``set_profile(Profile(page_cap=100))`` or
        ``set_profile(over_cap="short")``; settings not given take their defaults."""
        if profile is None:
            profile = Profile(**settings)
        elif settings:
            raise TypeError("pass either a Profile value or keyword settings, not both")
        return Profile.from_json(self._call("PUT", "/profile", profile.to_json()))

    def stats(self) -> dict[str, Any]:
        """Stored counts and contract requests served since start or the last reset.

        Keys: members, identities, events, eventsByMember, eventsBySource, requests,
        responsesByStatus (status as a string), rateLimited, injectedErrors, drops,
        internalErrors.
        """
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def events(
        self, member_id: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored events (arrival order), optionally one member's and/or one source's."""
        params = {k: v for k, v in (("memberId", member_id), ("source", source)) if v is not None}
        return list(self._call("GET", "/events", params=params)["items"])

    def mint_token(self, member_id: str, *, expires_in: int = 3600, **overrides: Any) -> str:
        """A PS256 user token for the member; ``overrides`` replace or add claims (``aud``…)."""
        body = {"memberId": member_id, "expiresIn": expires_in, "claims": overrides}
        return str(self._call("POST", "/tokens", body)["token"])

    def rotate_key(self) -> str:
        """Make a new current signing key; returns its ``kid``."""
        return str(self._call("POST", "/keys/rotate")["kid"])

    def plan(self, member_id: str) -> dict[str, Any]:
        """``{memberId, plan, planId, priceId, usageLimit, isUnlimited}``."""
        result: dict[str, Any] = self._call("GET", f"/members/{member_id}/plan")
        return result

    def set_plan(self, member_id: str, plan: str) -> None:
        """Move a member to ``"free"``, ``"pro"`` or ``"unlimited"``."""
        self._call("PUT", f"/members/{member_id}/plan", {"plan": plan})

    def set_identity(self, member_id: str, provider: str, **fields: Any) -> dict[str, Any]:
        """Create or change an identity, e.g. ``refresh_token_revoked=True``.

        Field names in snake_case or camelCase: provider_user_id, access_token,
        refresh_token, access_token_expires_at_ms, refresh_token_expires_at_ms,
        last_used_at_ms, refresh_token_revoked.
        """
        body = {_camel(key): value for key, value in fields.items()}
        result: dict[str, Any] = self._call(
            "PUT", f"/members/{member_id}/identities/{provider}", body
        )
        return result
