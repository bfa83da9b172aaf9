"""``plabdata emulator …``: run the local PluginLab emulator and drive a running one
(registered on ``plabdata`` by ``plabdata.cli``; ``python -m plabdata.emulator`` is ``serve``
alone, for child processes).

``plabdata emulator serve`` prints ``export`` lines (plugin id, secret, the four base URLs)
before it starts serving, so ``eval "$(plabdata emulator serve … | head -6)"`` in another
shell — or a copy-paste — points any PluginLab client at it. The other commands reach that
server through its control API (``/_emulator/…``, no credentials), one
:class:`~plabdata.emulator.EmulatorHandle` method each: ``token`` (``mint_token``), ``plan``
(``plan`` / ``set_plan``), ``stats``, ``reset`` and ``advance``. For a plugin server and curl:

    $ TOKEN=$(plabdata emulator token ada@example.com)
    $ curl -H "Authorization: Bearer $TOKEN" localhost:5000/todos
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from plabdata.config import ENV_AUTH_URL, Secret
from plabdata.emulator.clock import ClockBackwards
from plabdata.emulator.faults import Faults, FaultsInvalid
from plabdata.emulator.handle import EmulatorHandle
from plabdata.emulator.model import PLANS, member_id_for
from plabdata.emulator.profile import (
    EVENT_RESPONSE_CHOICES,
    OVER_CAP_CHOICES,
    USER_CLAIMS_CHOICES,
    Profile,
    ProfileInvalid,
)
from plabdata.emulator.server import SECRET_ENV, serve
from plabdata.errors import ApiError, NotFound

F = TypeVar("F", bound=Callable[..., Any])

#: The option defaults are the profile's: the strictest documented reading.
_DEFAULT = Profile()


@click.group()
def emulator() -> None:
    """Run the local PluginLab emulator (offline, same wire contract), and drive a running
    one: user tokens, plans, stats, reset, its clock."""


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


def _url_option(func: F) -> F:
    """``--url``: the running emulator's origin, by default ``$PLUGINLAB_AUTH_URL``."""
    return click.option(
        "--url",
        help=f"The running emulator's origin (default: ${ENV_AUTH_URL}, as printed by serve).",
    )(func)


@contextmanager
def _running_emulator(url: str | None, *, timeout: float = 60.0) -> Iterator[EmulatorHandle]:
    """A handle on the emulator at ``url`` (default ``$PLUGINLAB_AUTH_URL``), once its
    ``GET /_emulator/health`` has answered as an emulator's.

    Every way of not reaching one — no URL, nothing listening, a server that is not an
    emulator (PluginLab itself, say) — and every refusal of its control API becomes one
    click error line and a non-zero exit code, never a traceback.

    Example:
        >>> with _running_emulator("http://127.0.0.1:8787") as emu:  # doctest: +SKIP
        ...     emu.stats()["members"]
    """
    origin = (url or os.environ.get(ENV_AUTH_URL, "")).rstrip("/")
    if not origin:
        raise click.UsageError(f"no emulator: pass --url or set {ENV_AUTH_URL}")
    handle: EmulatorHandle | None = None
    try:
        # The control API takes no credentials: the handle's secret is never sent anywhere.
        handle = EmulatorHandle(origin, "", Secret(""), timeout=timeout)
        try:
            handle.plugin_id = str(handle.health()["pluginId"])
        except (ApiError, ValueError, KeyError, TypeError) as exc:
            answer = f"answered {exc.status}" if isinstance(exc, ApiError) else "gave no health"
            raise click.ClickException(
                f"{origin} is not a plabdata emulator (GET /_emulator/health {answer}); "
                "these commands drive the emulator's control API only"
            ) from None
        yield handle
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise click.ClickException(f"cannot reach the emulator at {origin}: {exc}") from None
    except ApiError as exc:
        raise click.ClickException(f"the emulator refused: {exc.code}: {exc.message}") from None
    finally:
        if handle is not None:
            handle.close()


def _member_plan(emu: EmulatorHandle, member: str) -> dict[str, Any]:
    """The plan record (``memberId``, ``plan``, ``planId``…) of MEMBER_OR_EMAIL.

    An email resolves without the admin secret: the emulator's member id is a function of
    the plugin id and the stored (trimmed, lower-cased) email (docs/emulator.md, "member
    id"), so the one lookup asks the control API for that id's plan.
    """
    member_id = member_id_for(member, emu.plugin_id) if "@" in member else member.strip()
    try:
        return emu.plan(member_id)
    except NotFound:
        which = f"with email {member!r}" if "@" in member else f"with id {member!r}"
        raise click.ClickException(f"the emulator at {emu.url} has no member {which}") from None


#: Names ``EmulatorHandle.mint_token`` takes for itself; no JWT claim is called so.
_NOT_CLAIMS = ("member_id", "expires_in")


def _claim(text: str) -> tuple[str, Any]:
    name, equals, raw = text.partition("=")
    name = name.strip()
    if not equals or not name or name in _NOT_CLAIMS:
        raise click.BadParameter(f"{text!r} is not NAME=VALUE of a claim", param_hint="--claim")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


