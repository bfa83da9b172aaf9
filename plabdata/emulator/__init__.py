"""A local, offline PluginLab: the admin API's wire contract served by starlette + uvicorn.

The official ``pluginlab_admin`` client and plabdata's own client work against it unchanged.
Faults (latency, 5xx errors, a rate limit, writes whose response is lost) are injectable
and reproducible from a seed; state lives in SQLite (in memory, or a file that survives a
restart). Where PluginLab's own documents disagree or say nothing (page cap, token claims,
the custom-event answer, the password rule…), a :class:`Profile` picks the reading to play;
``docs/emulator.md`` lists every behaviour with its source.

    >>> from plabdata.emulator import running
    >>> with running(seed=50) as emu:                     # doctest: +SKIP
    ...     print(emu.settings.members_url)
"""

from plabdata.emulator.app import ConnectionDropped, create_app
from plabdata.emulator.faults import Faults
from plabdata.emulator.handle import EmulatorHandle, official_app, settings_for
from plabdata.emulator.model import PLANS, Plan
from plabdata.emulator.profile import Profile
from plabdata.emulator.seed import ANCHOR_MS, seed_members
from plabdata.emulator.server import running, serve
from plabdata.emulator.state import DEFAULT_PLUGIN_ID, EmulatorState

__all__ = [
    "ANCHOR_MS",
    "DEFAULT_PLUGIN_ID",
    "PLANS",
    "ConnectionDropped",
    "EmulatorHandle",
    "EmulatorState",
    "Faults",
    "Plan",
    "Profile",
    "create_app",
    "official_app",
    "running",
    "seed_members",
    "serve",
    "settings_for",
]
