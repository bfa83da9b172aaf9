"""The snapshot store's layout: folders, metadata file, ids and typed reading.

A store is a Parquet dataset with one hive-style partition per snapshot (see
:mod:`plabdata.members._snapshots`, which writes it)::

    <store>/_plabdata_store.json                  format, version, plugin id, plan names
    <store>/snapshot=2026-12-02T06-00-01Z/part-0.parquet

    >>> snapshot_id("2026-12-02 06:24:35.8+00:00")
    '2026-12-02T06-24-35Z'
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from plabdata.errors import ConfigError
from plabdata.jobs._places import path_part, plabdata_home
from plabdata.tables._dtypes import BOOLEAN, INT, SIGN_IN_METHOD, STRING, TIMESTAMP
from plabdata.wire import SIGN_IN_METHODS

__all__ = [
    "AT_COLUMN",
    "ID_FORMAT",
    "METADATA_FILE",
    "PARTITION",
    "PART_FILE",
    "SCHEMA_VERSION",
    "STORE_FORMAT",
    "TMP_PREFIX",
    "check_store",
    "default_snapshot_store",
    "fsync",
    "list_snapshots",
    "partition_files",
    "partitions",
    "read_snapshot",
    "read_table",
    "snapshot_id",
    "typed_frame",
    "utc_timestamp",
    "write_metadata",
]

StorePath = str | PathLike[str]

SCHEMA_VERSION = 1
STORE_FORMAT = "plabdata-member-snapshots"
METADATA_FILE = "_plabdata_store.json"
PARTITION = "snapshot"
PART_FILE = "part-0.parquet"
#: The time column every snapshot file holds (the partition value is the same time as text).
AT_COLUMN = "snapshot_at"
TMP_PREFIX = ".tmp-"
ID_FORMAT = "%Y-%m-%dT%H-%M-%SZ"
_ID = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z(-\d+)?$")


def default_snapshot_store(plugin_id: str, *, env: Mapping[str, str] | None = None) -> Path:
    """The default store of a plugin: ``$PLABDATA_HOME/snapshots/<plugin id>/``.

    Example:
        >>> default_snapshot_store("plg_4f2a", env={"PLABDATA_HOME": "/srv/plabdata"})
        PosixPath('/srv/plabdata/snapshots/plg_4f2a')
    """
    return plabdata_home(env) / "snapshots" / path_part(plugin_id)


def utc_timestamp(value: datetime | str | pd.Timestamp) -> pd.Timestamp:
    """``value`` as a UTC timestamp (a naive one is read as UTC)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def snapshot_id(at: datetime | str) -> str:
    """The partition name of a snapshot taken at ``at``: its UTC time to the second.

    Example:
        >>> snapshot_id("2026-12-02 06:24:35.8+00:00")
        '2026-12-02T06-24-35Z'
    """
    return utc_timestamp(at).strftime(ID_FORMAT)


