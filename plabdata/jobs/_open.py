"""``open_journal``: the one way a bulk job opens its journal.

It decides *which* file (the one given, or the job's default place), binds it to what it
protects — the plugin id, the job and the base URL of the API the job writes to — and refuses
a journal of another: an events journal handed to a member import, another plugin's, or one
that recorded what another server (an emulator since stopped) received would otherwise make
the job skip, or re-send, the wrong rows.

    >>> journal = open_journal(admin, None, "events")  # the default place
    >>> journal.path
    PosixPath('/home/ada/.local/share/plabdata/journals/plg_4f2a/events.journal')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, overload

from plabdata.client._sync import Admin
from plabdata.config import Settings
from plabdata.errors import JournalError
from plabdata.jobs._journal import Journal
from plabdata.jobs._places import JOBS, default_journal

__all__ = ["JournalArg", "api_url_of", "journal_path", "open_journal"]

#: What the jobs accept as ``journal=``: an open journal, a path, or None (the default place).
JournalArg = Journal | str | os.PathLike[str] | None


def _settings(admin: Admin | Settings) -> Settings:
    return admin if isinstance(admin, Settings) else admin.settings


def api_url_of(admin: Admin | Settings, job: str) -> str:
    """The base URL ``job`` writes to: the events API for ``events``, the auth API (members)
    for ``members``. A journal records what *that* server received.

    Example:
        >>> api_url_of(admin, "events")
        'https://event.pluginlab.ai'
    """
    settings = _settings(admin)
    if job == "events":
        return settings.event_url
    if job == "members":
        return settings.auth_url
    raise ValueError(f"unknown job {job!r}: one of {', '.join(JOBS)}")


def journal_path(admin: Admin | Settings, journal: JournalArg, job: str) -> Path:
    """The file a job's ``journal=`` argument names, without opening it.

    Example:
        >>> journal_path(admin, None, "members")
        PosixPath('/home/ada/.local/share/plabdata/journals/plg_4f2a/members.journal')
    """
    if isinstance(journal, Journal):
        return journal.path
    if journal is None:
        return default_journal(_settings(admin).plugin_id, job)
    if not os.fspath(journal).strip():
        raise JournalError("the journal path is empty (an unset variable?): name a file")
    return Path(journal)


def _private_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents readable by the user only (a journal lists
    member emails and ids)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        try:
            each.mkdir(mode=0o700)
        except FileExistsError:
            pass  # made meanwhile by another run
        except OSError as exc:
            raise JournalError(f"cannot create the journal folder {each}: {exc.strerror}") from exc


@overload
def open_journal(
    admin: Admin | Settings, journal: JournalArg, job: str, *, create: Literal[True] = ...
) -> Journal: ...
@overload
def open_journal(
    admin: Admin | Settings, journal: JournalArg, job: str, *, create: bool
) -> Journal | None: ...
def open_journal(
    admin: Admin | Settings, journal: JournalArg, job: str, *, create: bool = True
) -> Journal | None:
    """Open (or check) the journal of ``job`` for the admin's plugin and API.

    Args:
        admin: The connection (or its settings): the plugin id and the API's base URL the
            journal is bound to.
        journal: An open :class:`Journal` (checked and returned as is: the caller keeps it),
            a path, or None for the job's default place
            (``$PLABDATA_HOME/journals/<plugin id>/<job>.journal``, folders created).
        job: ``"events"`` or ``"members"``.
        create: Create the journal when absent. False (a dry run): an absent journal gives
            None, and nothing is created.

    Returns:
        The open journal (close it when it was not passed in), or None (see ``create``).

    Raises:
        JournalError: The journal is bound to another plugin, job or API, is held by another
            run, is damaged or empty, or is not a journal.

    Example:
        >>> with open_journal(admin, "events.journal", "events") as journal:
        ...     journal.counts()
    """
    settings = _settings(admin)
    url = api_url_of(settings, job)
    if isinstance(journal, Journal):
        if journal.closed:
            raise JournalError(f"journal {journal.path} is closed: open it again")
        journal.check_binding(settings.plugin_id, job, url)
        return journal
    path = journal_path(settings, journal, job)
    if not create and not os.path.lexists(path):
        return None  # nothing was ever recorded there; a dry run creates nothing
    if journal is None:
        _private_folders(path.parent)
    return Journal(path, plugin_id=settings.plugin_id, job=job, api_url=url, create=create)
