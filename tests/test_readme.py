"""The README as a test: every shell and Python snippet runs as written, in order, in a fresh
folder (with examples/ and benchmarks/ beside it, as in a clone), and the command reference is
exactly what the parser says.

What is not run: `pip install` (the test runs inside the installed package; .ci/run runs
exactly those installs), `python3 -m pytest` (this is it), and Python snippets that import a
package that is not installed (torchvision, timm). `convsee serve` lines are started, asked
for their page, and stopped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from convsee.cli.reference import END, START, markdown

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)


def snippets():
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README)]


def test_the_command_reference_is_generated_from_the_parser():
    text = (REPO / "docs" / "cli.md").read_text()
    start, end = text.index(START), text.index(END) + len(END)
    assert text[start:end] == markdown(), (
        "docs/cli.md's command reference is stale: python -m convsee.cli.reference docs/cli.md"
    )


def test_readme_opens_with_what_it_is_a_picture_and_two_commands():
    head = README[: README.index("## Commands")]
    assert head.startswith("# convsee") and "![" in head
    commands = re.findall(r"^```bash\n(.*?)\n```", head, re.S | re.M)
    assert commands == [
        "pip install torch==2.13.0 -e . && convsee render",
        "pip install torch==2.13.0 -e '.[test]' && python3 -m pytest",
    ]
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m pip install -q torch==2.13.0 -e '.[test]'" in ci
    assert "\npython3 -m pytest\n" in ci


def _run_shell(line: str, cwd: Path, env: dict) -> None:
    if line.startswith("convsee serve"):
        _serve(line, cwd, env)
        return
    r = subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


def _serve(line: str, cwd: Path, env: dict) -> None:
    port = re.search(r"--port (\d+)", line)
    port = int(port.group(1)) if port else 8000
    p = subprocess.Popen(
        ["bash", "-c", f"exec {line.split('#')[0]}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200 and b"convsee" in r.read()
                break
            except OSError:
                if p.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"{line}: {p.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.3)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(30)


@pytest.fixture(scope="module")
def clone(tmp_path_factory, mnist_dir):
    """A folder laid out like a clone, with the environment a user would have."""
    root = tmp_path_factory.mktemp("readme")
    for d in ("examples", "benchmarks"):
        shutil.copytree(REPO / d, root / d, ignore=shutil.ignore_patterns("out", "__pycache__"))
    env = dict(os.environ)
    env.update(
        CONVSEE_DATA=str(mnist_dir),
        HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "cache"),
        MPLCONFIGDIR=str(root / "mpl"),
    )
    return root, env


def test_every_snippet_runs_as_written(clone):
    root, env = clone
    ran = 0
    for kind, code in snippets():
        if kind == "bash":
            lines = [
                ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
            ]
            for line in lines:
                parts = [s.strip() for s in line.split("&&")]
                parts = [s for s in parts if not s.startswith(("pip install", "python3 -m pytest"))]
                for part in parts:
                    _run_shell(part, root, env)
                    ran += 1
        else:
            needs = re.findall(r"^\s*import (torchvision|timm)\b", code, re.M)
            if any(importlib.util.find_spec(n) is None for n in needs):
                continue  # documented for users who have it; not installed here
            r = subprocess.run(
                [sys.executable, "-c", code],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert r.returncode == 0, f"{code}\n{r.stderr[-3000:]}"
            ran += 1
    assert ran >= 10  # the README's snippets were found
    assert (root / "media" / "conv1" / "3.png").is_file()  # `convsee render` ran
    assert (root / "small_cnn.safetensors").is_file()  # the worked example ran