def fsync(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a rename is durable once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- metadata


def _read_metadata(folder: Path) -> dict[str, Any] | None:
    path = folder / METADATA_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a plabdata snapshot store ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        raise ConfigError(f"{path}: not a plabdata snapshot store")
    return meta


def check_store(folder: Path, plugin_id: str | None) -> dict[str, Any] | None:
    meta = _read_metadata(folder)
    if meta is None:
        return None
    version = meta.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ConfigError(
            f"{folder}: snapshot store version {version!r} is newer than this plabdata's "
            f"({SCHEMA_VERSION}); upgrade plabdata"
        )
    stored = meta.get("pluginId")
    if plugin_id is not None and stored and stored != plugin_id:
        raise ConfigError(
            f"{folder} holds snapshots of plugin {stored}, not {plugin_id}: one store per "
            "plugin (pass another store, or leave it out for the plugin's default)"
        )
    return meta


def write_metadata(
    folder: Path,
    meta: dict[str, Any] | None,
    plugin_id: str | None,
    plan_names: Mapping[int, str] | None,
) -> None:
    new = dict(meta or {"format": STORE_FORMAT, "version": SCHEMA_VERSION})
    new.setdefault("createdAt", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if plugin_id is not None:
        new["pluginId"] = plugin_id
    if plan_names:
        new["planNames"] = {str(k): v for k, v in sorted(plan_names.items())}
    if new == meta:
        return
    scratch = folder / f"{TMP_PREFIX}{METADATA_FILE}-{os.getpid()}-{secrets.token_hex(4)}"
    scratch.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
    fsync(scratch)
    os.replace(scratch, folder / METADATA_FILE)


# --------------------------------------------------------------------------- reading


def partition_files(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in folder.glob(f"{PARTITION}=*"):
        name = path.name.partition("=")[2]
        if path.is_dir() and _ID.match(name) and (path / PART_FILE).is_file():
            found.append((name, path / PART_FILE))
    return sorted(found, key=lambda item: _sort_key(item[0]))


def _sort_key(name: str) -> tuple[str, int]:
    stem, _, number = name.partition("Z-")
    return (stem.removesuffix("Z"), int(number or 1))


def _open_store(store: StorePath) -> Path:
    folder = Path(store)
    if not folder.is_dir():
        raise ConfigError(f"no snapshot store at {folder}")
    check_store(folder, None)
    return folder


def list_snapshots(store: StorePath) -> pd.DataFrame:
    """The store's snapshots, oldest first: ``snapshot`` (id), ``snapshot_at``, ``members``
    and ``path`` (read from the Parquet footers only).

    Raises:
        ConfigError: ``store`` is not a folder, or not a plabdata snapshot store.

    Example:
        >>> list_snapshots(default_snapshot_store(admin.settings.plugin_id)).tail(3)
    """
    folder = _open_store(store)
    rows = [
        (name, _at_of(name), pq.ParquetFile(path).metadata.num_rows, path)
        for name, path in partition_files(folder)
    ]
    frame = pd.DataFrame(rows, columns=["snapshot", AT_COLUMN, "members", "path"])
    return frame.astype({"snapshot": STRING, AT_COLUMN: TIMESTAMP, "members": INT})


def _at_of(name: str) -> pd.Timestamp:
    stem = name.split("Z", 1)[0] + "Z"
    return pd.Timestamp(datetime.strptime(stem, ID_FORMAT).replace(tzinfo=UTC))


def read_table(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One snapshot file, only ``columns`` (those it lacks come back as nulls)."""
    file = pq.ParquetFile(path)
    present = set(file.schema_arrow.names)
    wanted = list(columns) if columns is not None else file.schema_arrow.names
    table = file.read(columns=[c for c in wanted if c in present])
    for name in wanted:
        if name not in present:
            table = table.append_column(name, pa.nulls(len(table), type=pa.string()))
    return table.select(wanted)


def typed_frame(table: pa.Table) -> pd.DataFrame:
    """A snapshot table as a frame with plabdata's dtypes (``sign_in_method`` a category)."""
    mapping = {pa.string(): STRING, pa.large_string(): STRING, pa.bool_(): BOOLEAN, pa.int64(): INT}
    frame: pd.DataFrame = table.to_pandas(types_mapper=mapping.get)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].astype(TIMESTAMP)
    if "sign_in_method" in frame.columns:
        extra = sorted(set(frame["sign_in_method"].dropna()) - set(SIGN_IN_METHODS))
        frame["sign_in_method"] = frame["sign_in_method"].astype(
            pd.CategoricalDtype([*SIGN_IN_METHODS, *extra]) if extra else SIGN_IN_METHOD
        )
    if "plan" in frame.columns:
        labels = sorted(frame["plan"].dropna().unique())
        frame["plan"] = frame["plan"].astype(pd.CategoricalDtype(pd.Index(labels, dtype=str)))
    return frame


def read_snapshot(
    store: StorePath, snapshot: int | str = -1, *, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """One snapshot as a member-base frame (plus ``snapshot_at``).

    Args:
        store: the store folder.
        snapshot: a position (``-1``: the latest, ``0``: the first) or a snapshot id.
        columns: only these columns (default all).

    Raises:
        ConfigError: not a snapshot store, or no such snapshot.

    Example:
        >>> latest = read_snapshot(store)
        >>> latest["plan"].value_counts()
    """
    parts = partition_files(_open_store(store))
    if isinstance(snapshot, str):
        found = [path for name, path in parts if name == snapshot]
        if not found:
            raise ConfigError(f"{store}: no snapshot {snapshot!r}")
        path = found[0]
    else:
        if not parts or not -len(parts) <= snapshot < len(parts):
            raise ConfigError(f"{store}: no snapshot at position {snapshot} of {len(parts)}")
        path = parts[snapshot][1]
    return typed_frame(read_table(path, columns))


def partitions(store: StorePath) -> list[tuple[str, pd.Timestamp, Path]]:
    """``(id, time, file)`` of every snapshot, oldest first (for the history queries)."""
    return [(name, _at_of(name), path) for name, path in partition_files(_open_store(store))]
