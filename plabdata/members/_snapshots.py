"""Dated snapshots of the member base: the history PluginLab's admin API does not keep.

Each :func:`snapshot_member_base` loads the member base (members, sign-in providers, quota,
plan label) and appends it to a **snapshot store**: a Parquet dataset with one hive-style
partition per snapshot, readable by pandas, pyarrow, DuckDB or Polars without plabdata::

    <store>/
      _plabdata_store.json                     format, schema version, plugin id, plan names
      snapshot=2026-11-25T06-00-02Z/part-0.parquet
      snapshot=2026-12-02T06-00-01Z/part-0.parquet
      .tmp-snapshot=…/                          a snapshot being written (hidden: readers skip it)

The snapshot id is its UTC time to the second (a second snapshot on the same day is its own
partition; two in the same second get ``-2``, ``-3``…). The time is the **server's**: the
``Date`` of PluginLab's answer (so an emulator whose clock was moved stamps its own time),
else this machine's clock. Each file also holds the time as a ``snapshot_at`` column.

Writing is atomic: the partition is written into a hidden folder inside the store, flushed
to disk (file and folder ``fsync``), then renamed into place in one ``os.rename``. A crash
at any point leaves either the old store or the old store plus the whole new snapshot —
never half of one; a hidden leftover is removed by the next write. Secrets are never stored:
the member base holds no token or password, and the writer refuses such columns anyway.

The default store is ``$PLABDATA_HOME/snapshots/<plugin id>/`` (see
:func:`default_snapshot_store`).

    >>> result = snapshot_member_base(admin)          # doctest: +SKIP
    >>> print(result.summary())
    snapshot 2026-12-02T06-00-01Z: 500 members (350 free, 125 pro, 25 unlimited) → …
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from plabdata.client._sync import Admin
from plabdata.errors import ConfigError
from plabdata.members._loaders import load_member_base
from plabdata.members._store import (
    AT_COLUMN,
    PART_FILE,
    PARTITION,
    TMP_PREFIX,
    StorePath,
    check_store,
    default_snapshot_store,
    fsync,
    partition_files,
    snapshot_id,
    utc_timestamp,
    write_metadata,
)
from plabdata.tables._dtypes import STRING
from plabdata.tables._frames import TOKEN_COLUMNS

__all__ = [
    "PAUSE_ENV",
    "SECRET_COLUMNS",
    "SnapshotResult",
    "snapshot_member_base",
    "snapshot_table",
    "write_snapshot",
]

#: Columns that hold secrets in some plabdata frame: never written, whatever the caller passes.
SECRET_COLUMNS = frozenset({*TOKEN_COLUMNS, "password", "password_hash", "secret", "id_token"})
#: Test hook: when set to a path, the writer touches it once the hidden partition is on disk,
#: then sleeps, so a test can kill the process mid-write (tests/members/test_snapshots.py).
PAUSE_ENV = "PLABDATA_SNAPSHOT_PAUSE_FILE"


@dataclass(frozen=True)
class SnapshotResult:
    """One snapshot appended to a store.

    Attributes:
        store: the store folder.
        snapshot: the snapshot id (its partition is ``snapshot=<id>``).
        at: the snapshot's time (UTC).
        path: the partition folder.
        members: members in the snapshot.
        plans: members per plan label, busiest first.
        snapshots: snapshots in the store, this one included.
        load_seconds: time spent loading the member base (0 for :func:`write_snapshot`).
        write_seconds: time spent writing the partition.
    """

    store: Path
    snapshot: str
    at: pd.Timestamp
    path: Path
    members: int
    plans: dict[str, int] = field(default_factory=dict)
    snapshots: int = 1
    load_seconds: float = 0.0
    write_seconds: float = 0.0

    def summary(self) -> str:
        """One line for a terminal or a cron mail.

        Example:
            >>> print(snapshot_member_base(admin).summary())
            snapshot 2026-12-02T06-00-01Z: 500 members (350 free, …) → /srv/… (12 snapshots)
        """
        plans = ", ".join(f"{n:,} {plan}" for plan, n in self.plans.items())
        return (
            f"snapshot {self.snapshot}: {self.members:,} members"
            + (f" ({plans})" if plans else "")
            + f" → {self.store} ({self.snapshots:,} snapshot{'s' if self.snapshots != 1 else ''})"
        )


def snapshot_member_base(
    admin: Admin,
    store: StorePath | None = None,
    *,
    plan_names: Mapping[int, str] | None = None,
    at: datetime | str | None = None,
    concurrency: int | None = None,
    progress: bool = False,
) -> SnapshotResult:
    """Load the member base and append it to ``store`` as one dated snapshot.

    Args:
        admin: the connection (its plugin id binds the store).
        store: the store folder; default :func:`default_snapshot_store` of the plugin.
        plan_names: names of the plans' limits (see :func:`plabdata.load_member_base`);
            None uses the names the store remembers from an earlier snapshot.
        at: the snapshot's time; default the server's clock (its ``Date``), else this
            machine's.
        concurrency: requests in flight while loading.
        progress: show progress bars while loading (off: cron-friendly).

    Raises:
        ConfigError: the store belongs to another plugin or was written by a newer plabdata.

    Example:
        >>> result = snapshot_member_base(admin, plan_names={100: "free", 5000: "pro"})
        >>> print(result.summary())
    """
    plugin_id = admin.settings.plugin_id
    folder = Path(store) if store is not None else default_snapshot_store(plugin_id)
    meta = check_store(folder, plugin_id)
    if plan_names is None:
        plan_names = {int(k): str(v) for k, v in (meta or {}).get("planNames", {}).items()}
    started = time.perf_counter()
    when = utc_timestamp(at) if at is not None else _server_time(admin)
    base = load_member_base(
        admin, plan_names=plan_names or None, concurrency=concurrency, progress=progress
    )
    loaded = time.perf_counter() - started
    result = write_snapshot(base, folder, at=when, plugin_id=plugin_id, plan_names=plan_names)
    return _replace_load(result, loaded)


def _replace_load(result: SnapshotResult, seconds: float) -> SnapshotResult:
    return dataclasses.replace(result, load_seconds=seconds)


def _server_time(admin: Admin) -> pd.Timestamp:
    """The server's clock: the ``Date`` of a one-member page, else this machine's clock."""
    aio = admin.aio
    url = f"{aio.settings.members_url}/members?limit=1"
    try:
        # The client's public calls return parsed bodies; the Date header needs the answer.
        response = admin.run(aio._response("GET", url))
        stamp = parsedate_to_datetime(response.headers["date"])
    except (KeyError, TypeError, ValueError, IndexError):
        return pd.Timestamp.now(tz="UTC").floor("s")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return pd.Timestamp(stamp).tz_convert("UTC")


# --------------------------------------------------------------------------- writing


def write_snapshot(
    base: pd.DataFrame,
    store: StorePath,
    *,
    at: datetime | str,
    plugin_id: str | None = None,
    plan_names: Mapping[int, str] | None = None,
) -> SnapshotResult:
    """Append ``base`` (a :func:`plabdata.load_member_base` frame) to ``store`` atomically.

    The I/O half of :func:`snapshot_member_base`, for a member base loaded another way (a
    test, a benchmark, an import of old exports). Secret columns are dropped.

    Args:
        base: one row per member.
        store: the store folder (created with its parents).
        at: the snapshot's time.
        plugin_id: binds a new store to a plugin, or is checked against the store's.
        plan_names: remembered by the store for later snapshots.

    Raises:
        ConfigError: the store belongs to another plugin or has a newer schema version.
        ValueError: ``base`` has no ``member_id`` column, or a member twice.

    Example:
        >>> write_snapshot(base, "snapshots", at="2026-12-02T06:00Z").snapshot
        '2026-12-02T06-00-00Z'
    """
    started = time.perf_counter()
    if "member_id" not in base.columns:
        raise ValueError("a member base needs a 'member_id' column")
    duplicated = base["member_id"].duplicated()
    if duplicated.any():
        first = base.loc[duplicated, "member_id"].iloc[0]
        raise ValueError(f"member_id {first} appears more than once: one row per member")
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    meta = check_store(folder, plugin_id)
    write_metadata(folder, meta, plugin_id, plan_names)
    _remove_leftovers(folder)
    when = utc_timestamp(at).floor("s")
    table = snapshot_table(base, when)
    name = snapshot_id(when)
    hidden = folder / f"{TMP_PREFIX}{PARTITION}={name}-{os.getpid()}-{secrets.token_hex(4)}"
    hidden.mkdir()
    try:
        target = hidden / PART_FILE
        pq.write_table(table, target, compression="zstd")
        fsync(target)
        fsync(hidden)
        _pause_for_tests()
        final, name = _rename_into_place(hidden, folder, name)
    except BaseException:
        shutil.rmtree(hidden, ignore_errors=True)
        raise
    fsync(folder)
    plans = base["plan"].astype(str).value_counts().to_dict() if "plan" in base.columns else {}
    return SnapshotResult(
        store=folder,
        snapshot=name,
        at=when,
        path=final,
        members=len(base),
        plans={str(k): int(v) for k, v in plans.items()},
        snapshots=len(partition_files(folder)),
        write_seconds=time.perf_counter() - started,
    )


def snapshot_table(base: pd.DataFrame, at: pd.Timestamp) -> pa.Table:
    """The member base as the Arrow table a snapshot file holds: secret columns dropped,
    categories as plain strings (so every snapshot's schema unifies with every other's), a
    ``snapshot_at`` column, and no pandas metadata (readers get the same columns anywhere)."""
    kept = [c for c in base.columns if str(c) not in SECRET_COLUMNS and str(c) != AT_COLUMN]
    fields: list[pa.Field] = []
    arrays: list[pa.Array] = []
    for name in kept:
        column = base[name]
        arrow_type = _arrow_type(column)
        if isinstance(column.dtype, pd.CategoricalDtype) or arrow_type == pa.string():
            column = column.astype(STRING)
        arrays.append(pa.array(column, type=arrow_type, from_pandas=True))
        fields.append(pa.field(str(name), arrow_type))
    stamp = pa.scalar(at.to_pydatetime(), type=pa.timestamp("ms", tz="UTC"))
    arrays.append(pa.array([stamp.as_py()] * len(base), type=stamp.type))
    fields.append(pa.field(AT_COLUMN, stamp.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _arrow_type(column: pd.Series) -> pa.DataType:
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return pa.timestamp("ms", tz="UTC")
    if pd.api.types.is_bool_dtype(dtype):
        return pa.bool_()
    if pd.api.types.is_integer_dtype(dtype):
        return pa.int64()
    if pd.api.types.is_float_dtype(dtype):
        return pa.float64()
    return pa.string()


def _rename_into_place(hidden: Path, folder: Path, name: str) -> tuple[Path, str]:
    """Rename ``hidden`` to the first free ``snapshot=<id>[-n]``: a rename onto an existing
    (non-empty) folder fails, so two writers in the same second never clobber each other."""
    for number in range(1, 1000):
        candidate = name if number == 1 else f"{name}-{number}"
        final = folder / f"{PARTITION}={candidate}"
        if final.exists():
            continue
        try:
            os.rename(hidden, final)
        except OSError:
            if final.exists():
                continue
            raise
        return final, candidate
    raise ConfigError(f"{folder}: too many snapshots at {name}")


def _pause_for_tests() -> None:
    signal_file = os.environ.get(PAUSE_ENV)
    if signal_file:
        Path(signal_file).write_text(str(os.getpid()))
        time.sleep(60)


def _remove_leftovers(folder: Path) -> None:
    """Remove hidden partitions whose writer died (its pid is gone from this machine)."""
    for path in folder.glob(f"{TMP_PREFIX}{PARTITION}=*"):
        match = re.search(r"-(\d+)-[0-9a-f]{8}$", path.name)
        if match and not _alive(int(match[1])):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
