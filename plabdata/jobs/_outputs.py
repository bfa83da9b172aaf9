"""Output safety: no output may destroy an input or the journal, and plabdata never reads its
own outputs as inputs.

Both jobs and both CLIs call these before any work:

- :func:`check_outputs` refuses an output (``--out``, ``--failed-out``, ``--report``,
  ``--rejects``) that is the same file as an input or the journal, an empty path (an unset
  ``$VAR``), a folder, or an existing SQLite file. "The same file" is decided on the files —
  ``(st_dev, st_ino)`` for files that exist, resolved paths for files not yet written — so a
  symlink, a hard link or ``./`` spelling cannot slip through.
- :func:`own_output` recognises what plabdata writes, by content where it can: journals and
  their sidecars (SQLite magic bytes), per-row reports and Parquet rejects (the ``plabdata``
  key in the Parquet metadata), CSV rejects (the ``<log>.rejected.csv`` name, or their
  ``row … problem`` header). Folder and glob inputs skip them (:func:`skip_own_outputs`, which
  says which were skipped); named explicitly, a rejects file is read (that is how fixed rows
  are fed back), a journal or a per-row report is refused.
- :func:`set_aside` keeps a rows-to-fix file that a run is about to rewrite — it may hold the
  operator's fixes — unless the run writes the same bytes again (:func:`settle_aside`).

    >>> check_outputs(["logs/web.csv"], {"--rejects": "logs/web.csv"})
    Traceback (most recent call last):
    ValidationError: --rejects logs/web.csv is the input logs/web.csv: ...
"""

from __future__ import annotations

import contextlib
import csv
import filecmp
import io
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from plabdata.errors import ValidationError
from plabdata.jobs._journal_file import SQLITE_MAGIC

__all__ = [
    "OUTPUT_KEY",
    "REJECTS_MARK",
    "ROWS_MARK",
    "OwnOutput",
    "check_outputs",
    "collect_skipped",
    "own_output",
    "rejects_name",
    "set_aside",
    "settle_aside",
    "skip_own_outputs",
]

#: Parquet metadata key plabdata writes into its own outputs, and the values it writes.
OUTPUT_KEY = b"plabdata"
ROWS_MARK = b"backfill-rows"
REJECTS_MARK = b"rejects"
#: Skipped inputs are logged here (and collected into the report by :func:`collect_skipped`).
SKIPPED_LOG = logging.getLogger("plabdata.inputs")

_REJECTS_INFIX = ".rejected."
_ROLLBACK_MAGIC = bytes.fromhex("d9d505f920a163d7")
_WAL_MAGICS = (bytes.fromhex("377f0682"), bytes.fromhex("377f0683"))
_SIDECARS = ("-journal", "-wal", "-shm")
_PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class OwnOutput:
    """A file plabdata wrote. ``kind``: ``"journal"`` (a journal or one of its sidecars),
    ``"rows"`` (a per-row report) or ``"rejects"`` (rejected rows, meant to be fixed)."""

    kind: str
    description: str


def rejects_name(log: Path, fmt: str) -> Path:
    """The default rejects file of a log: ``<log>.rejected.<csv|parquet>`` beside it.

    Example:
        >>> rejects_name(Path("logs/web.csv"), "csv")
        PosixPath('logs/web.csv.rejected.csv')
    """
    return log.with_name(f"{log.name}{_REJECTS_INFIX}{fmt}")


# --------------------------------------------------------------------------- recognising


def _head(path: Path, size: int = 16) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _is_sqlite(path: Path) -> bool:
    return _head(path).startswith(SQLITE_MAGIC)


