"""Migrations: read a large Auth0 NDJSON user export with the ``auth0`` preset.

The work: a synthetic Auth0 user export job file of N users (1,000,000 full, 20,000 quick),
in Auth0's documented NDJSON shape with nested ``user_metadata`` / ``app_metadata`` and
``identities``. plabdata reads it with ``read_member_sheet(path, source="auth0")`` — reading,
mapping *and* validating every row (emails included), as the plan needs. The official client
has no equivalent; the comparison is the obvious pandas way, ``pd.read_json(lines=True)`` then
``pd.json_normalize`` (reading and flattening only: no validation, no mapping).

Each side runs in its own child process so that its peak memory (``peak_mb``) is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import row

SCENARIO = "migrate auth0 ndjson"


def write_export(path: Path, users: int) -> None:
    """A deterministic Auth0 export of ``users`` users (one ``json.dumps`` per line)."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(users):
            social = i % 5 == 3
            uid = f"{i:024x}"
            user: dict[str, Any] = {
                "user_id": f"google-oauth2|{i}" if social else f"auth0|{uid}",
                "email": f"user{i}@example{i % 97}.com",
                "email_verified": i % 4 != 1,
                "given_name": f"Given{i % 1000}",
                "family_name": f"Family{i % 997}",
                "name": f"Given{i % 1000} Family{i % 997}",
                "nickname": f"user{i}",
                "picture": f"https://s.gravatar.com/avatar/{uid}.png",
                "created_at": f"2021-{i % 12 + 1:02d}-{i % 28 + 1:02d}T10:{i % 60:02d}:00.000Z",
                "identities": [
                    {
                        "provider": "google-oauth2" if social else "auth0",
                        "user_id": str(i),
                        "connection": "google-oauth2" if social else "Username-Password",
                        "isSocial": social,
                    }
                ],
                "user_metadata": {"plan": ["free", "pro"][i % 2], "prefs": {"theme": "dark"}},
                "app_metadata": {"seats": i % 9 + 1},
                "logins_count": i % 50,
            }
            out.write(json.dumps(user, separators=(",", ":")) + "\n")


_PLABDATA = """
import json, sys, time
from benchmarks.common import peak_mb
from plabdata import read_member_sheet
start = time.perf_counter()
sheet = read_member_sheet(sys.argv[1], source="auth0")
seconds = time.perf_counter() - start
notes = sheet.rows["password_note"].value_counts().to_dict()
print(json.dumps({"seconds": seconds, "rows": len(sheet.rows), "issues": len(sheet.issues),
                  "peak_mb": peak_mb(), "notes": notes}))
"""

_PANDAS = """
import json, sys, time
import pandas as pd
from benchmarks.common import peak_mb
start = time.perf_counter()
raw = pd.read_json(sys.argv[1], lines=True, dtype=False)
flat = pd.json_normalize(raw.to_dict("records"))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(flat), "peak_mb": peak_mb()}))
"""


def _child(code: str, path: Path) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[dict[str, Any]]:
    """One row: plabdata's preset read vs pandas read_json + json_normalize."""
    users = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="plabdata-bench-migrations-") as folder:
        path = Path(folder) / "auth0-users.ndjson"
        write_export(path, users)
        # An export at rest, as a user reads one: without this, both sides would be timed
        # against the kernel writing the fresh 519 MB file back (plabdata ~40 % slower).
        os.sync()
        size_mb = path.stat().st_size / 1e6
        ours = _child(_PLABDATA, path)
        theirs = _child(_PANDAS, path)
    rate = users / ours["seconds"]
    result = row(
        SCENARIO,
        f"{users:,} users ({size_mb:,.0f} MB): read, map and validate",
        plabdata_s=ours["seconds"],
        official_s=theirs["seconds"],
        official_note="pandas read_json(lines=True) + json_normalize, no validation",
        notes=(
            f"{rate:,.0f} users/s; {ours['rows']:,} valid rows, notes {ours['notes']}; "
            f"peak {ours['peak_mb']:,.0f} MB vs pandas {theirs['peak_mb']:,.0f} MB"
        ),
    )
    result["peak_mb"] = ours["peak_mb"]
    result["users_per_s"] = rate
    return [result]
