"""The ``plabdata`` command group, shared option decorators and the one error boundary.

Library code raises :class:`~plabdata.errors.PlabdataError`; only here does it become a
message on stderr and an exit code (1 for a failed job, 2 for bad usage or settings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from plabdata.errors import ConfigError, PlabdataError, ValidationError

if TYPE_CHECKING:
    from plabdata.client._sync import Admin

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="plabdata")
def main() -> None:
    """plabdata: explore, bulk-sync and backfill a PluginLab plugin's member base.

    Settings come from PLUGINLAB_PLUGIN_ID, PLUGINLAB_SECRET and the PLUGINLAB_*_URL
    variables (``plabdata emulator serve`` prints them for its own server).
    """


def errors_to_exit(func: F) -> F:
    """Turn library errors into one clean line on stderr and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        except ValidationError as exc:
            click.secho(f"error: {exc}", err=True, fg="red")
            raise SystemExit(1) from None
        except PlabdataError as exc:
            click.secho(f"error: {type(exc).__name__}: {exc}", err=True, fg="red")
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


def connect_with_options(plugin_id: str | None, rate_limit: float | None) -> Admin:
    """An :class:`~plabdata.client.Admin` from the environment and :func:`connection_options`."""
    from plabdata.client._sync import connect

    return connect(plugin_id=plugin_id or None, max_rate=rate_limit or None)


def connection_options(func: F) -> F:
    """Options every command that talks to PluginLab shares (each also read from env)."""
    options = [
        click.option("--plugin-id", envvar="PLUGINLAB_PLUGIN_ID", help="Plugin id."),
        click.option(
            "--rate-limit",
            type=float,
            envvar="PLABDATA_RATE_LIMIT",
            help="Client-side ceiling in requests/s (backs off further on 429).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
