"""The load job as the chaos suite runs it in a child process (settings from ``PLUGINLAB_*``).

    python tests/chaos/load_job.py OUT_DIR

Loads every member, their identities and their quota usage, and writes ``members.parquet``,
``identities.parquet`` and ``quota.parquet`` into OUT_DIR — each through a temporary file and a
rename, so a killed run leaves either a whole file or none.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import plabdata

CONCURRENCY = 8


def main(out: Path) -> None:
    with plabdata.connect() as admin:
        members = plabdata.load_members(admin, progress=False)
        identities = plabdata.load_identities(
            admin, members, concurrency=CONCURRENCY, progress=False
        )
        quota = plabdata.load_quota_usage(admin, members, concurrency=CONCURRENCY, progress=False)
    for name, frame in (("members", members), ("identities", identities), ("quota", quota)):
        partial = out / f"{name}.parquet.partial"
        frame.to_parquet(partial)
        os.replace(partial, out / f"{name}.parquet")
    print(f"loaded {len(members)} members, {len(identities)} identities, {len(quota)} quota rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
