"""open_journal: the default place, the binding to plugin, job and API, and what both jobs
do with it (apply_plan and backfill_events refuse a journal that is not theirs)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from plabdata.client._sync import Admin
from plabdata.config import Settings
from plabdata.emulator import EmulatorHandle
from plabdata.errors import JournalError
from plabdata.events._backfill import backfill_events
from plabdata.jobs._journal import Journal
from plabdata.jobs._open import journal_path, open_journal
from plabdata.members._apply import apply_plan
from plabdata.members._loaders import load_members
from plabdata.members._plan import plan_member_changes
from plabdata.members._sheet import read_member_sheet

SETTINGS = Settings(plugin_id="plg_a", secret="s", auth_url="http://a", event_url="http://e")


def test_none_is_the_default_place_created_private(plabdata_home: Path) -> None:
    with open_journal(SETTINGS, None, "events") as journal:
        assert journal.path == plabdata_home / "journals" / "plg_a" / "events.journal"
        assert journal.api_url == "http://e"
    assert journal_path(SETTINGS, None, "members") == journal.path.with_name("members.journal")
    for folder in (plabdata_home / "journals", journal.path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_dry_run_creates_nothing(plabdata_home: Path, tmp_path: Path) -> None:
    assert open_journal(SETTINGS, None, "events", create=False) is None
    assert open_journal(SETTINGS, tmp_path / "j.journal", "events", create=False) is None
    assert list(plabdata_home.iterdir()) == [] and list(tmp_path.iterdir()) == []


def test_refuses_another_plugins_another_jobs_and_another_apis_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    open_journal(SETTINGS, path, "events").close()
    with pytest.raises(JournalError, match=r"plugin 'plg_a' \(job 'events'\), not plugin 'plg_b'"):
        open_journal(SETTINGS.replace(plugin_id="plg_b"), path, "events")
    with pytest.raises(JournalError, match=r"\(job 'events'\), not plugin 'plg_a' \(job 'members'"):
        open_journal(SETTINGS, path, "members")
    elsewhere = SETTINGS.replace(event_url="http://127.0.0.1:9999")
    with pytest.raises(JournalError, match=r"records what http://e received .* not http://127"):
        open_journal(elsewhere, path, "events")
    # The same checks for an open Journal handed in, and a refusal keeps no lock.
    with Journal(path, plugin_id="plg_a", job="events") as held:
        with pytest.raises(JournalError, match="not http://127"):
            open_journal(elsewhere, held, "events")
        assert open_journal(SETTINGS, held, "events") is held


def test_a_journal_without_an_api_adopts_the_first(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    Journal(path, plugin_id="plg_a", job="events").close()  # as an older plabdata made it
    open_journal(SETTINGS, path, "events").close()
    with pytest.raises(JournalError, match="records what http://e received"):
        open_journal(SETTINGS.replace(event_url="http://other"), path, "events")


def test_an_empty_journal_path_is_refused() -> None:
    with pytest.raises(JournalError, match="empty"):
        open_journal(SETTINGS, "", "events")
    with pytest.raises(JournalError, match="empty"):
        Journal("", plugin_id="p", job="events")


# --------------------------------------------------------------------------- both jobs


@pytest.fixture
def admin(emu: EmulatorHandle) -> Iterator[Admin]:
    emu.set_profile(page_cap=100)
    emu.seed(4)
    with Admin(emu.settings.replace(rate_limit=2000)) as client:
        yield client


def test_apply_plan_refuses_an_events_journal_and_another_plugins(
    admin: Admin, emu: EmulatorHandle, tmp_path: Path
) -> None:
    sheet = read_member_sheet(pd.DataFrame({"email": ["new@example.com"], "name": ["New"]}))
    plan = plan_member_changes(sheet, load_members(admin, progress=False), plugin_id=emu.plugin_id)
    events = tmp_path / "events.journal"
    Journal(events, plugin_id=emu.plugin_id, job="events").close()
    with pytest.raises(JournalError, match="job 'events'"):
        apply_plan(admin, plan, journal=events, progress=False)
    other = tmp_path / "other.journal"
    Journal(other, plugin_id="plg_someone_else", job="members").close()
    with pytest.raises(JournalError, match="plg_someone_else"):
        apply_plan(admin, plan, journal=other, progress=False)
    assert emu.stats()["members"] == 4  # refused before anything was sent


def test_library_none_and_the_cli_default_are_one_journal(
    admin: Admin, emu: EmulatorHandle, tmp_path: Path, plabdata_home: Path
) -> None:
    sheet = read_member_sheet(pd.DataFrame({"email": ["new@example.com"], "name": ["New"]}))
    plan = plan_member_changes(sheet, load_members(admin, progress=False), plugin_id=emu.plugin_id)
    apply_plan(admin, plan, progress=False)  # journal=None: the default place
    default = plabdata_home / "journals" / emu.plugin_id / "members.journal"
    with Journal(default, plugin_id=emu.plugin_id, job="members") as journal:
        assert journal.counts() == {"done": 1}
        assert journal.api_url == emu.settings.auth_url
    members = load_members(admin, progress=False)
    log = tmp_path / "log.csv"
    pd.DataFrame(
        {"timestamp": ["2026-10-01T00:00:00Z"], "email": [members["email"].iloc[0]]}
    ).to_csv(log, index=False)
    preview = backfill_events(
        admin, log, journal=None, dry_run=True, source_name="S", progress=False
    )
    assert preview.counts == {"would-send": 1}
    assert not (default.parent / "events.journal").exists()  # a dry run creates none
    sent = backfill_events(admin, log, journal=None, source_name="S", progress=False)
    again = backfill_events(admin, log, journal=None, source_name="S", progress=False)
    assert (sent.counts, again.counts) == ({"sent": 1}, {"already-done": 1})
    dry = backfill_events(admin, log, journal=None, dry_run=True, source_name="S", progress=False)
    assert dry.counts == {"already-done": 1}  # the preview reads the same journal
