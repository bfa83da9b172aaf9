"""Sample files shipped inside plabdata, read with :mod:`importlib.resources`, so an installed
wheel has the same demo and notebooks as a checkout.

- ``members_import.xlsx`` / ``.csv`` — a member sheet written against the emulator's demo seed
  of 500 members (``data/make_members_import.py``);
- ``web_ui_events.parquet`` — a web UI's exported access log, 30,000 events
  (``data/make_web_ui_events.py``);
- ``exports/`` — user exports of Auth0, Firebase, Clerk, Supabase and Memberstack to migrate
  from (``data/make_platform_exports.py``).

This module imports nothing from the rest of plabdata.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["NOTEBOOK_SAMPLES", "copy_samples", "packaged_sample", "sample_names"]

#: The samples the shipped notebooks read (``plabdata notebooks`` copies them next to them).
NOTEBOOK_SAMPLES = (
    "members_import.xlsx",
    "web_ui_events.parquet",
    "exports/auth0_users.ndjson",
)

# A zipped install has no files on disk: as_file() extracts them until the interpreter exits.
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def sample_names() -> list[str]:
    """Every shipped sample, as the relative name :func:`packaged_sample` takes."""
    root = files(__name__)
    names: list[str] = []
    for entry in root.iterdir():
        if entry.is_file() and not entry.name.endswith((".py", ".pyc")):
            names.append(entry.name)
        elif entry.is_dir() and entry.name != "__pycache__":
            names.extend(f"{entry.name}/{inner.name}" for inner in entry.iterdir())
    return sorted(names)


def packaged_sample(name: str) -> Path:
    """The path of the shipped sample ``name`` (e.g. ``"exports/auth0_users.ndjson"``).

    Raises:
        FileNotFoundError: plabdata ships no sample of that name (the message lists them).
    """
    resource = files(__name__)
    for part in Path(name).parts:
        resource = resource / part
    if not resource.is_file() or name.endswith(".py"):
        raise FileNotFoundError(
            f"plabdata ships no sample file {name!r}; the samples are: {', '.join(sample_names())}"
        )
    if isinstance(resource, Path):
        return resource
    return _extracted.enter_context(as_file(resource))


def copy_samples(folder: Path, names: tuple[str, ...] = NOTEBOOK_SAMPLES) -> list[Path]:
    """Copy the samples ``names`` into ``folder`` (keeping ``exports/`` as a subfolder); an
    existing file is left as it is — it may be the user's edited copy. Returns the files
    written."""
    written: list[Path] = []
    for name in names:
        target = folder / name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(packaged_sample(name), target)
        written.append(target)
    return written
