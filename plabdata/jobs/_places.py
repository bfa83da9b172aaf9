"""Where plabdata keeps its own state: ``$PLABDATA_HOME`` and each job's default journal.

A default journal belongs to what it protects — the plugin and the job — never to an input's
file name. Named after the first log or the sheet, it would change with every dated export,
every reordering of the same files and every folder whose first file changes, and each new
name would re-send every row the old one had recorded. So there is one documented place::

    $PLABDATA_HOME/journals/<plugin id>/<job>.journal

``PLABDATA_HOME`` defaults to ``$XDG_DATA_HOME/plabdata``, else ``~/.local/share/plabdata``.

    >>> default_journal("plg_4f2a", "events", env={"PLABDATA_HOME": "/srv/plabdata"})
    PosixPath('/srv/plabdata/journals/plg_4f2a/events.journal')
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from plabdata.config import ENV_HOME
from plabdata.errors import ConfigError

__all__ = ["JOBS", "default_journal", "path_part", "plabdata_home"]

#: The bulk jobs that keep a journal.
JOBS = ("events", "members")
#: Longest path component written (file systems allow 255 bytes; leave room for sidecars).
_MAX_PART = 120


def plabdata_home(env: Mapping[str, str] | None = None) -> Path:
    """The folder of plabdata's own state (default journals).

    ``$PLABDATA_HOME`` when set, else ``$XDG_DATA_HOME/plabdata`` (when that is absolute, as
    the XDG spec requires), else ``~/.local/share/plabdata``.

    Raises:
        ConfigError: ``PLABDATA_HOME`` is a relative path: it would name another folder
            whenever the job runs from another working directory.

    Example:
        >>> plabdata_home({"PLABDATA_HOME": "/srv/plabdata"})
        PosixPath('/srv/plabdata')
    """
    env = os.environ if env is None else env
    home = env.get(ENV_HOME, "").strip()
    if home:
        path = Path(home).expanduser()
        if not path.is_absolute():
            raise ConfigError(
                f"{ENV_HOME}={home!r} is a relative path: it would name another folder from "
                "every working directory; set it to an absolute path"
            )
        return path
    xdg = env.get("XDG_DATA_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "plabdata"
    user_home = env.get("HOME", "").strip()
    return (Path(user_home) if user_home else Path.home()) / ".local" / "share" / "plabdata"


def path_part(text: str) -> str:
    """``text`` as one safe path component: never ``/``, never ``.`` or ``..``, never hidden.

    Characters other than letters, digits, ``-``, ``_``, ``.`` and ``~`` are percent-encoded
    (``%`` too, so two different ids never share a name), leading dots become ``%2E``, and an
    overlong text keeps its first characters plus a hash of the whole.

    Example:
        >>> path_part("../etc"), path_part("plg/a b")
        ('%2E%2E%2Fetc', 'plg%2Fa%20b')
    """
    if not text:
        raise ValueError("an empty name cannot be a path component")
    part = quote(text, safe="")
    stripped = part.lstrip(".")
    part = "%2E" * (len(part) - len(stripped)) + stripped
    if len(part) > _MAX_PART:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        part = f"{part[: _MAX_PART - 17]}~{digest}"
    return part


def default_journal(plugin_id: str, job: str, *, env: Mapping[str, str] | None = None) -> Path:
    """The default journal of ``job`` for ``plugin_id``: ``$PLABDATA_HOME/journals/<plugin
    id>/<job>.journal`` (the plugin id made safe by :func:`path_part`).

    Raises:
        ValueError: ``job`` is not one of :data:`JOBS`.

    Example:
        >>> default_journal("plg_4f2a", "members")
        PosixPath('/home/ada/.local/share/plabdata/journals/plg_4f2a/members.journal')
    """
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}: one of {', '.join(JOBS)}")
    return plabdata_home(env) / "journals" / path_part(plugin_id) / f"{job}.journal"
