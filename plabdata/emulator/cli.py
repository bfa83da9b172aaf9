"""``plabdata emulator …``: run the local PluginLab emulator (registered on ``plabdata`` by
``plabdata.cli``; ``python -m plabdata.emulator`` is ``serve`` alone, for child processes).

``plabdata emulator serve`` prints ``export`` lines (plugin id, secret, the four base URLs)
before it starts serving, so ``eval "$(plabdata emulator serve … | head -6)"`` in another
shell — or a copy-paste — points any PluginLab client at it.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import httpx

from plabdata.config import ENV_AUTH_URL
from plabdata.emulator.clock import ClockBackwards
from plabdata.emulator.faults import Faults, FaultsInvalid
from plabdata.emulator.profile import (
    EVENT_RESPONSE_CHOICES,
    OVER_CAP_CHOICES,
    USER_CLAIMS_CHOICES,
    Profile,
    ProfileInvalid,
)
from plabdata.emulator.server import SECRET_ENV, serve

#: The option defaults are the profile's: the strictest documented reading.
_DEFAULT = Profile()


@click.group()
def emulator() -> None:
    """Run the local PluginLab emulator (offline, same wire contract)."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8787, show_default=True, help="TCP port (0: any free).")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to keep state in; a restart on it keeps data, keys, plugin id and secret.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, help="Demo members to add to an empty store."
)
@click.option(
    "--random-seed", type=int, default=0, show_default=True, help="Seed of demo data and faults."
)
@click.option(
    "--start-days-ago",
    type=click.FloatRange(min=0, max=3650),
    help="Start the emulator's clock this many days before now (before seeding), then let "
    "time pass with `plabdata emulator advance`; refused when --db holds data.",
)
@click.option("--latency-ms", type=float, default=0, help="Fixed delay before each API request.")
@click.option("--jitter-ms", type=float, default=0, help="Extra uniform random delay, up to this.")
@click.option("--error-rate", type=float, default=0.0, help="Fraction of requests answered 5xx.")
@click.option("--rate-limit", type=float, help="Requests per second per plugin (429 beyond).")
@click.option("--burst", type=float, help="Token-bucket size (default: the rate limit).")
@click.option(
    "--drop-rate", type=float, default=0.0, help="Fraction of writes committed, then dropped."
)
@click.option(
    "--page-cap",
    type=int,
    default=_DEFAULT.page_cap,
    show_default=True,
    help="Largest page GET /members serves: 50 (PluginLab's RESTful API article, [REST]) or "
    "100 (its Python SDK page, [PYDOC]).",
)
@click.option(
    "--over-cap",
    type=click.Choice(OVER_CAP_CHOICES),
    default=_DEFAULT.over_cap,
    show_default=True,
    help="A limit above the cap: reject it with 400 invalid-limit, or serve a short page "
    "silently (no source says which PluginLab does).",
)
@click.option(
    "--issuer",
    default=_DEFAULT.issuer,
    show_default=True,
    help="The iss of minted user tokens; PluginLab's token articles require this value "
    "([TOK1], [TOK2]).",
)
@click.option(
    "--user-claims",
    type=click.Choice(USER_CLAIMS_CHOICES),
    default=_DEFAULT.user_claims,
    show_default=True,
    help="Casing of a token's user claim: camel (the SDKs, [SDK041]: id, givenName, planId, "
    "priceId) or snake (the 'Verifying ID Tokens' article, [TOK2]: given_name, family_name, "
    "plan_id, price_id, no id).",
)
@click.option(
    "--event-response",
    type=click.Choice(EVENT_RESPONSE_CHOICES),
    default=_DEFAULT.event_response,
    show_default=True,
    help="Success answer of POST /events/create-custom, which no source specifies: json "
    "(200 {}), empty (200, no body), text (200 OK), created (201 {}) or no-content (204).",
)
@click.option(
    "--min-password-length",
    type=int,
    default=_DEFAULT.min_password_length,
    show_default=True,
    help="Shortest password POST /members accepts (400 weak-password below). PluginLab states "
    "no rule and its SDK page ([PYDOC]) uses '12345'; 6 is the emulator's choice (Firebase "
    "Auth's).",
)
@click.option(
    "--plugin-id",
    help="Plugin id to serve (default: the one stored in --db, or a fresh plg_emu_<hex> for a "
    "new store, so journals and snapshot stores of two emulators never mix).",
)
@click.option(
    "--secret",
    envvar=SECRET_ENV,
    help=f"Admin secret (default: the stored one, or random). Also read from {SECRET_ENV}.",
)
def serve_command(
    host: str,
    port: int,
    db: Path | None,
    seed: int,
    random_seed: int,
    start_days_ago: float | None,
    latency_ms: float,
    jitter_ms: float,
    error_rate: float,
    rate_limit: float | None,
    burst: float | None,
    drop_rate: float,
    page_cap: int,
    over_cap: str,
    issuer: str,
    user_claims: str,
    event_response: str,
    min_password_length: int,
    plugin_id: str | None,
    secret: str | None,
) -> None:
    """Serve the emulator until Ctrl-C, after printing the settings as export lines.

    The profile options pick which reading of PluginLab's public record to play where its
    documents disagree or say nothing (see docs/emulator.md); the defaults are the strictest.
    """
    try:
        faults = Faults(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            rate_limit=rate_limit,
            burst=burst,
            drop_rate=drop_rate,
            random_seed=random_seed,
        )
        # click.Choice has checked the literal settings; Profile checks them all again.
        profile = Profile(
            page_cap=page_cap,
            over_cap=over_cap,  # type: ignore[arg-type]
            issuer=issuer,
            user_claims=user_claims,  # type: ignore[arg-type]
            event_response=event_response,  # type: ignore[arg-type]
            min_password_length=min_password_length,
        )
    except (FaultsInvalid, ProfileInvalid) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        serve(
            host=host,
            port=port,
            db=db,
            seed=seed,
            random_seed=random_seed,
            faults=faults,
            profile=profile,
            plugin_id=plugin_id,
            secret=secret,
            start_days_ago=start_days_ago,
            echo=click.echo,
        )
    except ClockBackwards as exc:
        raise click.UsageError(f"--start-days-ago: {exc}") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another emulator running there? pick another --port, or 0 for any)"
        ) from None
    except KeyboardInterrupt:
        pass


