"""The docs as a test: every shell and Python block of README.md and of every docs/*.md page
runs as written, every relative link resolves, and the command reference is what the parser
says.

How a page is run: its blocks in order, in a fresh folder laid out like a clone (examples/ and
benchmarks/ copied beside it), with the environment a user would have (MNIST where
$CONVSEE_DATA points, a fresh HOME and cache, no network: HTTP(S) proxies point at a closed
port). A ```bash block runs line by line (a line ending in a backslash continues), each line's
`&&` parts one by one; a ```python block runs as one `python -c` process, so each block
imports what it uses. ```text and ```json blocks are output, not run.

What is not run, and why:
- `pip install` and `python3 -m pytest` parts of a line: the test runs inside the installed
  package, and is the test command; .ci/run runs exactly those installs.
- A block with `<!-- not run: REASON -->` on the line before its fence (torchvision, timm,
  weights from the internet, a benchmark's minutes). Its Python must still compile, and it is
  reported as a skip with its reason.
- `convsee serve` lines are started with `--port` set to a free port (unless the line names
  one, so a server another test left on 8000 can never answer for it), asked for their page,
  and stopped.

What keeps it affordable, on a 2-core machine shared with other work:
- Training lines (`convsee train ...`, `python examples/shapes.py ...`) are the only heavy
  ones. Each distinct line runs once per test session, exactly as written; a later page with
  the same line gets the files that run wrote, copied into its own folder, instead of training
  again.
- torch runs one thread (OMP_NUM_THREADS=1, which also turns convsee's own thread policy off;
  tests/test_threads.py tests the policy). examples/shapes.py trains with torch's default of a
  thread per core and no policy: on a loaded machine its spinning threads took 685 s (221 s of
  CPU) where one thread took 90 s (31 s of CPU).
Nothing else is shortened or rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from convsee.cli.reference import END, START, markdown

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]  # every block of these runs
LINKED = [*PAGES, REPO / "benchmarks" / "README.md", REPO / "CHANGELOG.md"]  # links checked
LANGS = {"bash", "python", "text", "json"}
TRAINING = re.compile(r"^(convsee train |python3? examples/shapes\.py )")
NOT_RUN = re.compile(r"^<!-- not run: (.+?) -->$")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# ---------------------------------------------------------------------------------------------
# reading markdown
# ---------------------------------------------------------------------------------------------


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    code: str
    not_run: str | None  # the reason, when marked


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, in order."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j] != "```":
            j += 1
        assert j < len(lines), f"{_rel(page)}:{i + 1}: a fence that is never closed"
        why = NOT_RUN.match(lines[i - 1]) if i else None
        code = "\n".join(lines[i + 1 : j]) + "\n"
        out.append(Block(page, i + 1, m.group(1).strip(), code, why and why.group(1)))
        i = j + 1
    return out


def prose(page: Path) -> list[str]:
    """The lines of a page outside fenced blocks."""
    out, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = unicodedata.normalize("NFC", text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(page):
        m = re.match(r"^#{1,6} (.+?)\s*#*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every markdown link and image outside code."""
    out, fenced = [], False
    for n, line in enumerate(page.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        for m in re.finditer(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            out.append((n, m.group(1)))
    return out


# ---------------------------------------------------------------------------------------------
# the page's form
# ---------------------------------------------------------------------------------------------


def test_the_command_reference_is_generated_from_the_parser():
    text = (REPO / "docs" / "cli.md").read_text()
    start, end = text.index(START), text.index(END) + len(END)
    assert text[start:end] == markdown(), (
        "docs/cli.md's command reference is stale: python -m convsee.cli.reference docs/cli.md"
    )


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_the_attribution_file_names_the_reference_gives_are_the_ones_written(method):
    """docs/cli.md says OUT/attribution_{input}_{class}[_{method}].png; the files say so too."""
    import convsee
    from convsee.cli.attribution import DESCRIPTION
    from convsee.draw.figure import Figures
    from convsee.views.attribution import attribution

    pattern = "attribution_{input}_{class}" + ("" if method == "gradcam" else "_{method}")
    assert f"OUT/{pattern}.png" in " ".join(DESCRIPTION.split())
    res = attribution(convsee.load(), ["sample:3"], None, method, None)
    want = pattern.format(input="sample_3", **{"class": 3, "method": method})
    assert sorted(Figures(res.figures).files()) == [f"{want}.json", f"{want}.png"]


def test_readme_opens_with_what_it_is_a_picture_and_two_commands():
    text = README.read_text()
    assert text.startswith("# convsee")
    lines = text.splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200)"
    assert len(re.findall(r"!\[", text)) == 1, "the README shows one picture"
    first = text.index("\n## ")  # what it is and the picture come before any section
    assert "![" in text[:first] and len(text[:first].split("\n\n")) >= 3
    second = text.index("\n## ", first + 1)
    assert text[first:].startswith("\n## Two commands\n")
    commands = re.findall(r"^```bash\n(.*?)\n```", text[first:second], re.S | re.M)
    assert commands == [
        "pip install torch==2.13.0 -e . && convsee render",
        "pip install torch==2.13.0 -e '.[test]' && python3 -m pytest",
    ]
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m pip install -q torch==2.13.0 -e '.[test]'" in ci
    assert "\npython3 -m pytest\n" in ci


def test_the_readme_links_every_docs_page():
    targets = {t.split("#")[0] for _, t in links(README)}
    for page in [*PAGES[1:], REPO / "benchmarks" / "README.md", REPO / "CHANGELOG.md"]:
        assert _rel(page) in targets, f"README.md does not link {_rel(page)}"


def test_every_block_says_what_it_is():
    """A fence without one of the known languages would be silently neither run nor output;
    on the pages that are not run (benchmarks/README.md, CHANGELOG.md) every command says why."""
    for page in LINKED:
        for b in blocks(page):
            where = f"{_rel(page)}:{b.line}"
            assert b.lang in LANGS, f"{where}: fence language {b.lang!r}"
            if b.not_run:
                assert b.lang in ("bash", "python"), f"{where}: output is never run"
            elif page not in PAGES:
                assert b.lang not in ("bash", "python"), f"{where}: mark it <!-- not run: ... -->"


def test_every_relative_link_and_anchor_resolves():
    checked = 0
    for page in LINKED:
        for n, target in links(page):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{_rel(page)}:{n}: {target}"
            assert dest.exists(), f"{where}: no such file"
            assert dest.is_relative_to(REPO), f"{where}: outside the repository"
            if anchor:
                assert dest.suffix == ".md", f"{where}: an anchor into a file that is not a page"
                assert anchor in anchors(dest), f"{where}: no such heading in {dest.name}"
            checked += 1
    assert checked >= 40  # the pages' links were found


def test_the_anchor_rule_is_githubs():
    assert slug("What `convsee render` draws") == "what-convsee-render-draws"
    assert slug("2. The inputs") == "2-the-inputs"
    assert slug("6. ReLU and pooling: 24 → 12") == "6-relu-and-pooling-24--12"
    assert slug("The live page: `convsee serve`") == "the-live-page-convsee-serve"


def test_every_benchmark_script_is_documented():
    text = (REPO / "benchmarks" / "README.md").read_text()
    for script in sorted((REPO / "benchmarks").glob("bench_*.py")):
        assert f"python benchmarks/{script.name}" in text, f"{script.name} is not documented"
    for name in re.findall(r"benchmarks/([\w.]+\.py)", text):
        assert (REPO / "benchmarks" / name).is_file(), name


# ---------------------------------------------------------------------------------------------
# running the blocks
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(line: str, cwd: Path, env: dict) -> None:
    command = line.split("#")[0].strip()
    port = re.search(r"--port (\d+)", command)
    if port:
        port = int(port.group(1))
    else:
        port = _free_port()
        command += f" --port {port}"
    p = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200 and b"convsee" in r.read()
                break
            except OSError:
                if p.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"{line}: {p.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.3)
        assert p.poll() is None, f"{line}: the server ended"
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(30)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


_TRAINED: dict[str, Path] = {}  # a training line: the folder holding the files it wrote


def _run_line(line: str, cwd: Path, env: dict, cache: Path) -> None:
    if line.startswith("convsee serve"):
        _serve(line, cwd, env)
        return
    if TRAINING.match(line) and line in _TRAINED:
        shutil.copytree(_TRAINED[line], cwd, dirs_exist_ok=True)
        return
    before = _files(cwd) if TRAINING.match(line) else {}
    r = subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    if TRAINING.match(line):
        keep = cache / f"run{len(_TRAINED)}"
        for name, stamp in _files(cwd).items():
            if before.get(name) != stamp:
                (keep / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(cwd / name, keep / name)
        _TRAINED[line] = keep


def _shell_lines(code: str) -> list[str]:
    code = re.sub(r"\\\n\s*", " ", code)  # continued lines
    lines = [ln.strip() for ln in code.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("trained")


def _clone(root: Path, mnist_dir: Path) -> dict:
    """A folder laid out like a clone, and the environment a user would have."""
    for d in ("examples", "benchmarks"):
        shutil.copytree(REPO / d, root / d, ignore=shutil.ignore_patterns("out", "__pycache__"))
    env = dict(os.environ)
    closed = f"http://127.0.0.1:{_free_port()}"
    env.update(
        CONVSEE_DATA=str(mnist_dir),
        HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "cache"),
        MPLCONFIGDIR=str(root / "mpl"),
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        http_proxy=closed,
        https_proxy=closed,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        OMP_NUM_THREADS="1",
    )
    return env


def _runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if not b.not_run and b.lang in ("bash", "python")]


RUN = [page for page in PAGES if _runnable(page)]


def test_the_pages_with_commands_are_run():
    names = {_rel(p) for p in RUN}
    assert {"README.md", "docs/tutorial.md", "docs/your-model.md", "docs/page.md"} <= names
    assert {"docs/python.md", "docs/design.md"} <= names


@pytest.mark.parametrize("page", RUN, ids=_rel)
def test_every_block_runs_as_written(page, tmp_path, mnist_dir, cache):
    env = _clone(tmp_path, mnist_dir)
    ran = 0
    for b in _runnable(page):
        if b.lang == "bash":
            for line in _shell_lines(b.code):
                parts = [s.strip() for s in line.split("&&")]
                for part in parts:
                    if part.startswith(("pip install", "python3 -m pytest")):
                        continue
                    _run_line(part, tmp_path, env, cache)
                    ran += 1
        else:
            r = subprocess.run(
                [sys.executable, "-c", b.code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert r.returncode == 0, f"{_rel(page)}:{b.line}\n{b.code}\n{r.stderr[-3000:]}"
            ran += 1
    if page == README:
        assert (tmp_path / "media" / "conv1" / "3.png").is_file()  # `convsee render` ran
        assert (tmp_path / "small_cnn.safetensors").is_file()  # the worked example ran


def _not_run():
    return [b for page in LINKED for b in blocks(page) if b.not_run]


@pytest.mark.parametrize("block", _not_run(), ids=lambda b: f"{_rel(b.page)}:{b.line}")
def test_blocks_not_run_say_why_and_compile(block):
    if block.lang == "python":
        compile(block.code, f"{_rel(block.page)}:{block.line}", "exec")
    else:
        r = subprocess.run(["bash", "-n", "-c", block.code], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    pytest.skip(f"{_rel(block.page)}:{block.line}: not run: {block.not_run}")