@emulator.command("token")
@click.argument("member", metavar="MEMBER_OR_EMAIL")
@click.option(
    "--expires-in",
    type=click.IntRange(min=-(10**9), max=10**9),
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="Lifetime of the token; a negative one mints a token that has already expired "
    "(to see a server refuse it).",
)
@click.option(
    "--claim",
    "claims",
    multiple=True,
    metavar="NAME=VALUE",
    help="Replace or add a top-level claim (repeatable): VALUE is read as JSON when it "
    "parses, else as text, e.g. --claim aud=plugin:other:admin to test a refusal.",
)
@_url_option
def token_command(member: str, expires_in: int, claims: tuple[str, ...], url: str | None) -> None:
    """Mint a user token for a member of a running emulator, as PluginLab would issue it.

    MEMBER_OR_EMAIL is a member id (mem_…) or an email. Prints the token alone, so
    TOKEN=$(plabdata emulator token ada@example.com) then curl -H "Authorization: Bearer
    $TOKEN" tests a plugin server; plabdata.verify_token (with the emulator's plugin id and
    cert URL) accepts it. Exits non-zero when the emulator has no such member.
    """
    overrides = dict(_claim(text) for text in claims)
    with _running_emulator(url) as emu:
        member_id = _member_plan(emu, member)["memberId"]
        token = emu.mint_token(member_id, expires_in=expires_in, **overrides)
    click.echo(token)


def _plan_line(record: dict[str, Any]) -> str:
    limit = "unlimited" if record["isUnlimited"] else f"{record['usageLimit']:,} events a month"
    price = record["priceId"] or "none"
    return f"planId {record['planId']}, priceId {price}; {limit}"


@emulator.command("plan")
@click.argument("member", metavar="MEMBER_OR_EMAIL")
@click.option(
    "--set",
    "new_plan",
    type=click.Choice(list(PLANS)),
    help="Move the member to this plan; its next user token and quota usage show it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the control API's JSON answer.")
@_url_option
def plan_command(member: str, new_plan: str | None, as_json: bool, url: str | None) -> None:
    """Show a member's subscription plan on a running emulator, or move it with --set.

    MEMBER_OR_EMAIL is a member id (mem_…) or an email. The plans are free (100 events a
    month), pro (5,000) and unlimited; PluginLab's admin API has no such route (the
    emulator's control API: GET/PUT /_emulator/members/{id}/plan).
    """
    with _running_emulator(url) as emu:
        before = _member_plan(emu, member)
        after = before
        if new_plan is not None:
            emu.set_plan(before["memberId"], new_plan)
            after = emu.plan(before["memberId"])
    if as_json:
        click.echo(json.dumps(after, indent=2))
    elif new_plan is None:
        click.echo(f"{after['memberId']}: {after['plan']} ({_plan_line(after)})")
    else:
        moved = "already" if before["plan"] == after["plan"] else f"{before['plan']} ->"
        click.echo(f"{after['memberId']}: {moved} {after['plan']} ({_plan_line(after)})")


def _breakdown(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items())


@emulator.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON of GET /_emulator/stats.")
@_url_option
def stats_command(as_json: bool, url: str | None) -> None:
    """Print what a running emulator holds and the requests it has served since its start
    or last reset: members, identities, events, responses by status, 429s, injected faults."""
    with _running_emulator(url) as emu:
        stats = emu.stats()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    events = f"{stats['events']:,}"
    if stats["eventsBySource"]:
        with_events = len(stats["eventsByMember"])
        events += f" (by source: {_breakdown(stats['eventsBySource'])}; {with_events:,} members)"
    requests = f"{stats['requests']:,}"
    if stats["responsesByStatus"]:
        requests += f" (by status: {_breakdown(stats['responsesByStatus'])})"
    lines = {
        "members": f"{stats['members']:,}",
        "identities": f"{stats['identities']:,}",
        "events": events,
        "requests": requests,
        "rate limited": f"{stats['rateLimited']:,}",
        "injected errors": f"{stats['injectedErrors']:,}",
        "dropped answers": f"{stats['drops']:,}",
        "internal errors": f"{stats['internalErrors']:,}",
    }
    width = max(map(len, lines))
    for name, value in lines.items():
        click.echo(f"{name:<{width}}  {value}")


@emulator.command("reset")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Then add this many deterministic demo members (as serve --seed does).",
)
@click.option(
    "--random-seed", type=int, default=0, show_default=True, help="Seed of the demo members."
)
@_url_option
def reset_command(seed: int, random_seed: int, url: str | None) -> None:
    """Empty a running emulator: delete every member, identity and event, zero its request
    counters and return its clock to the wall clock.

    Its plugin id, admin secret, signing keys, faults and profile stay, so the exports serve
    printed still point clients at it. Prints one confirmation line.
    """
    with _running_emulator(url) as emu:
        emu.reset()
        seeded = emu.seed(seed, random_seed=random_seed) if seed else []
    added = f"; added {len(seeded):,} demo members" if seed else ""
    click.echo(f"reset the emulator at {emu.url}{added}")


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
@_url_option
def advance_command(days: float, churn: bool, random_seed: int, url: str | None) -> None:
    """Let time pass on a running emulator: advance its clock, with churn by default.

    Prints the new time and what changed in one line; exits non-zero when the emulator
    cannot be reached or refuses.
    """
    with _running_emulator(url, timeout=600) as emu:
        body = emu.advance(days, churn=churn, random_seed=random_seed)
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
