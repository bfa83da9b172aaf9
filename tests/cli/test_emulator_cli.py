"""``plabdata emulator token | plan | stats | reset`` against the session's running emulator:
what a person testing a plugin server with curl runs, checked through real HTTP."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plabdata
from plabdata.config import ENV_AUTH_URL
from plabdata.emulator import PLANS, EmulatorHandle
from plabdata.emulator.cli import emulator as emulator_cli

CONTROL_COMMANDS = [
    ["token", "ada@example.com"],
    ["plan", "ada@example.com"],
    ["stats"],
    ["reset"],
    ["advance", "--days", "1"],
]


def _run(emu: EmulatorHandle, *args: str) -> Result:
    result = CliRunner().invoke(emulator_cli, [*args, "--url", emu.url])
    # Whatever a command prints, it never shows the admin secret.
    assert emu.secret.reveal() not in result.output
    return result


def _create(emu: EmulatorHandle, email: str) -> str:
    with plabdata.connect(emu.settings) as admin:
        return admin.create_member(email, "correct horse battery").id


def _plabdata() -> str:
    script = Path(sys.executable).with_name("plabdata")
    found = str(script) if script.exists() else shutil.which("plabdata")
    assert found, "the plabdata console script is installed"
    return found


# ---------------------------------------------------------------------------- token


def test_token_for_an_email_is_accepted_by_verify_token(emu: EmulatorHandle) -> None:
    member_id = _create(emu, "ada@example.com")
    result = _run(emu, "token", " Ada@Example.COM ")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    token = result.stdout.removesuffix("\n")
    assert token.count(".") == 2 and "\n" not in token  # the token and nothing else
    payload = plabdata.verify_token(token, settings=emu.settings)
    assert payload.user.id == member_id and payload.user.email == "ada@example.com"
    assert payload.aud == f"plugin:{emu.plugin_id}:admin"
    assert payload.exp - payload.iat == 3600
    assert payload.user.plan_id == PLANS["free"].plan_id


def test_token_for_an_id_in_a_shell_reads_the_url_from_the_environment(
    emu: EmulatorHandle,
) -> None:
    member_id = _create(emu, "grace@example.com")
    env = {k: v for k, v in os.environ.items() if k != "PLUGINLAB_SECRET"}
    env[ENV_AUTH_URL] = emu.url  # as `eval "$(plabdata emulator serve | head -6)"` leaves it
    done = subprocess.run(
        [_plabdata(), "emulator", "token", member_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # What TOKEN=$(plabdata emulator token …) captures: the token alone.
    token = done.stdout.removesuffix("\n")
    payload = plabdata.verify_token(token, settings=emu.settings)
    assert payload.user.id == member_id and payload.uid == member_id


def test_token_options_reach_the_minted_token(emu: EmulatorHandle) -> None:
    _create(emu, "ada@example.com")
    short = _run(emu, "token", "ada@example.com", "--expires-in", "120")
    payload = plabdata.verify_token(short.stdout.strip(), settings=emu.settings)
    assert payload.exp - payload.iat == 120
    expired = _run(emu, "token", "ada@example.com", "--expires-in", "-600")
    with pytest.raises(plabdata.TokenExpired):
        plabdata.verify_token(expired.stdout.strip(), settings=emu.settings)
    other = _run(emu, "token", "ada@example.com", "--claim", "aud=plugin:someone-else:admin")
    with pytest.raises(plabdata.TokenAudienceError):
        plabdata.verify_token(other.stdout.strip(), settings=emu.settings)
    # A JSON value is read as JSON: a user object is merged into the generated one.
    custom = _run(emu, "token", "ada@example.com", "--claim", 'user={"planId": "custom"}')
    payload = plabdata.verify_token(custom.stdout.strip(), settings=emu.settings)
    assert payload.user.plan_id == "custom" and payload.user.email == "ada@example.com"


@pytest.mark.parametrize("claim", ["no-equals-sign", "=5", "member_id=mem_x"])
def test_a_malformed_claim_is_a_usage_error(emu: EmulatorHandle, claim: str) -> None:
    _create(emu, "ada@example.com")
    result = _run(emu, "token", "ada@example.com", "--claim", claim)
    assert result.exit_code == 2 and "--claim" in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("member", ["nobody@example.com", "mem_0000000000000000000000000000"])
def test_an_unknown_member_is_a_clear_error_and_no_token(emu: EmulatorHandle, member: str) -> None:
    _create(emu, "ada@example.com")
    result = _run(emu, "token", member)
    assert result.exit_code == 1
    assert result.stdout == ""  # TOKEN=$(…) stays empty; the shell sees the exit code
    assert f"has no member with {'email' if '@' in member else 'id'} {member!r}" in result.stderr
    assert isinstance(result.exception, SystemExit)  # a click error, not a crash


# ---------------------------------------------------------------------------- plan


def test_plan_shows_and_sets_a_members_plan(emu: EmulatorHandle) -> None:
    member_id = _create(emu, "ada@example.com")
    shown = _run(emu, "plan", "ada@example.com")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == (
        f"{member_id}: free (planId {PLANS['free'].plan_id}, priceId none; 100 events a month)\n"
    )
    moved = _run(emu, "plan", member_id, "--set", "pro")
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.startswith(f"{member_id}: free -> pro (planId {PLANS['pro'].plan_id}")
    assert "5,000 events a month" in moved.stdout
    assert emu.plan(member_id)["plan"] == "pro"
    again = _run(emu, "plan", "ada@example.com", "--set", "pro")
    assert again.stdout.startswith(f"{member_id}: already pro ")
    raw = _run(emu, "plan", "ada@example.com", "--set", "unlimited", "--json")
    assert json.loads(raw.stdout) == emu.plan(member_id)
    assert emu.plan(member_id)["isUnlimited"] is True
    # The next token shows the new plan, as PluginLab's would.
    token = _run(emu, "token", "ada@example.com").stdout.strip()
    assert plabdata.verify_token(token, settings=emu.settings).user.plan_id == (
        PLANS["unlimited"].plan_id
    )


def test_plan_refuses_an_unknown_plan_or_member(emu: EmulatorHandle) -> None:
    member_id = _create(emu, "ada@example.com")
    bad_plan = _run(emu, "plan", member_id, "--set", "gold")
    assert bad_plan.exit_code == 2 and "gold" in bad_plan.output
    assert emu.plan(member_id)["plan"] == "free"
    unknown = _run(emu, "plan", "nobody@example.com", "--set", "pro")
    assert unknown.exit_code == 1
    assert "has no member with email 'nobody@example.com'" in unknown.stderr


# ---------------------------------------------------------------------------- stats, reset


def test_stats_prints_counts_readably_and_raw_with_json(emu: EmulatorHandle) -> None:
    member_id = _create(emu, "ada@example.com")
    with plabdata.connect(emu.settings) as admin:
        for source in ("WEB_UI", "WEB_UI", "API"):
            admin.create_event(source, member_id=member_id)
    result = _run(emu, "stats")
    assert result.exit_code == 0, result.output
    lines = dict(line.split("  ", 1) for line in result.stdout.splitlines())
    assert lines["members"].strip() == "1"
    assert lines["events"].strip() == "3 (by source: API 1, WEB_UI 2; 1 members)"
    assert lines["requests"].strip().startswith("4 (by status: ")
    assert set(lines) >= {"identities", "rate limited", "injected errors", "internal errors"}
    raw = _run(emu, "stats", "--json")
    assert json.loads(raw.stdout) == emu.stats()  # control calls are not counted


def test_reset_empties_the_emulator_and_can_reseed(emu: EmulatorHandle) -> None:
    emu.seed(5)
    plugin_id = emu.health()["pluginId"]
    result = _run(emu, "reset")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"reset the emulator at {emu.url}\n"
    assert emu.stats()["members"] == 0 and emu.stats()["events"] == 0
    reseeded = _run(emu, "reset", "--seed", "3", "--random-seed", "7")
    assert reseeded.stdout == f"reset the emulator at {emu.url}; added 3 demo members\n"
    assert emu.stats()["members"] == 3
    assert emu.health()["pluginId"] == plugin_id  # credentials stay: exports still work


# ---------------------------------------------------------------------------- no emulator


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _NotAnEmulator(http.server.BaseHTTPRequestHandler):
    """A web server that is up but is no emulator: 404 everywhere, a page at /_emulator/."""

    def do_GET(self) -> None:
        status = 200 if self.path == "/_emulator/health" and self.server.page else 404  # type: ignore[attr-defined]
        body = b"<html>hello</html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["404", "html-page"])
def web_server(request: pytest.FixtureRequest) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAnEmulator)
    server.page = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("command", CONTROL_COMMANDS, ids=lambda c: c[0])
def test_a_closed_port_is_a_clean_error(command: list[str]) -> None:
    url = _closed_port_url()
    result = CliRunner().invoke(emulator_cli, [*command, "--url", url])
    assert result.exit_code == 1
    assert f"Error: cannot reach the emulator at {url}" in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", CONTROL_COMMANDS, ids=lambda c: c[0])
def test_a_server_that_is_not_an_emulator_is_a_clean_error(
    command: list[str], web_server: str
) -> None:
    result = CliRunner().invoke(emulator_cli, [*command, "--url", web_server])
    assert result.exit_code == 1
    assert f"{web_server} is not a plabdata emulator (GET /_emulator/health " in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_no_url_and_no_environment_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_AUTH_URL, raising=False)
    for command in CONTROL_COMMANDS:
        result = CliRunner().invoke(emulator_cli, command)
        assert result.exit_code == 2 and ENV_AUTH_URL in result.stderr, command
