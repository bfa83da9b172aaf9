"""``plabdata emulator …``: run the local PluginLab emulator.

``plabdata emulator serve`` prints ``export`` lines (plugin id, secret, the four base URLs)
before it starts serving, so ``eval "$(plabdata emulator serve … | head -6)"`` in another
shell — or a copy-paste — points any PluginLab client at it.
"""

from __future__ import annotations

from pathlib import Path

import click

from plabdata.cli._base import errors_to_exit, main
from plabdata.emulator.faults import Faults, FaultsInvalid
from plabdata.emulator.profile import OVER_CAP_CHOICES, Profile, ProfileInvalid
from plabdata.emulator.server import SECRET_ENV, serve


@main.group()
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
    default=Profile().page_cap,
    show_default=True,
    help="Largest page GET /members serves: 50 (PluginLab's RESTful API article) or 100 "
    "(its Python SDK page).",
)
@click.option(
    "--over-cap",
    type=click.Choice(OVER_CAP_CHOICES),
    default=Profile().over_cap,
    show_default=True,
    help="A limit above the cap: reject it with 400, or serve a short page silently.",
)
@click.option("--plugin-id", help="Plugin id to serve (default: the stored one, or plg_emulator).")
@click.option(
    "--secret",
    envvar=SECRET_ENV,
    help=f"Admin secret (default: the stored one, or random). Also read from {SECRET_ENV}.",
)
@errors_to_exit
def serve_command(
    host: str,
    port: int,
    db: Path | None,
    seed: int,
    random_seed: int,
    latency_ms: float,
    jitter_ms: float,
    error_rate: float,
    rate_limit: float | None,
    burst: float | None,
    drop_rate: float,
    page_cap: int,
    over_cap: str,
    plugin_id: str | None,
    secret: str | None,
) -> None:
    """Serve the emulator until Ctrl-C, after printing the settings as export lines."""
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
        profile = Profile(page_cap=page_cap, over_cap=over_cap)  # type: ignore[arg-type]
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
            echo=click.echo,
        )
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another emulator running there? pick another --port, or 0 for any)"
        ) from None
    except KeyboardInterrupt:
        pass
