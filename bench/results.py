"""results.json: every figure with its unit, the machine, the git commit."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: on a shared machine, read the figures with these."""
    return [round(x, 2) for x in os.getloadavg()]


def write(path: Path, results: dict[str, list], *, quick: bool, elapsed_s: float, errors: dict[str, str],
          store: str = "sqlite", load_at_start: list[float] | None = None) -> None:
    """The run's figures at the top level, and under `stores` with the other store's last run
    (kept from the file), so one file holds SQLite and PostgreSQL side by side."""
    run = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": commit(), "quick": quick, "elapsed_s": round(elapsed_s, 1), "store": store,
        "load_average_at_start": load_at_start, "load_average_at_end": load_average(),
        "benchmarks": {name: [{**asdict(f), "met": f.met} for f in figures] for name, figures in results.items()},
        "errors": errors,
    }
    stores = {}
    if path.exists():
        try:
            stores = json.loads(path.read_text()).get("stores") or {}
        except (ValueError, AttributeError):
            stores = {}
    stores = {name: other for name, other in stores.items() if name != store and other.get("quick") == quick}
    stores[store] = run
    doc = {**run, "machine": machine(), "stores": dict(sorted(stores.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
