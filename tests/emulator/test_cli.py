"""``plabdata emulator serve`` as a user runs it, and ``running(mode="process")``."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import click
import httpx
import jwt
import pluginlab_admin
import pytest

from plabdata.config import ENV_SECRET, Settings
from plabdata.emulator import PLANS, Profile, official_app, running


def _plabdata() -> list[str]:
    script = Path(sys.executable).with_name("plabdata")
    found = str(script) if script.exists() else shutil.which("plabdata")
    assert found, "the plabdata console script is installed"
    return [found]


@contextmanager
def _serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if k != "PLABDATA_EMULATOR_SECRET"}
    process = subprocess.Popen(
        [*_plabdata(), "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for _ in range(6):
            line = process.stdout.readline()
            assert line.startswith("export "), line
            name, _, value = line.strip().removeprefix("export ").partition("=")
            exports[name] = value
        yield process, exports
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _official(settings: Settings) -> pluginlab_admin.App:
    return official_app(settings)


def _count_members(app: pluginlab_admin.App) -> int:
    auth, cursor, count = app.get_auth(), None, 0
    while True:
        page = auth.get_members(limit=50, start_after=cursor)
        count += len(page.items)
        cursor = page.next_page_cursor
        if cursor is None:
            return count


def _wait_ready(settings: Settings) -> None:
    # The export lines come before uvicorn starts: wait for the first answer.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(settings.auth_url + "/_emulator/health")
            return
        except httpx.TransportError:
            time.sleep(0.01)
    raise AssertionError("the emulator never answered")


def test_serve_prints_exports_and_serves_seeded_members() -> None:
    with _serve("--seed", "2000") as (process, exports):
        assert set(exports) == {
            "PLUGINLAB_PLUGIN_ID",
            "PLUGINLAB_SECRET",
            "PLUGINLAB_AUTH_URL",
            "PLUGINLAB_CERT_URL",
            "PLUGINLAB_EVENT_URL",
            "PLUGINLAB_MONETIZATION_URL",
        }
        settings = Settings.from_env(exports)
        assert settings.cert_url == settings.auth_url + "/admin/v1/cert"
        assert settings.monetization_url == settings.auth_url + "/v1"
        _wait_ready(settings)
        assert _count_members(_official(settings)) == 2000
        assert process.poll() is None
    assert process.returncode == 0


def test_serve_on_a_db_keeps_its_exports(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    with _serve("--db", db, "--seed", "5") as (_, first):
        _wait_ready(Settings.from_env(first))
    with _serve("--db", db, "--seed", "5") as (_, second):
        settings = Settings.from_env(second)
        _wait_ready(settings)
        assert _count_members(_official(settings)) == 5
    assert first[ENV_SECRET] == second[ENV_SECRET]
    assert first["PLUGINLAB_PLUGIN_ID"] == second["PLUGINLAB_PLUGIN_ID"]


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [*_plabdata(), "emulator", "serve", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode != 0
    assert "cannot listen on 127.0.0.1:" + port in result.stderr
    assert result.stdout == ""


def test_bad_fault_option_is_a_usage_error() -> None:
    result = subprocess.run(
        [*_plabdata(), "emulator", "serve", "--port", "0", "--error-rate", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "error_rate" in result.stderr


def test_serve_plays_the_page_reading_given_on_the_command_line() -> None:
    with _serve("--seed", "150", "--page-cap", "100", "--over-cap", "short") as (_, exports):
        settings = Settings.from_env(exports)
        _wait_ready(settings)
        profile = httpx.get(settings.auth_url + "/_emulator/profile").json()
        assert profile == Profile(page_cap=100, over_cap="short").to_json()
        page = httpx.get(
            f"{settings.auth_url}/admin/plugins/{settings.plugin_id}/members?limit=150",
            headers=settings.headers(),
        ).json()
        assert len(page["items"]) == 100 and page["nextPageToken"] is not None
        assert _count_members(_official(settings)) == 150


def test_serve_has_an_option_for_every_profile_setting() -> None:
    options = {
        "--issuer": "https://issuer.example",
        "--user-claims": "snake",
        "--event-response": "no-content",
        "--min-password-length": "1",
        "--page-cap": "60",
        "--over-cap": "reject",
    }
    # One option per Profile field, named after it: a new setting fails here until it has one.
    assert {"--" + field.name.replace("_", "-") for field in fields(Profile)} == set(options)
    with _serve(*itertools.chain.from_iterable(options.items())) as (_, exports):
        settings = Settings.from_env(exports)
        _wait_ready(settings)
        served = Profile.from_json(httpx.get(settings.auth_url + "/_emulator/profile").json())
        assert served == Profile(
            page_cap=60,
            issuer="https://issuer.example",
            user_claims="snake",
            event_response="no-content",
            min_password_length=1,
        )
        auth = _official(settings).get_auth()
        member = auth.create_member("cli@example.com", "12345")  # [PYDOC]'s password
        event = httpx.post(
            settings.event_url + "/events/create-custom",
            headers=settings.headers(),
            json={"eventSource": "cli", "memberId": member.id},
        )
        assert event.status_code == 204
        token = httpx.post(
            settings.auth_url + "/_emulator/tokens", json={"memberId": member.id}
        ).json()["token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == "https://issuer.example"
        assert claims["user"] == {"email": "cli@example.com", "plan_id": PLANS["free"].plan_id}


def test_every_serve_option_has_help_and_profile_options_cite_a_source() -> None:
    from plabdata.emulator.cli import serve_command

    profile_options = {"--" + field.name.replace("_", "-") for field in fields(Profile)}
    for param in serve_command.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        assert param.help, param.name
        if set(param.opts) & profile_options:
            assert re.search(r"\[(REST|PYDOC|SDK041|TOK1|TOK2)\]|no source", param.help), param.opts


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        (["--page-cap", "101"], "page_cap"),
        (["--page-cap", "0"], "page_cap"),
        (["--min-password-length", "0"], "min_password_length"),
        (["--issuer", " "], "issuer"),
        (["--user-claims", "kebab"], "--user-claims"),
    ],
)
def test_bad_profile_option_is_a_usage_error(args: list[str], setting: str) -> None:
    result = subprocess.run(
        [*_plabdata(), "emulator", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert setting in result.stderr
    assert result.stdout == ""


def test_running_in_a_child_process() -> None:
    profile = Profile(page_cap=100, user_claims="snake")
    with running(mode="process", seed=25, secret="child-secret", profile=profile) as emu:
        assert emu.secret.reveal() == "child-secret"
        assert emu.profile() == profile
        assert _count_members(_official(emu.settings)) == 25
        emu.set_faults(error_rate=1.0)
        with pytest.raises(Exception, match="injected-fault"):
            _official(emu.settings).get_auth().get_members()
        assert emu.stats()["injectedErrors"] == 1