@emulator.command("advance")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True, max=3650),
    default=7,
    show_default=True,
    help="How many days to let pass (in steps of at most a week).",
)
@click.option(
    "--churn/--no-churn",
    default=True,
    show_default=True,
    help="Apply seeded, realistic churn on the way: signups, deletions, plan moves, new "
    "identities, verifications, profile edits and usage events.",
)
@click.option("--random-seed", type=int, default=0, show_default=True, help="Seed of the churn.")
@click.option(
    "--url",
    help=f"The running emulator's origin (default: ${ENV_AUTH_URL}, as printed by serve).",
)
def advance_command(days: float, churn: bool, random_seed: int, url: str | None) -> None:
    """Let time pass on a running emulator: advance its clock, with churn by default.

    Prints the new time and what changed in one line; exits non-zero when the emulator
    cannot be reached or refuses.
    """
    origin = (url or os.environ.get(ENV_AUTH_URL, "")).rstrip("/")
    if not origin:
        raise click.UsageError(f"no emulator: pass --url or set {ENV_AUTH_URL}")
    try:
        with httpx.Client(base_url=origin, timeout=600) as http:
            health = http.get("/_emulator/health")
            if health.status_code != 200:
                raise click.ClickException(
                    f"{origin} is not a plabdata emulator (GET /_emulator/health answered "
                    f"{health.status_code}); only the emulator's clock can be moved"
                )
            answer = http.post(
                "/_emulator/clock/advance",
                json={"days": days, "churn": churn, "randomSeed": random_seed},
            )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the emulator at {origin}: {exc}") from None
    body = answer.json()
    if answer.is_error:
        raise click.ClickException(f"{body.get('code')}: {body.get('message')}")
    counts = body["churn"]
    changed = (
        f"; {counts['signups']:,} signups, {counts['deletions']:,} deletions, "
        f"{counts['upgrades']:,} upgrades, {counts['downgrades']:,} downgrades, "
        f"{counts['identitiesAdded']:,} identities linked, {counts['verified']:,} verified, "
        f"{counts['events']:,} usage events"
        if churn
        else " (no churn)"
    )
    click.echo(f"clock: {body['now']} (+{days:g} days){changed}; {body['members']:,} members")
