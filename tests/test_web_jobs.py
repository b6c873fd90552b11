"""web/jobs.py: background jobs, one at a time, the last asked for first; asking never waits;
the queue and the answers are bounded; a job that raises is answered "failed"."""

from __future__ import annotations

import threading
import time

import convsee.web.jobs as jobs
from convsee.web.jobs import Jobs


def _wait(cond, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_the_last_asked_for_runs_first_and_asking_never_waits(monkeypatch):
    monkeypatch.setattr(jobs, "QUEUE", 3)
    gate, ran = threading.Event(), []

    def run(key):
        if key == "first":
            gate.wait(30)
        ran.append(key)
        return {"status": "ready", "key": key}

    j = Jobs(run)
    assert j._thread is None  # nothing runs before a job is asked for
    assert j.ask(["first"]) == {"first": {"status": "computing"}}
    _wait(lambda: j._running == "first")
    for k in ("a", "b", "c", "d"):  # a is dropped: the queue holds 3
        assert j.ask([k])[k] == {"status": "computing"}
    assert j.ask(["b"])["b"] == {"status": "computing"}  # b asked again: to the front
    gate.set()
    _wait(lambda: j.computed == 4)
    assert ran == ["first", "b", "d", "c"]
    assert j.ask(["c"]) == {"c": {"status": "ready", "key": "c"}}
    j.stop()
    assert not j._thread.is_alive()


def test_answers_are_bounded_and_a_failure_is_an_answer(monkeypatch):
    monkeypatch.setattr(jobs, "RESULTS", 2)

    def run(key):
        if key == "bad":
            raise RuntimeError("boom")
        return {"status": "ready"}

    j = Jobs(run)
    for n, k in enumerate(("bad", "x", "y"), 1):
        j.ask([k])
        _wait(lambda n=n: j.computed == n)
    assert list(j._done) == ["x", "y"]  # "bad" was the oldest
    j2 = Jobs(run)
    j2.ask(["bad"])
    _wait(lambda: j2.computed == 1)
    got = j2.ask(["bad"])["bad"]
    assert got["status"] == "failed" and "boom" not in got["why"]
    j.stop()
    j2.stop()
