"""The journal's file: atomic creation, the run lock on the file itself, and the checks that
refuse a journal that is held, damaged, emptied, swapped or deleted.

Why each piece is the way it is:

- **The lock is the file's, not its name's.** An exclusive ``flock`` on the database file
  itself: a symlink or a hard link reaches the same file, so the same lock. The operating
  system releases it when the holder dies, so a lock left by ``kill -9`` is simply taken over.
  (``flock`` and SQLite's own POSIX record locks do not interact on local file systems.)
- **Created whole or not at all.** A new journal is built under a temporary name beside
  its place (schema and binding committed, fsynced) and then hard-linked into place, which
  fails instead of replacing a journal another run created meanwhile. A crash while creating
  leaves at most a dot-named temporary file — never a half journal at the path.
- **What exists must hold state.** A 0-byte or schema-less file at the path is refused: it
  is what a journal copied without its state, or truncated, looks like — opening it as new
  would re-send everything it had recorded.
- **The path must keep naming the open file** (checked after every commit): a journal
  deleted, moved or replaced under a running job stops the job, instead of letting it
  record into a file nobody will read again.

    >>> held = JournalFile.lock(Path("events.journal"), create=initialise)
    >>> held.problem()          # None while the path still names the locked file
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from plabdata.errors import JournalError

__all__ = [
    "SQLITE_MAGIC",
    "JournalFile",
    "connect_checked",
    "describe_sqlite_error",
    "rescue",
    "set_pragmas",
]

#: The first 16 bytes of every SQLite database file.
SQLITE_MAGIC = b"SQLite format 3\x00"
#: Temporary names of journals being created: ``.<name>.<pid>-<hex>.creating``.
_CREATING = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.creating")

Initialise = Callable[[sqlite3.Connection], None]


def describe_sqlite_error(exc: BaseException) -> str:
    """What an SQLite error means for a journal, and what to do about it."""
    text = str(exc)
    lowered = text.lower()
    if "disk is full" in lowered:
        hint = "free disk space, then run again (requests begun are kept as in doubt)"
    elif "disk i/o" in lowered:
        hint = "the disk failed to read or write it: check the disk, then run again"
    elif "readonly" in lowered or "read-only" in lowered:
        hint = "it cannot be written: check the file's and its folder's permissions"
    elif "locked" in lowered or "busy" in lowered:
        hint = "another program (a sqlite3 shell?) holds it open: close it and run again"
    elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        hint = (
            "it is damaged: restore it from a backup; do not start a new journal unless you "
            "accept that what it recorded may be sent again"
        )
    else:
        hint = "see the SQLite error; the journal was not changed by the failed operation"
    return f"SQLite: {text}; {hint}"


class JournalFile:
    """An open, exclusively locked journal file (see the module docs).

    Attributes:
        path: The path as given (messages name it, and it must keep naming the file).
        real_path: The path with symlinks resolved: SQLite opens this one, so its crash
            sidecar (``-journal``) sits beside the real file whatever link was used.
    """

    def __init__(self, path: Path, real_path: Path, fd: int) -> None:
        self.path = path
        self.real_path = real_path
        self._fd: int | None = fd
        info = os.fstat(fd)
        self.identity = (info.st_dev, info.st_ino)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def lock(cls, path: Path, *, create: Initialise | None) -> JournalFile:
        """Open and lock the journal at ``path``, creating it with ``create`` when absent.

        Raises:
            JournalError: Absent and ``create`` is None; held by another run; empty; not
                an SQLite file; or unreachable (missing folder, permissions).
        """
        real = Path(os.path.realpath(path))
        for _ in range(5):  # retried only when another process creates or swaps it meanwhile
            try:
                fd = os.open(real, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                if create is None:
                    raise JournalError(f"journal {path} does not exist") from None
                _create(path, real, create)
                continue
            except IsADirectoryError:
                raise JournalError(f"journal {path} is a folder: name a file") from None
            except OSError as exc:
                raise JournalError(f"cannot open journal {path}: {exc.strerror}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = os.fstat(fd)
                os.close(fd)
                holder = _holder_pid(info.st_dev, info.st_ino)
                via = "" if real == Path(os.path.abspath(path)) else f" (the file {real})"
                raise JournalError(
                    f"journal {path}{via} is held by another run (pid {holder or 'unknown'}); "
                    "wait for it to finish, or stop it"
                ) from None
            held = cls(path, real, fd)
            if held.problem() is None:
                try:
                    held._check_content()
                except BaseException:
                    held.release()
                    raise
                return held
            held.release()  # replaced between open and lock: open what is there now
        raise JournalError(f"journal {path} keeps changing while being opened: run again")

    def _check_content(self) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            raise JournalError(
                f"journal {self.path} is empty (0 bytes), but a journal exists there: its "
                "record is lost (a copy made without its -wal file, or a truncated file). "
                "Restore the journal from where it came (with its -wal file, if it had one); "
                "delete it only if no run ever sent anything through it"
            )
        if os.pread(self._fd, len(SQLITE_MAGIC), 0) != SQLITE_MAGIC:
            raise JournalError(
                f"{self.path} is not a plabdata journal (not an SQLite file): name the "
                "journal, or a new file"
            )

    # -- while running -------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why the path no longer names the locked file (deleted, moved, replaced), or None."""
        if self._fd is None:
            return f"journal {self.path} is closed"
        try:
            info = os.stat(self.path)
        except OSError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) != self.identity:
            return (
                f"journal {self.path} was replaced by another file while this run was using it "
                "(copied or moved over, or restored from a backup)"
            )
        if info is None or os.fstat(self._fd).st_nlink == 0:
            return f"journal {self.path} was deleted (or moved) while this run was using it"
        return None

    def release(self) -> None:
        """Close the file, which releases the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def set_pragmas(conn: sqlite3.Connection) -> None:
    """Rollback mode and full sync: every commit is in the main file, durably, on return."""
    # DELETE, not WAL: in WAL mode committed state waits in the -wal sidecar for a checkpoint,
    # so a copy of the main file alone (or a lost -wal) is an empty journal. FULL: a
    # committed begin() survives a power cut, not only a killed process.
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=FULL")


def connect_checked(held: JournalFile) -> sqlite3.Connection:
    """An SQLite connection to a locked journal file, refused when damaged or not a journal.

    Raises:
        JournalError: ``quick_check`` fails, the file holds no tables (state expected but
            absent), or other tables than a journal's.
        sqlite3.Error: SQLite could not open it (the caller names the file).
    """
    path = held.path
    conn = sqlite3.connect(
        held.real_path, isolation_level=None, check_same_thread=False, timeout=30
    )
    try:
        set_pragmas(conn)  # switching a journal of an older plabdata out of WAL folds its -wal in
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if verdict != ["ok"]:
            raise JournalError(
                f"journal {path} is damaged (SQLite quick_check: {'; '.join(verdict[:3])}). "
                "Restore it from a backup; do not start a new journal unless you accept that "
                "what it recorded may be sent again"
            )
        if not tables:
            raise JournalError(
                f"journal {path} holds no journal tables, but a file exists there: its record "
                "is lost or it was never completed. Restore it from where it came (with its "
                "-wal file, if it had one); delete it only if no run ever used it"
            )
        if not {"meta", "entries"} <= tables:
            raise JournalError(
                f"{path} is an SQLite database but not a plabdata journal (tables: "
                f"{', '.join(sorted(tables))}): name the journal, or a new file"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def rescue(
    conn: sqlite3.Connection,
    path: Path,
    salvage: Callable[[sqlite3.Connection], object] | None = None,
) -> Path | None:
    """Copy a still-open journal (deleted or replaced under the run) next to its path, with
    ``salvage`` (the outcomes not yet committed) applied to the copy; None if impossible."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.rescued-{stamp}-{os.getpid()}")
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            conn.backup(copy)
            if salvage is not None:
                copy.execute("BEGIN IMMEDIATE")
                salvage(copy)
                copy.execute("COMMIT")
        finally:
            copy.close()
    except (OSError, sqlite3.Error):
        return None
    return target