def own_output(path: Path) -> OwnOutput | None:
    """What plabdata output ``path`` is, judged by what plabdata writes; None for anything else.

    Example:
        >>> own_output(Path("logs/events.journal")).kind
        'journal'
    """
    name, head = path.name, _head(path)
    if head.startswith(SQLITE_MAGIC):
        return OwnOutput("journal", "an SQLite database (a plabdata journal)")
    for suffix in _SIDECARS:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = path.with_name(name[: -len(suffix)])
            if head.startswith((_ROLLBACK_MAGIC, *_WAL_MAGICS)) or _is_sqlite(base):
                return OwnOutput("journal", f"the {suffix} file of the SQLite database {base.name}")
    if name.endswith(".lock") and _is_sqlite(path.with_name(name[: -len(".lock")])):
        return OwnOutput("journal", f"the lock file of the journal {name[: -len('.lock')]}")
    if name.startswith(".") and name.endswith(".creating"):
        return OwnOutput("journal", "a journal being created")
    if head.startswith(b"PAR1"):
        mark = _parquet_mark(path)
        if mark == ROWS_MARK:
            return OwnOutput("rows", "a per-row report written by plabdata")
        if mark == REJECTS_MARK:
            return OwnOutput("rejects", "rejected rows written by plabdata")
    if _REJECTS_INFIX in name.lower():
        return OwnOutput("rejects", "rejected rows written by plabdata (<log>.rejected.* name)")
    if name.lower().endswith((".csv", ".tsv")) and _rejects_header(path):
        return OwnOutput("rejects", "rejected rows written by plabdata (row … problem columns)")
    return None


def _parquet_mark(path: Path) -> bytes | None:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except Exception:  # an unreadable file is not plabdata's; the reader reports it
        return None
    mark = metadata.get(OUTPUT_KEY)
    return mark if isinstance(mark, bytes) else None


def _rejects_header(path: Path) -> bool:
    """The header plabdata's CSV rejects have: ``[file,] row, …, problem``."""
    line = _head(path, 1 << 16).split(b"\n", 1)[0].decode("utf-8", "replace")
    try:
        fields = next(csv.reader(io.StringIO(line)))
    except (StopIteration, csv.Error):
        return False
    first = fields[1:2] if fields[:1] == ["file"] else fields[:1]
    return len(fields) >= 2 and first == ["row"] and fields[-1] == "problem"


