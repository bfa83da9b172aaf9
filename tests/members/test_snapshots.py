"""Snapshots of the member base: a dated, atomic, secret-free Parquet dataset per plugin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import plabdata
from plabdata import ConfigError
from plabdata.demo import PLAN_NAMES, emulator_admin
from plabdata.emulator import EmulatorHandle
from plabdata.members._snapshots import PAUSE_ENV, write_snapshot
from plabdata.members._store import METADATA_FILE, list_snapshots, read_snapshot
from plabdata.tables._dtypes import SIGN_IN_METHOD, TIMESTAMP

SNAPSHOT_DIR = r"snapshot=\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z"
DAY = pd.Timedelta(days=1)


def _files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file())


def test_a_snapshot_is_the_member_base_as_loaded(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(60)
    store = tmp_path / "store"
    with emulator_admin(emu) as admin:
        result = plabdata.snapshot_member_base(admin, store, plan_names=PLAN_NAMES)
        base = plabdata.load_member_base(admin, plan_names=PLAN_NAMES, progress=False)
    assert result.members == 60 and result.snapshots == 1
    assert set(result.plans) <= {"free", "pro", "unlimited"} and sum(result.plans.values()) == 60
    assert result.summary().startswith(f"snapshot {result.snapshot}: 60 members (")
    assert str(store) in result.summary() and result.summary().endswith("(1 snapshot)")
    # The layout: one hive partition with one file, and the store's metadata.
    assert result.path.parent == store and result.path.name == f"snapshot={result.snapshot}"
    assert [p.relative_to(store).as_posix() for p in _files(store)] == [
        METADATA_FILE,
        f"snapshot={result.snapshot}/part-0.parquet",
    ]
    meta = json.loads((store / METADATA_FILE).read_text())
    assert meta["format"] == "plabdata-member-snapshots" and meta["version"] == 1
    assert meta["pluginId"] == emu.plugin_id
    assert meta["planNames"] == {"100": "free", "5000": "pro"}
    # Read back: the same frame, dtypes and all, plus the snapshot's time.
    back = read_snapshot(store)
    assert (back["snapshot_at"] == result.at).all() and back["snapshot_at"].dtype == TIMESTAMP
    pd.testing.assert_frame_equal(
        back.drop(columns="snapshot_at"), base.reset_index(drop=True), check_categorical=True
    )
    assert back["sign_in_method"].dtype == SIGN_IN_METHOD


def test_the_snapshot_time_is_the_servers_clock(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(5)
    emu.advance(days=30, churn=False)
    with emulator_admin(emu) as admin:
        result = plabdata.snapshot_member_base(admin, tmp_path)
        pinned = plabdata.snapshot_member_base(admin, tmp_path, at="2026-01-02T03:04:05Z")
    expected = pd.Timestamp.now(tz="UTC") + 30 * DAY
    assert abs(result.at - expected) < pd.Timedelta(seconds=10)
    assert result.snapshot == result.at.strftime("%Y-%m-%dT%H-%M-%SZ")
    assert pinned.snapshot == "2026-01-02T03-04-05Z"
    listed = list_snapshots(tmp_path)
    assert listed["snapshot"].tolist() == [pinned.snapshot, result.snapshot]  # oldest first
    assert listed["members"].tolist() == [5, 5]


def test_snapshots_the_same_day_and_second_are_kept_apart(tmp_path: Path) -> None:
    base = _base(3)
    ids = [
        write_snapshot(base, tmp_path, at="2026-12-02T06:00:00Z").snapshot,
        write_snapshot(base.head(2), tmp_path, at="2026-12-02T18:30:00Z").snapshot,
        write_snapshot(base.head(1), tmp_path, at="2026-12-02T18:30:00.400Z").snapshot,
    ]
    assert ids == ["2026-12-02T06-00-00Z", "2026-12-02T18-30-00Z", "2026-12-02T18-30-00Z-2"]
    listed = list_snapshots(tmp_path)
    assert listed["snapshot"].tolist() == ids and listed["members"].tolist() == [3, 2, 1]
    assert len(read_snapshot(tmp_path, "2026-12-02T18-30-00Z-2")) == 1
    assert len(read_snapshot(tmp_path, 0)) == 3


def test_the_default_store_belongs_to_the_plugin(emu: EmulatorHandle, plabdata_home: Path) -> None:
    emu.seed(2)
    with emulator_admin(emu) as admin:
        result = plabdata.snapshot_member_base(admin)
    assert result.store == plabdata_home / "snapshots" / emu.plugin_id
    assert plabdata.default_snapshot_store("plg/../x") == plabdata_home / "snapshots" / (
        "plg%2F..%2Fx"
    )


def test_a_store_belongs_to_one_plugin_and_one_layout(tmp_path: Path) -> None:
    write_snapshot(_base(1), tmp_path, at="2026-12-01", plugin_id="plg_a")
    with pytest.raises(ConfigError, match="plugin plg_a, not plg_b"):
        write_snapshot(_base(1), tmp_path, at="2026-12-02", plugin_id="plg_b")
    meta = json.loads((tmp_path / METADATA_FILE).read_text())
    (tmp_path / METADATA_FILE).write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ConfigError, match="newer"):
        list_snapshots(tmp_path)
    (tmp_path / METADATA_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not a plabdata snapshot store"):
        read_snapshot(tmp_path)
    with pytest.raises(ConfigError, match="no snapshot store"):
        list_snapshots(tmp_path / "missing")


def test_the_store_remembers_plan_names(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(30)
    with emulator_admin(emu) as admin:
        plabdata.snapshot_member_base(admin, tmp_path, plan_names=PLAN_NAMES)
        plabdata.snapshot_member_base(admin, tmp_path)  # a cron line with no plan names
    assert set(read_snapshot(tmp_path, -1)["plan"].astype(str)) <= {"free", "pro", "unlimited"}


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    base = _base(2)
    with pytest.raises(ValueError, match="more than once"):
        write_snapshot(pd.concat([base, base.head(1)]), tmp_path, at="2026-12-01")
    assert not any(tmp_path.glob("snapshot=*"))


def test_no_secret_reaches_the_store(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(40)
    with emulator_admin(emu) as admin:
        identities = plabdata.load_identities(admin, include_tokens=True, progress=False)
        plabdata.snapshot_member_base(admin, tmp_path / "loaded")
        # Even a frame that carries tokens and a password loses them on the way in.
        base = plabdata.load_member_base(admin, progress=False)
    tokens = [
        t for column in ("access_token", "refresh_token") for t in identities[column].dropna()
    ]
    assert len(tokens) > 10
    leaky = base.assign(
        access_token="ya29.leak-me", refresh_token="1//leak", password="hunter2-secret"
    )
    write_snapshot(leaky, tmp_path / "leaky", at="2026-12-01")
    assert "access_token" not in pq.read_schema(next((tmp_path / "leaky").rglob("*.parquet"))).names
    secrets = [emu.secret.reveal(), *tokens, "ya29.leak-me", "1//leak", "hunter2-secret"]
    for path in _files(tmp_path):
        raw = path.read_bytes()
        text = pq.read_table(path).to_pandas().to_csv() if path.suffix == ".parquet" else ""
        for secret in secrets:
            assert secret.encode() not in raw and secret not in text, (path, secret[:8])


_SNAPSHOT_SCRIPT = textwrap.dedent(
    """
    import sys
    import plabdata
    with plabdata.connect() as admin:
        print(plabdata.snapshot_member_base(admin, sys.argv[1]).summary())
    """
)


def test_a_killed_snapshot_leaves_the_store_as_it_was(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.seed(25)
    store = tmp_path / "store"
    with emulator_admin(emu) as admin:
        plabdata.snapshot_member_base(admin, store, at="2026-11-01T00:00:00Z")
    before_files = {p: p.read_bytes() for p in _files(store)}
    before = read_snapshot(store)
    emu.seed(5)  # the next snapshot would hold 30 members
    signal_file = tmp_path / "paused"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGINLAB_")}
    for line in emu.settings.export_lines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    env[PAUSE_ENV] = str(signal_file)
    child = subprocess.Popen([sys.executable, "-c", _SNAPSHOT_SCRIPT, str(store)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists():
            assert child.poll() is None, "the snapshot process ended before its pause"
            assert time.monotonic() < deadline, "the snapshot never reached its pause"
            time.sleep(0.05)
        hidden = [p for p in store.iterdir() if p.name.startswith(".tmp-")]
        assert hidden and (hidden[0] / "part-0.parquet").stat().st_size > 0  # written, hidden
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    # Every reader sees exactly the store as it was.
    assert {p: p.read_bytes() for p in _files(store) if ".tmp-" not in str(p)} == before_files
    assert len(list_snapshots(store)) == 1
    pd.testing.assert_frame_equal(read_snapshot(store), before)
    # The next snapshot clears the dead writer's leftover and lands whole.
    with emulator_admin(emu) as admin:
        result = plabdata.snapshot_member_base(admin, store)
    assert result.members == 30 and result.snapshots == 2
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp-")]


_BIG_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pandas as pd
    from plabdata.members._snapshots import write_snapshot
    n = 200_000  # a ~4 MB file, written over a few hundred milliseconds
    rng = np.random.default_rng(0)
    base = pd.DataFrame({
        "member_id": pd.array([f"mem_{i:040x}" for i in range(n)], dtype="string"),
        "email": pd.array([f"user{i}@example.com" for i in range(n)], dtype="string"),
        "name": pd.array([f"{x:032x}" for x in rng.integers(0, 2**62, n)], dtype="string"),
        "quota_usage_count": rng.integers(0, 1000, n),
    })
    write_snapshot(base, sys.argv[1], at="2026-12-02T06:00:00Z", plugin_id="plg_test")
    """
)
#: Bytes of the hidden file at which the writer is killed: its Parquet header only, then a
#: quarter and a half of the way through (the file ends near 4 MB).
_KILL_AT = (4, 1_000_000, 2_000_000)


