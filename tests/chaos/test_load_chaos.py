"""The load job — load_members, load_identities, load_quota_usage — under every fault at once,
killed (SIGKILL, SIGINT) at seeded points and run again until it completes.

Invariants: the frames the job finally writes equal the emulator's state read without faults
(every row, every column, every dtype); the job writes nothing to the member base; no identity
token and no admin secret appears in any output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from plabdata import Admin, Secret, load_identities, load_members, load_quota_usage
from plabdata.emulator import EmulatorHandle

from .harness import Attempt, ChaosRun

SHORT_SEEDS = (1,)
MEMBERS = 40
JOB = Path(__file__).with_name("load_job.py")
FRAMES = {"members": ["member_id"], "identities": ["member_id", "provider"], "quota": ["member_id"]}


def _state(admin: Admin) -> dict[str, pd.DataFrame]:
    members = load_members(admin, progress=False)
    return {
        "members": members,
        "identities": load_identities(admin, members, progress=False),
        "quota": load_quota_usage(admin, members, progress=False),
    }


def _canonical(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _round_trip(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The frame as the job's Parquet file would hold it (the job's files are compared with
    this, so a difference is the load's, not Parquet's)."""
    frame.to_parquet(path)
    return pd.read_parquet(path)


def _differs(left: pd.DataFrame, right: pd.DataFrame) -> str | None:
    try:
        pd.testing.assert_frame_equal(left, right)
    except AssertionError as exc:
        return str(exc)[:1200]
    return None


@pytest.mark.chaos
def test_load_under_chaos(
    emu: EmulatorHandle,
    tmp_path: Path,
    chaos_seed: int,
    chaos_long: bool,
    chaos_record: Callable[[dict[str, Any]], None],
) -> None:
    run = ChaosRun("load", chaos_seed, emu, tmp_path, long=chaos_long)
    emu.seed(MEMBERS, random_seed=chaos_seed)
    truth_dir, out = tmp_path / "truth", tmp_path / "out"
    truth_dir.mkdir()
    out.mkdir()
    with Admin(emu.settings) as admin:
        truth = _state(admin)
        tokens = load_identities(admin, truth["members"], include_tokens=True, progress=False)
    for item in tokens.to_dict("records"):
        for column in ("access_token", "refresh_token"):
            value = item[column]
            if isinstance(value, Secret | str) and value:
                text = value.reveal() if isinstance(value, Secret) else value
                run.secrets[f"{item['provider']} {column} of {item['member_id']}"] = text
    expected = {
        name: _canonical(_round_trip(frame, truth_dir / f"{name}.parquet"), FRAMES[name])
        for name, frame in truth.items()
    }

    def finished(attempt: Attempt) -> bool:
        return attempt.returncode == 0 and all((out / f"{n}.parquet").exists() for n in FRAMES)

    with run.faults(run.draw_faults()):
        last = run.until_complete(
            [sys.executable, str(JOB), str(out)],
            kills=run.draw_kills(1 + 2 * MEMBERS),
            finished=finished,
        )

    if finished(last):
        for name, keys in FRAMES.items():
            loaded = _canonical(pd.read_parquet(out / f"{name}.parquet"), keys)
            problem = _differs(loaded, expected[name])
            run.check(
                problem is None,
                f"{name}: the loaded frame is not the emulator's state "
                f"({len(loaded)} rows loaded, {len(expected[name])} "
                f"true): {problem}",
            )
    with Admin(emu.settings) as admin:
        after = _state(admin)
    for name, keys in FRAMES.items():
        problem = _differs(_canonical(after[name], keys), _canonical(truth[name], keys))
        run.check(problem is None, f"{name}: the load changed the emulator's state: {problem}")
    run.check(emu.stats()["members"] == MEMBERS, "the member count changed during a load")

    rows = sum(len(frame) for frame in truth.values())
    chaos_record(run.figures(rows))
    run.assert_clean()
