"""Every benchmark still runs: each `benchmarks/bench_*.py --quick` (one short round, its
numbers not asserted, nothing written to benchmarks/out) exits 0 and prints its JSON result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

BENCHMARKS = sorted((REPO / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 6


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_quick_mode_runs(script, mnist_dir, tmp_path):
    out_dir = REPO / "benchmarks" / "out"
    before = {p: p.stat().st_mtime_ns for p in out_dir.glob("*.json")} if out_dir.is_dir() else {}
    env = {
        **os.environ,
        "CONVSEE_DATA": str(mnist_dir),
        "PYTHONPATH": str(REPO / "src"),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    p = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads(p.stdout[p.stdout.rfind("\n{\n") + 1 :])  # the JSON printed last
    assert result.get("quick") is True and len(result) > 1
    after = {p: p.stat().st_mtime_ns for p in out_dir.glob("*.json")} if out_dir.is_dir() else {}
    assert after == before, "--quick must not write benchmarks/out"
