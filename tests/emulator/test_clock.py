"""The emulator's clock and churn: time passes forward only, and the member base lives."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from plabdata import Conflict, TokenVerifier
from plabdata.config import ENV_AUTH_URL
from plabdata.emulator import EmulatorHandle, running
from plabdata.emulator.cli import emulator as emulator_cli
from plabdata.emulator.model import month_bounds

DAY_MS = 86_400_000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def test_the_clock_starts_at_the_wall_clock_and_advances(emu: EmulatorHandle) -> None:
    before = emu.clock()
    assert abs(before["nowMs"] - _wall_ms()) < 5_000 and before["offsetMs"] == 0
    moved = emu.advance(days=7, churn=False)
    assert moved["nowMs"] - moved["fromMs"] == 7 * DAY_MS
    assert moved["steps"] == 1 and moved["churn"]["signups"] == 0
    assert abs(emu.clock()["nowMs"] - (_wall_ms() + 7 * DAY_MS)) < 5_000
    assert emu.advance(days=20, churn=False)["steps"] == 3  # at most a week per step


def test_every_time_the_emulator_stamps_follows_its_clock(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    emu.advance(days=30, churn=False)
    expected = _wall_ms() + 30 * DAY_MS
    created = api.post(f"{members_path}/members", json={"email": "ada@x.io", "password": "secret"})
    assert abs(created.json()["createdAtMs"] - expected) < 5_000
    # The Date header — what a client reads as the server's time — is the emulator's.
    served_at = parsedate_to_datetime(created.headers["date"]).timestamp() * 1000
    assert abs(served_at - expected) < 5_000
    assert len(created.headers.get_list("date")) == 1
    api.post("/events/create-custom", json={"eventSource": "web", "memberId": created.json()["id"]})
    assert abs(emu.events()[0]["receivedAtMs"] - expected) < 5_000


def test_quota_intervals_are_calendar_months_of_the_emulator_clock(
    emu: EmulatorHandle, api: httpx.Client
) -> None:
    (member_id,) = emu.seed(1)
    for _ in range(3):
        api.post("/events/create-custom", json={"eventSource": "web", "memberId": member_id})
    usage = api.get(f"/v1/admin/members/{member_id}/quota-usage").json()
    assert usage["usageCount"] >= 3
    _, month_end = month_bounds(emu.clock()["nowMs"])
    days = (month_end - emu.clock()["nowMs"]) / DAY_MS + 1
    emu.advance(days=days, churn=False)  # into the next month: a fresh interval
    usage = api.get(f"/v1/admin/members/{member_id}/quota-usage").json()
    assert usage["usageCount"] == 0
    _, end = month_bounds(emu.clock()["nowMs"])
    assert usage["resetInDays"] == -(-(end - emu.clock()["nowMs"]) // DAY_MS)


def test_the_clock_never_goes_back_while_the_emulator_holds_data(emu: EmulatorHandle) -> None:
    emu.seed(3)
    with pytest.raises(Conflict, match="only moves forward"):
        emu.set_clock(days_ago=10)
    with pytest.raises(Conflict):
        emu.set_clock(now_ms=emu.clock()["nowMs"] - 1_000)
    later = emu.set_clock(now_ms=emu.clock()["nowMs"] + DAY_MS)  # forward is always fine
    assert later["offsetMs"] > 0
    emu.reset()  # no data: back to the wall clock, and free to start earlier
    assert emu.clock()["offsetMs"] == 0
    start = emu.set_clock(days_ago=84)
    assert abs(start["nowMs"] - (_wall_ms() - 84 * DAY_MS)) < 5_000


@pytest.mark.parametrize(
    "body",
    [
        {"days": 0},
        {"days": -1},
        {"days": "7"},
        {"days": True},
        {"days": 4000},
        {"days": 7, "churn": "yes"},
        {"days": 7, "hours": 1},
    ],
)
def test_advance_validation(emu: EmulatorHandle, body: dict[str, object]) -> None:
    answer = httpx.post(f"{emu.url}/_emulator/clock/advance", json=body)
    assert answer.status_code == 400, answer.text
    assert emu.clock()["offsetMs"] == 0


def test_set_clock_validation(emu: EmulatorHandle) -> None:
    for body in ({}, {"nowMs": 1, "daysAgo": 1}, {"daysAgo": -1}, {"nowMs": "soon"}):
        answer = httpx.put(f"{emu.url}/_emulator/clock", json=body)
        assert answer.status_code == 400, body


def test_churn_changes_the_member_base_like_a_live_plugin(
    emu: EmulatorHandle, api: httpx.Client, members_path: str
) -> None:
    before = set(emu.seed(500, random_seed=3))
    # Four weekly steps: every kind of change shows, and upgrades outnumber downgrades, for
    # any plugin id (the session emulator's is random, and the member ids, hence the churn,
    # follow it: two weeks had upgrades <= downgrades for 1 plugin id in 100, four weeks for
    # none in 150).
    moved = emu.advance(days=28, random_seed=1)
    counts = moved["churn"]
    for key in ("signups", "deletions", "upgrades", "verified", "events"):
        assert counts[key] > 0, (key, counts)
    assert counts["upgrades"] > counts["downgrades"]
    assert moved["members"] == 500 + counts["signups"] - counts["deletions"]
    after = []
    cursor = None
    while True:
        params = {"limit": "50", **({"startAfter": cursor} if cursor else {})}
        page = api.get(f"{members_path}/members", params=params).json()
        after += page["items"]
        cursor = page["nextPageToken"]
        if not cursor:
            break
    ids = {m["id"] for m in after}
    # New members signed up inside the weeks that passed (not at their end); now and then
    # one has the email, hence the id, of a member deleted meanwhile: they came back.
    # A member who signed up in one step and was deleted in a later one counts as a signup
    # and as a deletion, and shows in neither list.
    joined = [m for m in after if m["createdAtMs"] >= moved["fromMs"]]
    assert all(m["createdAtMs"] < moved["nowMs"] for m in joined)
    assert len({m["createdAtMs"] for m in joined}) > 1
    came_back = [m for m in joined if m["id"] in before]
    fleeting = counts["signups"] - len(joined)
    assert 0 <= fleeting == counts["deletions"] - len(before - ids) - len(came_back)
    events = emu.events()
    recent = [e for e in events if e["receivedAtMs"] >= moved["fromMs"]]
    assert len(recent) == counts["events"]
    assert all(e["receivedAtMs"] < moved["nowMs"] for e in recent)
    plans = [emu.plan(m["id"])["plan"] for m in after]
    assert {"free", "pro", "unlimited"} <= set(plans)


def test_churn_is_reproducible_from_its_seed(emu: EmulatorHandle) -> None:
    def run() -> tuple[dict[str, int], list[str]]:
        emu.reset()
        emu.seed(150, random_seed=5)
        counts = emu.advance(days=14, random_seed=9)["churn"]
        ids = sorted(m["memberId"] or "" for m in emu.events())
        return counts, ids

    first, second = run(), run()
    assert first == second
    emu.reset()
    emu.seed(150, random_seed=5)
    assert emu.advance(days=14, random_seed=10)["churn"] != first[0]


def test_user_tokens_keep_the_wall_clock(emu: EmulatorHandle) -> None:
    (member_id,) = emu.seed(1)
    emu.advance(days=400, churn=False)
    token = emu.mint_token(member_id)
    verified = TokenVerifier(emu.settings).verify(token)
    assert verified.user.id == member_id


def test_running_can_start_the_clock_in_the_past(tmp_path: Path) -> None:
    with running(seed=20, start_days_ago=30, db=tmp_path / "emu.db") as emu:
        start = emu.clock()["nowMs"]
        assert abs(start - (_wall_ms() - 30 * DAY_MS)) < 5_000
        emu.advance(days=30, random_seed=2)
        assert abs(emu.clock()["nowMs"] - _wall_ms()) < 5_000
        offset = emu.clock()["offsetMs"]
    # The clock is kept with the data: a restart on the same file keeps its time.
    with running(db=tmp_path / "emu.db") as emu:
        assert emu.clock()["offsetMs"] == offset
        with pytest.raises(Conflict):
            emu.set_clock(days_ago=60)


def test_seeding_with_the_clock_in_the_past_signs_nobody_up_in_the_future() -> None:
    with running(seed=200, start_days_ago=365) as emu:
        now = emu.clock()["nowMs"]
        settings = emu.settings
        with httpx.Client(base_url=emu.url, headers=settings.headers()) as http:
            page = http.get(f"/admin/plugins/{emu.plugin_id}/members", params={"limit": 50})
        created = [m["createdAtMs"] for m in page.json()["items"]]
        assert max(created) <= now


def test_cli_advance_moves_a_running_emulator(
    emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.seed(50)
    runner = CliRunner()
    result = runner.invoke(emulator_cli, ["advance", "--days", "7", "--url", emu.url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("clock: ") and "signups" in result.output
    assert emu.clock()["offsetMs"] == 7 * DAY_MS
    monkeypatch.setenv(ENV_AUTH_URL, emu.url)
    result = runner.invoke(emulator_cli, ["advance", "--days", "1", "--no-churn"])
    assert result.exit_code == 0 and "(no churn)" in result.output
    assert emu.clock()["offsetMs"] == 8 * DAY_MS


def test_cli_advance_refuses_without_an_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_AUTH_URL, raising=False)
    runner = CliRunner()
    result = runner.invoke(emulator_cli, ["advance"])
    assert result.exit_code == 2 and ENV_AUTH_URL in result.output
    result = runner.invoke(emulator_cli, ["advance", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach the emulator" in result.output
    result = runner.invoke(emulator_cli, ["advance", "--days", "0", "--url", "http://x"])
    assert result.exit_code == 2


def test_serve_starts_days_ago_and_advance_brings_it_to_today() -> None:
    script = Path(sys.executable).with_name("plabdata")
    command = [str(script) if script.exists() else "plabdata", "emulator"]
    env = {k: v for k, v in os.environ.items() if k != "PLABDATA_EMULATOR_SECRET"}
    server = subprocess.Popen(
        [*command, "serve", "--port", "0", "--seed", "5", "--start-days-ago", "14"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        exports = dict(
            server.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(6)
        )
        url = exports[ENV_AUTH_URL]
        clock = httpx.get(f"{url}/_emulator/clock").json()
        assert abs(clock["offsetMs"] + 14 * DAY_MS) < 5_000
        moved = subprocess.run(
            [*command, "advance", "--days", "14", "--random-seed", "3"],
            capture_output=True,
            text=True,
            env={**env, ENV_AUTH_URL: url},
            timeout=60,
        )
        assert moved.returncode == 0, moved.stderr
        assert re.match(r"clock: \d{4}-\d\d-\d\dT[\d:.]+Z \(\+14 days\); \d+ signups", moved.stdout)
        assert abs(httpx.get(f"{url}/_emulator/clock").json()["offsetMs"]) < 5_000
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
