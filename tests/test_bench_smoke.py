"""Every benchmark of bench/ runs in --quick mode (tiny sizes), so the suite cannot rot.

Benchmarks never fail on a number: this only checks that each one ran and reported its figures
with sane types and units, and that the results file was written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = {"board", "intervention", "ack", "ingest", "dispatch", "memory", "startup", "cluster"}


def test_every_benchmark_runs_in_quick_mode(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "figure" in proc.stdout and "notes:" in proc.stdout

    doc = json.loads(out.read_text())
    assert doc["quick"] is True and not doc["errors"]
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["python"] and doc["machine"]["cpu"]
    assert doc["store"] == "sqlite" and len(doc["load_average_at_start"]) == 3
    assert set(doc["stores"]) == {"sqlite"}
    assert doc["git_commit"] is None or len(doc["git_commit"]) == 40
    assert set(doc["benchmarks"]) == BENCHMARKS
    for name, figures in doc["benchmarks"].items():
        assert figures, name
        for f in figures:
            assert isinstance(f["name"], str) and f["name"], (name, f)
            assert isinstance(f["unit"], str) and f["unit"], (name, f)
            assert f["value"] is None or isinstance(f["value"], (int, float)), (name, f)
            assert f["baseline"] is None or isinstance(f["baseline"], (int, float)), (name, f)
            assert f["met"] in (True, False, None) and isinstance(f["notes"], str), (name, f)
            if f["target"]:
                assert f["target"].split()[0] in ("<=", ">=", "=="), (name, f)
        assert any(isinstance(f["value"], (int, float)) for f in figures), name


def test_a_benchmark_runs_on_postgresql_in_a_database_of_its_own(tmp_path, pg_url):
    """--database-url: the stack creates (and drops) its own database on that server; the results
    file then holds the SQLite run too, side by side."""
    out = tmp_path / "results.json"
    for extra in ([], ["--database-url", pg_url]):
        proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "startup", "--out", str(out), *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["store"] == "postgresql" and set(doc["stores"]) == {"sqlite", "postgresql"}
    assert all(doc["stores"][s]["benchmarks"]["startup"] for s in ("sqlite", "postgresql"))


def test_an_unreachable_database_server_is_one_line_with_its_fix(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "startup", "--out", str(tmp_path / "r.json"),
                           "--database-url", "postgresql+asyncpg://nobody@127.0.0.1:1/none"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot use postgresql+asyncpg://nobody@127.0.0.1:1/none" in proc.stderr and "start PostgreSQL" in proc.stderr
