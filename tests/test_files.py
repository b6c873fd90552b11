"""Guarded files: one writer per output (train's --out, a render folder), a render set that is
never half new and half old (SIGTERM rolls it back, SIGKILL is rolled back by the next run),
and zip-bomb checkpoints refused from their zip directory, before torch inflates anything."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from convsee.cli import main
from convsee.draw.render import write_outputs
from convsee.errors import ConvseeError
from convsee.files import check_zip_sizes, output_lock
from convsee.models.load import read_state_dict

SRC = Path(__file__).parents[1] / "src"
TESTS = Path(__file__).parent


def _contents(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# ---------- zip bombs ----------


def _declare(path: Path, member_suffix: str, size: int) -> None:
    """Make the zip directory entry of the member ending in member_suffix declare `size`
    uncompressed bytes (what a zip bomb's directory says), nothing else changed."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    name = info.filename.encode()
    at = 0
    while True:  # the central directory record of that member
        at = data.find(b"PK\x01\x02", at)
        assert at >= 0
        n = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + n]) == name:
            break
        at += 4
    struct.pack_into("<I", data, at + 24, size)  # uncompressed size
    path.write_bytes(bytes(data))


def test_a_zip_bomb_checkpoint_is_refused_before_torch_load(tmp_path, monkeypatch):
    path = tmp_path / "bomb.pth"
    torch.save({"w": torch.arange(6.0)}, path)
    assert read_state_dict(path)["w"].tolist() == [0, 1, 2, 3, 4, 5]  # an honest one loads
    _declare(path, "data/0", 0xF000_0000)  # ~4 GB declared for 24 bytes
    with zipfile.ZipFile(path) as z:
        assert sum(i.file_size for i in z.infolist()) > 0xF000_0000  # what zipfile reads

    def never(*a, **k):
        raise AssertionError("torch.load ran")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ConvseeError) as e:
        read_state_dict(path)
    message = str(e.value)
    assert "zip directory declares" in message and "\n" not in message
    assert f"{0xF000_0000:,}" in message or "4,026,5" in message


def test_zip_sizes_within_twice_the_file_pass():
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a", b"\0" * 1000)
    check_zip_sizes("x.pth", buf.getvalue(), slack=1000)  # 1000 <= 2 x size + 1000
    with pytest.raises(ConvseeError):
        check_zip_sizes("x.pth", buf.getvalue(), slack=0)  # ~130 bytes hold 1000
    check_zip_sizes("x.pth", b"not a zip", slack=0)  # nothing to say: the loader says it


# ---------- one writer per output ----------


def test_an_output_is_locked_while_written(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    out = folder / "m.safetensors"
    with output_lock(out):
        assert (folder / ".m.safetensors.lock").exists()
        with pytest.raises(ConvseeError, match="another convsee run is writing"):
            with output_lock(out):
                pass
    assert list(folder.iterdir()) == []  # the lock file goes with the lock
    with output_lock(out):  # free again
        pass


def test_a_second_train_on_one_out_is_refused_in_one_line(tmp_path, capsys, mnist_dir):
    out = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(mnist_dir), "--out", str(out), "--epochs", "1", "--quiet"]
    with output_lock(out):  # a first run, writing
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another convsee run is writing" in err, err
    assert str(out) in err and not out.exists()


def test_a_render_into_a_folder_being_written_is_refused(tmp_path):
    out = tmp_path / "pictures"
    write_outputs({"a.png": b"A"}, out)
    with output_lock(out):
        with pytest.raises(ConvseeError, match="another convsee run is writing"):
            write_outputs({"a.png": b"B", "b.png": b"B"}, out)
    assert _contents(out) == {"a.png": b"A"}
    write_outputs({"a.png": b"C"}, out)
    assert _contents(out) == {"a.png": b"C"}


# ---------- killed while moving the set into place ----------

_KILL_AT_MOVE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path[:0] = [{src!r}, {tests!r}]
    import pytest
    from faults import fail_replace
    from convsee.draw.render import write_outputs

    out, sig, set_name = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3]
    new = {{f"f{{i}}.png": set_name.encode() * (i + 1) for i in range(4)}}
    new["sub/deep.json"] = set_name.encode()
    mp = pytest.MonkeyPatch()
    # the 3rd move of a new file into place (after 1 old file set aside per move)
    fail_replace(mp, lambda s, d, n: "/.convsee-" in s and s.split("/")[-1] == "2",
                 lambda: os.kill(os.getpid(), sig))
    try:
        write_outputs(new, out)
    except KeyboardInterrupt:
        print("rolled back", flush=True)
        sys.exit(130)
    """
)


def _run_killed(out: Path, sig: str, set_name: str) -> subprocess.CompletedProcess:
    code = _KILL_AT_MOVE.format(src=str(SRC), tests=str(TESTS))
    return subprocess.run(
        [sys.executable, "-c", code, str(out), sig, set_name],
        capture_output=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _old_set(out: Path) -> dict:
    old = {f"f{i}.png": b"A" * (i + 1) for i in range(4)}
    old["keep.txt"] = b"not ours"
    write_outputs({k: v for k, v in old.items() if k != "keep.txt"}, out)
    (out / "keep.txt").write_bytes(b"not ours")
    assert _contents(out) == old
    return old


def test_sigterm_while_moving_leaves_the_old_set(tmp_path):
    out = tmp_path / "pictures"
    old = _old_set(out)
    r = _run_killed(out, "SIGTERM", "B")
    assert r.returncode == 130 and r.stdout == b"rolled back\n", r.stderr.decode()[-2000:]
    assert _contents(out) == old  # not one file of B, no staging folder left
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_sigkill_while_moving_is_rolled_back_by_the_next_run(tmp_path):
    out = tmp_path / "pictures"
    old = _old_set(out)
    r = _run_killed(out, "SIGKILL", "B")
    assert r.returncode == -9, r.stderr.decode()[-2000:]
    left = _contents(out)
    assert left["f0.png"] == b"B" and left["f3.png"] == b"AAAA"  # half new, half old
    stages = [p for p in out.iterdir() if p.name.startswith(".convsee-")]
    assert len(stages) == 1 and json.loads((stages[0] / "plan.json").read_text())["files"]
    write_outputs({"other.png": b"C"}, out)  # the next run: rolls back, then writes its own
    assert _contents(out) == {**old, "other.png": b"C"}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    assert not (out / "sub").exists()  # the folder the killed run made is gone too


def test_a_stage_with_no_plan_is_removed(tmp_path):
    out = tmp_path / "pictures"
    old = _old_set(out)
    stale = out / ".convsee-abc123.tmp"
    stale.mkdir()
    (stale / "0").write_bytes(b"half written")
    write_outputs({"f0.png": b"D"}, out)
    assert _contents(out) == {**old, "f0.png": b"D"}
    assert not stale.exists()
