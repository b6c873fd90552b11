"""What the benchmark scripts share: where results go, loopback ports, Chromium's flags."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

OUT = Path(__file__).parent / "out"
# the real MNIST: $CONVSEE_DATA, else ../shared/data/mnist beside the repository
SHARED_MNIST = Path(
    os.environ.get("CONVSEE_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
)
# Debian's Chromium, headless, with nothing reaching for the (closed) network
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def add_quick(ap) -> None:
    """--quick: one short round that checks the benchmark still runs (tests/test_benchmarks.py
    runs every benchmark so); its numbers mean nothing and nothing is written to out/."""
    ap.add_argument(
        "--quick",
        action="store_true",
        help="one short round to check that it runs: no figures kept, nothing written to out/",
    )


def save_result(name: str, result: dict, quick: bool = False) -> int:
    """Write benchmarks/out/NAME.json (not in --quick mode) and print the same JSON; exit 0."""
    if quick:
        result = {"quick": True, **result}
    else:
        OUT.mkdir(exist_ok=True)
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=2))
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def memory_mb(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of a process, in MB, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(line.split()[1]) / 1024
    return out
