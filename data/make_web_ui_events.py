"""Write plabdata/samples/web_ui_events.parquet and data/web_ui_events.csv: a web UI's exported
access log.

30,000 usage rows over three weeks of October 2026 by the emulator's demo members (the first
200 of random seed 0, so any emulator started with ``seed >= 200`` knows every email), with a
realistic mix of sources, countries and subdivisions — and a handful of bad rows a real
export would have: an unknown email, a blank email, an 11-character source, a bad country,
a subdivision of another country, an unparsable timestamp.

Deterministic: the same files on every run and machine. Run from the repository root:

    python data/make_web_ui_events.py
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from plabdata.emulator import ANCHOR_MS, DEFAULT_PLUGIN_ID
from plabdata.emulator.seed import generate

ROWS = 30_000
MEMBERS = 200
HERE = Path(__file__).resolve().parent
#: The shipped sample lives in the package; the CSV copy stays here, for the tests.
SAMPLES = HERE.parent / "plabdata" / "samples"
START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 21

SOURCES = (("WEB_UI", 70), ("MOBILE", 15), ("API", 10), ("EXTENSION", 5))
LOCATIONS = (
    ("US", ("CA", "NY", "TX", "WA", "FL", None), 34),
    ("GB", ("ENG", "SCT", None), 10),
    ("DE", ("BE", "BY", "HH", None), 9),
    ("FR", ("IDF", "ARA", None), 8),
    ("IN", ("KA", "MH", "DL", None), 8),
    ("CA", ("ON", "QC", "BC", None), 6),
    ("BR", ("SP", "RJ", None), 6),
    ("JP", ("13", "27", None), 5),
    ("AU", ("NSW", "VIC", None), 5),
    ("NG", ("LA", None), 4),
    ("ES", ("MD", "CT", None), 4),
    (None, (None,), 7),  # no location in the log (VPN, privacy mode)
)

# (row index, column, bad value, why): one of each kind a real export would carry.
BAD_ROWS = (
    (137, "email", "former.user@example.org", "unknown email"),
    (2_048, "email", "", "blank email"),
    (5_555, "source", "WEB_UI_BETA", "11-character source"),
    (9_001, "country", "XK", "not an ISO 3166-1 code"),
    (12_345, "region", "ENG", "a subdivision of another country (row is in the US)"),
    (17_000, "timestamp", "yesterday 25:61", "unparsable timestamp"),
    (21_212, "country", "U5", "bad country"),
    (26_000, "region", "ZZ", "unknown subdivision"),
)


def _pick(rng: random.Random, choices: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    weights = [float(c[-1]) for c in choices]
    return rng.choices(choices, weights=weights, k=1)[0]


def build() -> pd.DataFrame:
    """The log as a DataFrame (all text, as a web server's CSV export would be)."""
    members = generate(
        MEMBERS, random_seed=0, plugin_id=DEFAULT_PLUGIN_ID, start_index=0, now=ANCHOR_MS
    ).members
    emails = [m.email for m in members]
    rng = random.Random("plabdata:web_ui_events:v1")
    # A few heavy users, a long tail: member activity follows a Zipf-like curve.
    activity = [1.0 / (rank + 1) ** 0.8 for rank in range(len(emails))]
    rng.shuffle(activity)
    times = sorted(rng.uniform(0, DAYS * 86_400) for _ in range(ROWS))
    rows = []
    for seconds in times:
        email = rng.choices(emails, weights=activity, k=1)[0]
        source = _pick(rng, SOURCES)[0]
        country, regions, _ = _pick(rng, LOCATIONS)
        region: str | None = rng.choice(regions)
        stamp = START + timedelta(seconds=round(seconds, 3))
        rows.append(
            {
                "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "email": email if rng.random() > 0.1 else email.upper(),  # exports vary case
                "source": source,
                "country": country or "",
                "region": region or "",
                "in_quota": "no" if source == "API" and rng.random() < 0.3 else "yes",
                "path": rng.choice(("/chat", "/chat", "/search", "/export", "/settings")),
            }
        )
    for index, column, value, _why in BAD_ROWS:
        rows[index][column] = value
    if rows[12_345]["country"] != "US":
        rows[12_345]["country"] = "US"
    return pd.DataFrame(rows)


def main() -> None:
    frame = build()
    frame.to_csv(HERE / "web_ui_events.csv", index=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # Parquet keeps the timestamp typed where it parses (the one bad row stays text in CSV).
    stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    table = table.set_column(
        0, "timestamp", pa.array(stamps.astype("datetime64[ms, UTC]"), pa.timestamp("ms", "UTC"))
    )
    pq.write_table(table, SAMPLES / "web_ui_events.parquet", compression="zstd")
    print(
        f"wrote {len(frame):,} rows to data/web_ui_events.csv and "
        "plabdata/samples/web_ui_events.parquet"
    )


if __name__ == "__main__":
    main()
