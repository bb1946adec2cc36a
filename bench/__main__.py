"""python3 -m bench [--quick] [--only NAME ...] [--out PATH] [--database-url URL]: run the benchmarks,
print a table, write results.json (SQLite by default; --database-url postgresql+asyncpg://... runs every
benchmark on PostgreSQL, each stack in a database of its own)."""
from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import time
import traceback
from pathlib import Path

from . import stores
from .harness import Figure, progress
from .results import load_average, write

BENCHMARKS = {"board": "b1_board", "intervention": "b2_intervention", "ack": "b3_ack", "ingest": "b4_ingest",
              "dispatch": "b5_dispatch", "memory": "b6_memory", "startup": "b7_startup",
              "cluster": "b8_cluster"}


def fmt(v) -> str:
    return "—" if v is None else (f"{v:,.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else f"{v:,}")


def table(results: dict[str, list[Figure]]) -> str:
    rows = [("benchmark", "figure", "value", "unit", "target", "met", "baseline")]
    for name, figures in results.items():
        for f in figures:
            met = {True: "yes", False: "NO", None: ""}[f.met]
            rows.append((name, f.name, fmt(f.value), f.unit, f.target or "", met,
                         f"{fmt(f.baseline)} ({f.baseline_name})" if f.baseline is not None else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  * {n}/{f.name}: {f.notes}" for n, fs in results.items() for f in fs if f.notes]
    return "\n".join(lines + ["", "notes:"] + notes)


async def main(names: list[str], quick: bool, out: Path) -> int:
    results: dict[str, list[Figure]] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    problem = await stores.unreachable()
    if problem:
        print(f"python3 -m bench: {problem}", file=sys.stderr)
        return 2
    load_at_start = load_average()
    progress(f"store: {stores.store_name()}; load average at the start: {load_at_start}")
    for name in names:
        progress(f"== {name} ({'quick' if quick else 'full'})")
        t = time.monotonic()
        try:
            results[name] = await importlib.import_module(f"bench.{BENCHMARKS[name]}").run(quick)
        except Exception:
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr)
        progress(f"== {name} done in {time.monotonic() - t:.1f}s")
    print(table(results))
    write(out, results, quick=quick, elapsed_s=time.monotonic() - started, errors=errors,
          store=stores.store_name(), load_at_start=load_at_start)
    print(f"\nwrote {out}" + (f"; FAILED to run: {', '.join(errors)}" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in well under a minute")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.json")
    parser.add_argument("--database-url", metavar="URL",
                        help="run on PostgreSQL: a postgresql+asyncpg:// URL of an existing database on the server "
                             "(e.g. .../postgres); each benchmark stack creates and drops a database of its own")
    args = parser.parse_args()
    if args.database_url:
        problem = stores.check_server_url(args.database_url)
        if problem:
            parser.error(problem)
        stores.SERVER_URL = args.database_url
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(asyncio.run(main(args.only or list(BENCHMARKS), args.quick, args.out)))
