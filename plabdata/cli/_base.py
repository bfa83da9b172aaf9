"""The ``plabdata`` command group, shared option decorators and the one error boundary.

Library code raises :class:`~plabdata.errors.PlabdataError`; only here does it become a
message on stderr and an exit code (1 for a failed job, 2 for bad usage or settings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from plabdata._version import __version__
from plabdata.errors import ConfigError, PlabdataError, ValidationError

if TYPE_CHECKING:
    from plabdata.client._sync import Admin

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plabdata")
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


@dataclass(frozen=True)
class Api:
    """The options every command that talks to PluginLab shares (:func:`api_options`)."""

    plugin_id: str | None
    rate_limit: float | None
    timeout: float | None
    progress: bool

    def connect(self) -> Admin:
        """An :class:`~plabdata.Admin` from the environment, these options winning."""
        from plabdata.client._sync import connect

        return connect(
            plugin_id=self.plugin_id or None,
            max_rate=self.rate_limit or None,
            timeout=self.timeout or None,
        )


def api_options(func: F) -> F:
    """``--plugin-id``, ``--rate-limit``, ``--timeout`` and ``--progress/--no-progress`` on a
    command, handed to it as one ``api`` argument (each option also read from its env var)."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        plugin_id: str | None,
        rate_limit: float | None,
        timeout: float | None,
        progress: bool,
        **kwargs: Any,
    ) -> Any:
        return func(*args, api=Api(plugin_id, rate_limit, timeout, progress), **kwargs)

    options = [
        click.option(
            "--plugin-id", envvar="PLUGINLAB_PLUGIN_ID", help="Plugin id (PLUGINLAB_PLUGIN_ID)."
        ),
        click.option(
            "--rate-limit",
            type=click.FloatRange(min=0, min_open=True),
            envvar="PLABDATA_RATE_LIMIT",
            help="Client-side ceiling in requests/s (PLABDATA_RATE_LIMIT; backs off further "
            "on 429).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            envvar="PLABDATA_TIMEOUT",
            help="Total deadline of one request in seconds (PLABDATA_TIMEOUT; default 30).",
        ),
        click.option("--progress/--no-progress", default=True, help="Show progress bars."),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
