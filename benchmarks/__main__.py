"""``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``: every scenario, one table.

Each ``bench_<name>.py`` module exposes ``run(quick) -> list[dict]``; this harness runs them in
order, prints one Markdown table (plabdata vs the official ``pluginlab_admin`` client, side by
side) and writes ``results.md`` and ``results.json`` to the output folder.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIOS = ("loaders", "sync", "events", "tokens", "migrations", "history")


def _fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:{spec}}{suffix}"
    return f"{value}{suffix}"


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of result rows."""
    head = (
        "| scenario | work | official (s) | plabdata (s) | ratio | % of rate limit "
        "| ideal (s) | % of ideal | 429s | peak MB | notes |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        official = _fmt(r.get("official_s"))
        if r.get("official_note"):
            official += f" ({r['official_note']})"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["scenario"],
                    r["work"],
                    official,
                    _fmt(r.get("plabdata_s"), ".3f"),
                    _fmt(r.get("ratio"), ".1f", "×"),
                    _fmt(
                        None if r.get("limit_fraction") is None else 100 * r["limit_fraction"],
                        ".1f",
                        " %",
                    ),
                    _fmt(r.get("ideal_s")),
                    _fmt(
                        None if r.get("ideal_fraction") is None else 100 * r["ideal_fraction"],
                        ".1f",
                        " %",
                    ),
                    _fmt(r.get("n429")),
                    _fmt(r.get("peak_mb"), ".0f"),
                    r.get("notes", ""),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count()
    py = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {py}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small work sizes (CI smoke run)")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS, help="run only these modules")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder")
    args = parser.parse_args(argv)
    # The jobs run against throwaway emulators: their default journals must neither pile up
    # in, nor be read from, the user's own PLABDATA_HOME.
    home = tempfile.TemporaryDirectory(prefix="plabdata-bench-home-")
    os.environ["PLABDATA_HOME"] = home.name
    rows: list[dict[str, Any]] = []
    started = time.time()
    for name in args.only or SCENARIOS:
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
        except ModuleNotFoundError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        print(
            f"running {name} ({'quick' if args.quick else 'full'}) ...", file=sys.stderr, flush=True
        )
        rows.extend(module.run(quick=args.quick))
    text = table(rows)
    mode = "quick" if args.quick else "full"
    header = f"plabdata benchmarks ({mode}) on {machine()}, {time.time() - started:.0f} s"
    print(f"\n{header}\n\n{text}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(f"{header}\n\n{text}\n")
    payload = {"machine": machine(), "quick": args.quick, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nwrote {args.out / 'results.md'} and {args.out / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
