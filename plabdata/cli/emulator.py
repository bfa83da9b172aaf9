"""``plabdata emulator …``: the emulator's own command group (see ``plabdata.emulator.cli``)."""

from plabdata.cli._base import main
from plabdata.emulator.cli import emulator

main.add_command(emulator)
