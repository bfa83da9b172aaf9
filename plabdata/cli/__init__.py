"""``plabdata`` command line: a thin layer over the library, one subcommand per job."""

# Each module registers its commands on ``main`` when imported.
from plabdata.cli import demo as _demo  # noqa: F401
from plabdata.cli import emulator as _emulator  # noqa: F401
from plabdata.cli import events as _events  # noqa: F401
from plabdata.cli import history as _history  # noqa: F401
from plabdata.cli import journal as _journal  # noqa: F401
from plabdata.cli import members as _members  # noqa: F401
from plabdata.cli import members_import as _members_import  # noqa: F401
from plabdata.cli import notebooks as _notebooks  # noqa: F401
from plabdata.cli import tokens as _tokens  # noqa: F401
from plabdata.cli._base import main

__all__ = ["main"]
