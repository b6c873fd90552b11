"""Writing outputs and reading inputs whole: all-or-nothing picture sets, canonical test
files, refused checkpoints, and one clear line for every such problem on the command line."""

import errno
import gzip
import os
import re
import shutil

import pytest
import torch
from faults import DiskFull, fail_replace

from convsee.cli import main
from convsee.models.checkpoint import save_checkpoint
from convsee.models.lenet import LeNet5


def _tree(folder):
    """{relative path: bytes} of every file under folder, hidden ones included."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert re.match(r"convsee [a-z]+: error: ", err) and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture
def rendered(tmp_path, capsys):
    """media/ holding a finished set, plus a file of the user's."""
    out = tmp_path / "media"
    assert main(["render", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    return out


def test_render_that_fills_the_disk_half_way_leaves_the_folder_as_it_was(
    rendered, monkeypatch, capsys
):
    before = _tree(rendered)
    assert len(before) == 91  # 45 pictures, 45 sidecars, notes.txt
    DiskFull(monkeypatch, rendered, after=30)  # the 30th file cannot be written
    assert main(["render", "--out", str(rendered), "--scale", "map"]) == 2
    _one_line_error(capsys, "No space left on device")
    monkeypatch.undo()
    assert _tree(rendered) == before  # nothing new, nothing lost, no temporaries
    assert [p.name for p in rendered.iterdir() if p.name.startswith(".")] == []


def test_render_interrupted_while_moving_into_place_puts_everything_back(
    rendered, monkeypatch, capsys
):
    before = _tree(rendered)
    inside = str(rendered)
    fail_replace(
        monkeypatch,
        lambda s, d, n: d.startswith(inside) and n == 30,
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    )
    assert main(["render", "--out", str(rendered), "--scale", "layer"]) == 2
    _one_line_error(capsys, "No space left on device")
    monkeypatch.undo()
    assert _tree(rendered) == before


def test_render_into_a_new_folder_that_fails_leaves_no_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "new" / "media"
    DiskFull(monkeypatch, tmp_path, after=30)
    assert main(["render", "--out", str(out)]) == 2
    _one_line_error(capsys, "No space left on device")
    assert not (tmp_path / "new").exists()


def test_render_out_naming_a_file(tmp_path, capsys):
    f = tmp_path / "media"
    f.write_text("a file")
    assert main(["render", "--out", str(f)]) == 2
    _one_line_error(capsys, "is a file")
    assert f.read_text() == "a file"
    assert main(["render", "--out", str(f / "sub")]) == 2
    _one_line_error(capsys, "is a file")


def test_render_into_a_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        assert main(["render", "--out", str(ro)]) == 2
        _one_line_error(capsys, "Permission denied")
        assert not list(ro.iterdir())
    finally:
        ro.chmod(0o755)


# --- the test files are checked everywhere, not only by train ------------------------------


@pytest.fixture(scope="module")
def altered_mnist(mnist_dir, tmp_path_factory):
    """The real MNIST test split with one pixel changed: valid IDX, not the published file."""
    d = tmp_path_factory.mktemp("altered")
    raw = bytearray(gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()))
    raw[16 + 28 * 14 + 14] ^= 0xFF
    (d / "t10k-images-idx3-ubyte").write_bytes(bytes(raw))
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", d)
    return d


@pytest.mark.parametrize("argv", [["evaluate", "--out", ""], ["predict", "test:3"]])
def test_a_test_file_with_the_wrong_md5_is_refused(altered_mnist, tmp_path, capsys, argv):
    assert main([*argv, "--data", str(altered_mnist)]) == 2
    _one_line_error(capsys, "t10k-images-idx3-ubyte: md5", "2646ac647ad5339dbf082846283269ea")


# --- checkpoints the commands refuse in one line -------------------------------------------


def test_evaluate_refuses_a_checkpoint_with_nan(tmp_path, mnist_dir, capsys):
    net = LeNet5()
    with torch.no_grad():
        net.conv1.bias[0] = float("nan")
    p = tmp_path / "nan.safetensors"
    save_checkpoint(net, p, {})
    out = tmp_path / "confusion.png"
    argv = ["evaluate", "--checkpoint", str(p), "--data", str(mnist_dir), "--out", str(out)]
    assert main(argv) == 2
    _one_line_error(capsys, "NaN or infinite values, in conv1.bias (1)")
    assert not out.exists()
    assert main(["render", "--checkpoint", str(p), "--out", str(tmp_path / "m")]) == 2
    _one_line_error(capsys, "NaN or infinite")


@pytest.mark.parametrize(
    "side, message",
    [
        ("[]", "must be a JSON object"),
        ('{"config": "x"}', "'config' must be an object"),
        ('{"classes": ["0", "1", "2"]}', "3 'classes' for a model with 10 outputs"),
    ],
)
@pytest.mark.parametrize("command", ["predict", "render"])
def test_cli_sidecar_of_the_wrong_shape(tmp_path, capsys, side, message, command):
    from safetensors.torch import save_file

    p = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in LeNet5().state_dict().items()}, str(p))
    p.with_suffix(".json").write_text(side)
    argv = [command, "--checkpoint", str(p)]
    if command == "render":
        argv += ["--out", str(tmp_path / "media")]
    assert main(argv) == 2
    _one_line_error(capsys, message)


def test_evaluate_out_that_cannot_be_written_is_found_first(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    empty = tmp_path / "no-data"
    empty.mkdir()  # reading data first would say "MNIST not found"
    for out, message in [(tmp_path, "is a folder"), (tmp_path / "afile" / "c.png", "not a folder")]:
        assert main(["evaluate", "--data", str(empty), "--out", str(out)]) == 2
        _one_line_error(capsys, message)
