"""The thread policy: torch uses the cores other work leaves idle (run/threads.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convsee.run import threads

SRC = str(Path(__file__).parents[1] / "src")


@pytest.fixture
def torch_threads():
    """Restore torch's thread count and the policy after a test."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
    threads._policy = None


@pytest.mark.parametrize(
    "others, cores, current, want",
    [
        (0.0, 2, 2, 2),  # alone: every core
        (1.0, 2, 2, 1),  # a second run: one each
        (1.8, 2, 2, 1),  # the machine is busy: one, never zero
        (3.5, 2, 1, 1),
        (0.6, 2, 2, 2),  # near the boundary: stay
        (0.7, 2, 2, 1),
        (0.4, 2, 1, 1),  # near the boundary: stay
        (0.3, 2, 1, 2),
        (1.0, 8, 8, 7),
        (4.2, 8, 7, 4),
        (0.0, 1, 1, 1),
    ],
)
def test_threads_for(others, cores, current, want):
    assert threads.threads_for(others, cores, current) == want


def _fake_machine(monkeypatch, others_by_call):
    """/proc/stat and this process's CPU time as a machine where other processes keep
    others_by_call[i] cores busy during the i-th interval of one second."""
    clock = {"t": 100.0, "busy": 5000.0, "own": 10.0, "i": 0}

    def sample():
        t, busy, own = clock["t"], clock["busy"], clock["own"]
        i = min(clock["i"], len(others_by_call) - 1)
        clock["i"] += 1
        clock["t"] += 1.0
        clock["own"] += 1.0  # this process: one core's worth
        clock["busy"] += 1.0 + others_by_call[i]
        return t, busy, own

    monkeypatch.setattr(threads, "_sample", sample)
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock["t"])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("CONVSEE_THREADS", raising=False)
    monkeypatch.setattr(threads, "_cores", lambda: 2)


def test_adapt_follows_the_load(monkeypatch, torch_threads):
    # another run is busy; then it ends; then two other processes start
    _fake_machine(monkeypatch, [1.0, 0.1, 1.9, 1.9])
    torch.set_num_threads(2)
    p = threads.start()
    assert p is not None and p.threads == 2  # torch was imported already: nothing yet
    assert threads.adapt() == 1 and torch.get_num_threads() == 1
    assert threads.adapt() == 2 and torch.get_num_threads() == 2
    assert threads.adapt() == 1 and torch.get_num_threads() == 1
    assert [h[2] for h in p.history] == [1, 2, 1]


def test_adapt_measures_at_most_every_interval(monkeypatch, torch_threads):
    _fake_machine(monkeypatch, [1.5])
    torch.set_num_threads(2)
    threads.start().interval = 5.0  # the fake clock moves 1 s a sample
    assert threads.adapt() is None and torch.get_num_threads() == 2


def test_the_users_choice_wins(monkeypatch, torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.start() is None and threads.policy() is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("CONVSEE_THREADS", "1")
    torch.set_num_threads(2)
    assert threads.start() is None and torch.get_num_threads() == 1
    assert threads.adapt() is None


def _run(code: str, **env) -> list[str]:
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", **env}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_first_count_is_set_when_torch_is_imported():
    code = (
        "from convsee.run import threads; p = threads.start(); assert p.threads == 0; "
        "import torch; print(p.threads, torch.get_num_threads(), len(p.history))"
    )
    n, torch_n, measured = map(int, _run(code))
    assert 1 <= n == torch_n and measured == 1


def test_commands_without_torch_do_not_import_it():
    code = (
        "import sys; from convsee.cli import main; main(['predict', 'sample:3']); "
        "print('torch' in sys.modules)"
    )
    assert _run(code)[-1] == "False"


def test_the_cli_starts_the_policy(monkeypatch, capsys, torch_threads):
    from convsee.cli import main

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("CONVSEE_THREADS", raising=False)
    assert main(["predict", "sample:3"]) == 0
    assert threads.policy() is not None


def test_a_busy_core_is_seen(torch_threads):
    """A real busy loop in another process is measured as (most of) a core kept busy."""
    if threads._sample() is None:
        pytest.skip("no /proc/stat")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        p = threads.ThreadPolicy()
        p.measure()
        import time

        time.sleep(0.5)
        others = p.measure()
    finally:
        hog.kill()
        hog.wait()
    assert others is not None and others > 0.4