def _create(path: Path, real: Path, initialise: Initialise) -> None:
    """Build a journal under a temporary name, then link it into place (never replacing)."""
    folder = real.parent
    if not folder.is_dir():
        raise JournalError(f"cannot create journal {path}: the folder {folder} does not exist")
    _remove_abandoned(folder, real.name)
    temporary = folder / f".{real.name}.{os.getpid()}-{secrets.token_hex(4)}.creating"
    try:
        # 0600: a journal holds member emails and ids. SQLite gives its sidecars the same mode.
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600))
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            initialise(conn)
        finally:
            conn.close()
        fd = os.open(temporary, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, real)
        except FileExistsError:
            pass  # another run created it first: open theirs
        except OSError:
            # No hard links here (some network or FAT file systems): a rename is as atomic,
            # but would replace a journal created in the same instant, so look first.
            if not os.path.lexists(real):
                os.rename(temporary, real)
        _fsync_folder(folder)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot create journal {path}: {describe_sqlite_error(exc)}") from exc
    except OSError as exc:
        raise JournalError(f"cannot create journal {path}: {exc.strerror or exc}") from exc
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + "-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _remove_abandoned(folder: Path, name: str) -> None:
    """Delete temporary files of creations whose process died (a crash while creating)."""
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _CREATING.match(entry.name)
            if match is None or match["name"] != name or _alive(int(match["pid"])):
                continue
            with contextlib.suppress(OSError):
                entry.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    # The new name must survive a power cut too, not only the file's content.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _holder_pid(device: int, inode: int) -> int | None:
    """The pid holding a ``flock`` on the file, from ``/proc/locks`` (Linux; else None)."""
    wanted = f"{os.major(device):02x}:{os.minor(device):02x}:{inode}"
    by_inode: int | None = None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                fields = line.split()
                if len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
                    continue
                if fields[5] == wanted:
                    return int(fields[4])
                if fields[5].endswith(f":{inode}"):
                    by_inode = int(fields[4])  # overlay file systems report another device
    except OSError:
        return None
    return by_inode
