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
