"""`make bench` (SQLite) and `make bench DB=postgres`: a synthetic trial at a chosen scale,
each benchmark against a baseline measured in the same run on the same database, printed
as a table (name, ours, baseline, ratio, target, pass) and written to bench/results.json.
The service runs under gunicorn (2 workers) on 127.0.0.1; the load comes from a separate
client process' threads. Not part of the test suite.

    python -m bench --scale small|medium|large [--db sqlite|postgres] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cases
from bench.server import Database

OUT = Path(__file__).resolve().parent / "results.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale", choices=("small", "medium", "large"), default="small")
    parser.add_argument(
        "--db", choices=("sqlite", "postgres"), default=os.environ.get("DB", "sqlite")
    )
    parser.add_argument("--only", nargs="*", help=f"some of: {', '.join(cases.CASES)}")
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args()
    chosen = opts.only or list(cases.CASES)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, Database(opts.db, Path(tmp)) as database:
        started = time.perf_counter()
        context = cases.prepare(database, opts.scale, Path(tmp))
        print(f"data generated in {time.perf_counter() - started:.0f} s ({opts.scale}, {opts.db})")
        for name in chosen:
            print(f"running {name} ...", flush=True)
            outcome = cases.CASES[name](context)
            rows.extend(outcome if isinstance(outcome, list) else [outcome])
    _print(rows)
    report = {
        "scale": opts.scale,
        "db": opts.db,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": rows,
    }
    opts.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"written {opts.out}")


def _print(rows: list[dict[str, Any]]) -> None:
    head = f"{'benchmark':<34} {'ours':>14} {'baseline':>14} {'ratio':>7} {'target':>10} pass"
    print(head)
    print("-" * len(head))
    for row in rows:
        ratio = row.get("ratio")
        print(
            f"{row['name']:<34} {row['ours']:>14} {row['baseline']:>14} "
            f"{ratio if ratio is not None else '-':>7} {row['target']:>10} "
            f"{'yes' if row['pass'] else 'NO'}"
        )
        if row.get("note"):
            print(f"    {row['note']}")


if __name__ == "__main__":
    main()