def skip_own_outputs(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without plabdata's own outputs; each one skipped is logged on
    ``plabdata.inputs`` (see :func:`collect_skipped`), never dropped silently.

    Example:
        >>> skip_own_outputs([Path("logs/a.csv"), Path("logs/a.csv.rejected.csv")])
        [PosixPath('logs/a.csv')]
    """
    kept = []
    for path in paths:
        found = own_output(path)
        if found is None:
            kept.append(path)
        else:
            SKIPPED_LOG.warning("skipped %s: %s, not a log", path, found.description)
    return kept


class _Collect(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.INFO)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(record.getMessage())


@contextlib.contextmanager
def collect_skipped() -> Iterator[list[str]]:
    """Collect the "skipped …" messages of :func:`skip_own_outputs` (instead of stderr).

    Example:
        >>> with collect_skipped() as notes:
        ...     sources = resolve_sources("logs/")
    """
    notes: list[str] = []
    handler = _Collect(notes)
    SKIPPED_LOG.addHandler(handler)
    try:
        yield notes
    finally:
        SKIPPED_LOG.removeHandler(handler)


# --------------------------------------------------------------------------- refusing


@dataclass(frozen=True)
class _Place:
    label: str
    text: str
    identity: tuple[int, int] | None
    resolved: str
    is_dir: bool

    @classmethod
    def of(cls, label: str, value: _PathArg) -> _Place:
        text = os.fspath(value)
        if not text.strip():
            raise ValidationError(
                f"{label} is an empty path (an unset variable?): name a file; "
                "nothing was read or written"
            )
        try:
            info = os.stat(text)  # follows symlinks: a link and its target are one file
            identity: tuple[int, int] | None = (info.st_dev, info.st_ino)
            is_dir = os.path.isdir(text)
        except OSError:
            identity, is_dir = None, False
        return cls(label, text, identity, os.path.realpath(text), is_dir)

    def same(self, other: _Place) -> bool:
        if self.identity is not None and other.identity is not None:
            return self.identity == other.identity
        return self.resolved == other.resolved

    def named_as(self, other: _Place) -> str:
        spelled = os.path.abspath(self.text) == os.path.abspath(other.text)
        return "" if spelled else " (the same file under another name)"


def check_outputs(
    inputs: Iterable[_PathArg],
    outputs: Mapping[str, _PathArg | None],
    journal: _PathArg | None = None,
    *,
    journal_name: str = "journal",
) -> None:
    """Refuse, before any work, outputs that would destroy an input, the journal or each other.

    Args:
        inputs: The files the job reads (folders and globs already expanded).
        outputs: ``{label: path}`` of the files the job writes; None entries are skipped.
            Labels name them in messages: the option (``"--rejects"``) or the argument.
        journal: The journal file, if the job has one (it may not exist yet).
        journal_name: How messages name the journal (``"--journal"``, ``"journal"``).

    Raises:
        ValidationError: An empty path; an output that is a folder, an input, the journal,
            another output or an existing SQLite file; a journal that is an input.

    Example:
        >>> check_outputs(["sheet.csv"], {"--out": "results.csv"}, "members.journal")
    """
    sources = [_Place.of("an input", path) for path in inputs]
    targets = [_Place.of(label, path) for label, path in outputs.items() if path is not None]
    held = None if journal is None else _Place.of(journal_name, journal)
    keep = "Name another file; nothing was read or written"
    for target in targets:
        if target.is_dir:
            raise ValidationError(f"{target.label} {target.text} is a folder: name a file in it")
        for source in sources:
            if target.same(source):
                raise ValidationError(
                    f"{target.label} {target.text} is the input {source.text}"
                    f"{target.named_as(source)}: writing it would destroy the input. {keep}"
                )
        if held is not None and target.same(held):
            raise ValidationError(
                f"{target.label} {target.text} is the {held.label} {held.text}"
                f"{target.named_as(held)}: writing it would destroy the journal's record of "
                f"what was sent. {keep}"
            )
        if target.identity is not None and _is_sqlite(Path(target.text)):
            raise ValidationError(
                f"{target.label} {target.text} is an SQLite database (a plabdata journal?): "
                f"writing it would destroy it. {keep}"
            )
    for first, second in itertools.combinations(targets, 2):
        if first.same(second):
            raise ValidationError(
                f"{first.label} and {second.label} are the same file ({first.text}): one "
                f"would overwrite the other. {keep}"
            )
    if held is not None:
        for source in sources:
            if held.same(source):
                raise ValidationError(
                    f"{held.label} {held.text} is the input {source.text}"
                    f"{held.named_as(source)}: the journal would overwrite it. {keep}"
                )


# --------------------------------------------------------------------------- keeping


def set_aside(path: Path) -> Path | None:
    """Move an existing rows-to-fix file out of the way of the run that will rewrite it.

    It may hold the operator's fixes. The copy keeps the name's shape
    (``web.csv.rejected.previous-<mtime>.csv``), so folder inputs skip it too.

    Returns:
        Where it went, or None when there was no such file.

    Example:
        >>> aside = set_aside(Path("logs/web.csv.rejected.csv"))
    """
    if not path.is_file():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(path.stat().st_mtime))
    for n in itertools.count(1):
        tag = stamp if n == 1 else f"{stamp}-{n}"
        aside = path.with_name(f"{path.stem}.previous-{tag}{path.suffix}")
        try:
            os.link(path, aside)  # never replaces an earlier copy
        except FileExistsError:
            continue
        except OSError:
            if os.path.lexists(aside):
                continue
            os.rename(path, aside)
            return aside
        path.unlink()
        return aside
    raise AssertionError("unreachable")


def settle_aside(path: Path, aside: Path | None, what: str) -> str | None:
    """Drop the set-aside copy when the run wrote the same bytes again; else say where it is.

    Example:
        >>> settle_aside(Path("logs/web.csv.rejected.csv"), aside, "rejected rows")
        'the earlier rejected rows in logs/web.csv.rejected.csv (edited since?) were kept as …'
    """
    if aside is None:
        return None
    if path.is_file() and filecmp.cmp(path, aside, shallow=False):
        aside.unlink()
        return None
    return f"the earlier {what} in {path} (edited since?) were kept as {aside}"