def test_a_writer_killed_mid_file_leaves_no_half_snapshot(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_snapshot(_base(50), store, at="2026-11-25T06:00:00Z", plugin_id="plg_test")
    before_files = {p: p.read_bytes() for p in _files(store)}
    before = read_snapshot(store)
    mid_write = 0
    for kill_at in _KILL_AT:
        child = subprocess.Popen([sys.executable, "-c", _BIG_WRITER, str(store)])
        try:
            deadline = time.monotonic() + 60
            while not any(
                p.stat().st_size >= kill_at for p in store.glob(".tmp-snapshot=*/part-0.parquet")
            ):
                assert child.poll() is None, "the writer ended before it was killed"
                assert time.monotonic() < deadline, "the writer never started its file"
                time.sleep(0.001)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        landed = [p for p in store.glob("snapshot=*") if p / "part-0.parquet" not in before_files]
        if landed:
            # The kill came after the rename (a loaded machine let the writer run on): then
            # the snapshot is whole. Put the store back and count this run out.
            assert len(landed) == 1 and pq.read_metadata(landed[0] / "part-0.parquet").num_rows
            shutil.rmtree(landed[0])
            continue
        # Killed inside the file: what it left is hidden, and truncated (not even Parquet).
        (leftover,) = store.glob(".tmp-snapshot=*/part-0.parquet")
        with pytest.raises(pa.ArrowInvalid):
            pq.ParquetFile(leftover)
        mid_write += 1
        # Every reader sees exactly the store as it was.
        assert {p: p.read_bytes() for p in _files(store) if ".tmp-" not in str(p)} == before_files
        assert list_snapshots(store)["members"].tolist() == [50]
        pd.testing.assert_frame_equal(read_snapshot(store), before)
        dataset = ds.dataset(store, format="parquet", partitioning="hive")
        assert [Path(f).parent.name for f in dataset.files] == [_partition_of(before_files)]
        assert dataset.count_rows() == 50
    assert mid_write >= 2, f"only {mid_write} of {len(_KILL_AT)} kills landed mid-write"
    # The next write clears the dead writers' leftovers and lands whole.
    result = write_snapshot(_base(3), store, at="2026-12-03T06:00:00Z")
    assert result.snapshots == 2
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp-")]


def _partition_of(files: dict[Path, bytes]) -> str:
    (part,) = [p for p in files if p.name == "part-0.parquet"]
    return part.parent.name


def _base(n: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "member_id": [f"mem_{i:040x}" for i in range(n)],
            "email": [f"m{i}@example.com" for i in range(n)],
            "is_verified": [True] * n,
            "plan": ["free"] * n,
            "quota_usage_limit": [100] * n,
            "quota_is_unlimited": [False] * n,
        }
    )
    return frame.astype({"member_id": "string", "email": "string", "is_verified": "boolean"})
