import json

import pytest
from PIL import Image, ImageDraw

from convsee.cli import main


def test_predict_samples(capsys):
    assert main(["predict"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10
    for d, line in enumerate(lines):
        assert line.startswith(f"sample:{d}: {d} (true {d})")


def test_predict_json_and_show_input(tmp_path, capsys):
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(100, 20), (100, 180)], fill=0, width=14)  # a "1"
    p = tmp_path / "one.png"
    img.save(p)
    assert (
        main(["predict", str(p), "sample:7", "--json", "--show-input", str(tmp_path / "seen")]) == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["path"] == str(p) and rows[0]["prediction"] == 1
    assert abs(sum(rows[0]["probabilities"]) - 1) < 1e-4 and len(rows[0]["probabilities"]) == 10
    assert rows[1]["prediction"] == 7
    seen = Image.open(tmp_path / "seen" / "one.png")
    assert seen.size == (28, 28) and seen.mode == "L"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "missing.png"], "no such file"),
        (["predict", "sample:12"], "sample classes are 0..9"),
        (["predict", "--checkpoint", "nope.pth"], "does not exist"),
        (["evaluate", "--data", "EMPTY"], "MNIST not found"),
        (["train", "--data", "EMPTY", "--quiet"], "MNIST not found"),
    ],
)
def test_errors_are_one_line_no_traceback(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"convsee {argv[0]}: error:") and message in err and "Traceback" not in err
    )


def test_not_an_image_and_blank(tmp_path, capsys):
    bad = tmp_path / "a.png"
    bad.write_bytes(b"\x89PNG garbage")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), "white").save(blank)
    assert main(["predict", str(bad)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["predict", str(blank)]) == 2
    assert "blank image" in capsys.readouterr().err


def test_evaluate_shipped_checkpoint(tmp_path, mnist_dir, capsys):
    out = tmp_path / "conf.png"
    assert main(["evaluate", "--data", str(mnist_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    acc = float(text.split("test accuracy ")[1].split("%")[0])
    assert acc >= 99.1  # the shipped checkpoint
    assert Image.open(out).size[0] > 300


def test_one_bad_file_does_not_abort_the_batch(tmp_path, capsys):
    good = tmp_path / "one.png"
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(100, 20), (100, 180)], fill=0, width=14)
    img.save(good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    assert main(["predict", str(bad), str(good), "sample:4"]) == 2
    out, err = capsys.readouterr()
    assert "one.png: 1" in out and "sample:4: 4" in out  # the rest was predicted
    assert "broken.png" in err and "1 of 3 inputs could not be read" in err


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    import subprocess
    import sys

    # 3,000 predictions print ~100 KB, more than a pipe holds: the writer meets the closed end
    code = (
        "from convsee.cli import main; import sys\n"
        "sys.exit(main(['predict'] + ['sample:1'] * 3000))"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    p.stdout.readline()  # read one line, then close: the command's next writes hit EPIPE
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_every_option_has_help_with_its_default():
    import argparse

    from convsee.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name, cmd in sub.choices.items():
        text = cmd.format_help()
        for action in cmd._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
            if shown:
                assert "(default:" in text, name
    predict_help = sub.choices["predict"].format_help()
    for form in ("image file", "FILE.npy", "sample:D", "test:N", "train:N"):
        assert form in " ".join(predict_help.split()), form
