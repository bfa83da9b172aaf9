"""``plabdata members snapshot`` and ``plabdata report`` against the emulator, as cron and a
person run them: a snapshot, a week of churn, another snapshot, then the HTML report."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.dataset as ds
from click.testing import CliRunner

import plabdata
from plabdata.cli import main
from plabdata.emulator import EmulatorHandle
from plabdata.members._snapshots import write_snapshot

PNG = b"\x89PNG\r\n\x1a\n"
SNAPSHOT_LINE = r"^snapshot \d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ: "


def _env(emu: EmulatorHandle) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in emu.settings.export_lines())


def _run(emu: EmulatorHandle, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args], env=_env(emu))
    return result.exit_code, result.stdout, result.stderr


class _Page(HTMLParser):
    """Image sources, and every other attribute that would fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.fetching: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            elif name in {"src", "href", "srcset", "data", "poster", "action"}:
                self.fetching.append(f"{tag} {name}={value}")


def _secrets(emu: EmulatorHandle) -> list[str]:
    """The admin secret and every identity token the emulator holds."""
    with plabdata.connect(emu.settings) as admin:
        identities = plabdata.load_identities(admin, include_tokens=True, progress=False)
    tokens = [t for c in ("access_token", "refresh_token") for t in identities[c].dropna()]
    assert len(tokens) > 10
    return [emu.secret.reveal(), *tokens]


def test_snapshot_a_week_of_churn_snapshot_again_then_the_report(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    emu.seed(80, random_seed=2)
    store = tmp_path / "snapshots"
    plans = ["--plan-name", "100=free", "--plan-name", "5000=pro"]
    code, out, err = _run(emu, "members", "snapshot", "--store", str(store), *plans)
    assert code == 0, err
    # One line on stdout, nothing on stderr (no progress bar off a terminal): cron mails stay
    # empty unless something fails.
    assert out.count("\n") == 1 and err == ""
    assert re.match(SNAPSHOT_LINE + r"80 members \(", out), out
    assert "free" in out and out.rstrip().endswith("(1 snapshot)")
    # A week passes on the emulator, with signups, deletions, plan moves, new identities…
    moved = httpx.post(
        f"{emu.url}/_emulator/clock/advance", json={"days": 7, "randomSeed": 1}, timeout=60
    )
    assert moved.status_code == 200, moved.text
    churn = moved.json()["churn"]
    assert churn["signups"] > 0
    # …and the next snapshot (no plan names: the store remembers them) lands beside the first.
    code, out, err = _run(emu, "members", "snapshot", "--store", str(store), "--no-progress")
    assert code == 0, err
    assert out.rstrip().endswith("(2 snapshots)") and "free" in out
    assert f"{moved.json()['members']} members" in out
    listed = plabdata.list_snapshots(store)
    gap = listed["snapshot_at"].iloc[1] - listed["snapshot_at"].iloc[0]
    assert abs(gap.total_seconds() - 7 * 86_400) < 120  # the emulator's clock, not ours
    # One step of churn: its signups and deletions are exactly who joined and left.
    changes = plabdata.member_changes(store)["change"].value_counts()
    assert (changes["joined"], changes.get("left", 0)) == (churn["signups"], churn["deletions"])

    report = tmp_path / "out" / "report.html"
    code, out, err = _run(emu, "report", "--store", str(store), "--out", str(report))
    assert code == 0, err
    assert out.startswith(f"wrote {report} (") and "2 snapshots" in out
    text = report.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert len(page.images) >= 6  # today's base and five history charts, all embedded
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert page.fetching == [] and "script" not in page.tags
    assert "http://" not in text and "https://" not in text
    # No secret anywhere: not in the store's files, the report or what was printed.
    files = [p for p in store.rglob("*") if p.is_file()] + [report]
    assert len(files) == 4  # metadata, two snapshot files, the report
    for secret in _secrets(emu):
        for path in files:
            assert secret.encode() not in path.read_bytes(), (path.name, secret[:6])
        assert secret not in out
    # Any Parquet reader opens the store as it is.
    table = ds.dataset(store, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 80 + int(moved.json()["members"])


def test_the_default_store_is_the_plugins_own(
    emu: EmulatorHandle, plabdata_home: Path, tmp_path: Path
) -> None:
    emu.seed(15)
    code, out, err = _run(emu, "members", "snapshot")
    assert code == 0, err
    default = plabdata_home / "snapshots" / emu.plugin_id
    assert f"→ {default} (1 snapshot)" in out
    # `report` finds the same store from PLUGINLAB_PLUGIN_ID alone (no secret needed).
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", "--out", str(report)], env={"PLUGINLAB_PLUGIN_ID": emu.plugin_id}
    )
    assert result.exit_code == 0, result.output
    assert "One snapshot so far" in report.read_text(encoding="utf-8")


def test_snapshot_failures_exit_non_zero_and_leave_the_store_alone(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    emu.seed(5)
    store = tmp_path / "snapshots"
    env = {**_env(emu), "PLUGINLAB_AUTH_URL": "http://127.0.0.1:9", "PLABDATA_TIMEOUT": "5"}
    result = CliRunner().invoke(main, ["members", "snapshot", "--store", str(store)], env=env)
    assert result.exit_code == 1 and result.stdout == ""
    assert "could not connect to http://127.0.0.1:9" in result.stderr
    assert not list(store.glob("snapshot=*"))
    # A store of another plugin is refused before anything is loaded.
    other = tmp_path / "other"
    base = pd.DataFrame({"member_id": ["mem_1"], "email": ["a@example.com"]}, dtype="string")
    write_snapshot(base, other, at="2026-12-01", plugin_id="plg_other")
    code, _, err = _run(emu, "members", "snapshot", "--store", str(other))
    assert code == 2 and "holds snapshots of plugin plg_other" in err
    assert len(plabdata.list_snapshots(other)) == 1
    code, _, err = _run(emu, "members", "snapshot", "--plan-name", "pro")
    assert code == 2 and "LIMIT=NAME" in err


def test_report_refuses_what_it_must_not_overwrite_and_an_empty_store(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    emu.seed(10)
    store = tmp_path / "snapshots"
    assert _run(emu, "members", "snapshot", "--store", str(store))[0] == 0
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    members = tmp_path / "members.parquet"
    members.write_bytes(b"PAR1 an input, not a report")
    for out, says in (
        (members, "not HTML"),  # an existing input
        (store, "directory"),  # the store itself
        (store / "report.html", "inside the snapshot store"),
        (tmp_path / "report.pdf", "not HTML"),
    ):
        code, _, err = _run(emu, "report", "--store", str(store), "--out", str(out))
        assert code == 2 and says in err, (out, err)
    assert members.read_bytes() == b"PAR1 an input, not a report"
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    # An empty store, a missing one, and no store at all: say what to run first.
    (tmp_path / "empty").mkdir()
    for where in ("empty", "missing"):
        code, _, err = _run(
            emu, "report", "--store", str(tmp_path / where), "--out", str(tmp_path / "r.html")
        )
        assert code == 2 and "run `plabdata members snapshot --store" in err, err
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "r.html")], env={})
    assert result.exit_code == 2 and "--store" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_cron_line_is_one_line_of_output_and_exit_code_zero(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    emu.seed(20)
    env = _env(emu)  # and nothing else: cron's environment is that bare
    env["PATH"] = str(Path(sys.executable).parent)
    env["PLABDATA_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "plabdata", "members", "snapshot"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.count("\n") == 1
    assert re.match(SNAPSHOT_LINE + "20 members", done.stdout), done.stdout
    assert str(tmp_path / "home" / "snapshots" / emu.plugin_id) in done.stdout
