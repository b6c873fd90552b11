"""The CLI's parsing contract: a parser error is one line naming the command and the flag
(exit 2, no usage block); flags spelt the same way in every command, the older spellings
still taken; values a command would drop or misreport refused in one line."""

from __future__ import annotations

import pytest

from convsee.cli import build_parser, main


def parse_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "usage:" not in err, err
    return err


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["render", "--scale", "x"],
            "convsee render: error: --scale: invalid choice: 'x' (choose from 'map', 'layer', "
            "'global')",
        ),
        (["predict", "--top", "x"], "convsee predict: error: --top: invalid int value: 'x'"),
        (
            ["render", "--bogus"],
            "convsee render: error: unrecognized arguments: --bogus (`convsee render --help` "
            "lists them)",
        ),
        (["activations", "x"], "convsee activations: error: the following arguments are required"),
        (["frob"], "convsee: error: COMMAND: invalid choice: 'frob'"),
        (["sweep", "--layers", "conv1,conv2"], "convsee sweep: error: --layers: this command"),
        (["animate", "--layer", "a,b"], "convsee animate: error: --layer: this command draws one"),
        (["evolution", "A", "--checkpoint", "B"], "convsee evolution: error: give the checkpoint"),
    ],
)
def test_parser_errors_are_one_line(capsys, argv, line):
    assert parse_error(capsys, argv).startswith(line)


def test_main_reports_a_parser_error_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["render", "--cmap"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "convsee render: error: --cmap needs a value (one starting with '-' is written "
        "--cmap=VALUE)\n"
    )


@pytest.mark.parametrize("cmd", ["sweep", "animate", "attribution"])
@pytest.mark.parametrize("flag", ["--layers", "--layer"])
def test_one_layer_commands_take_layers_and_the_old_layer(cmd, flag):
    assert build_parser().parse_args([cmd, flag, "conv2"]).layer == "conv2"


@pytest.mark.parametrize("cmd", ["optimize", "exemplars"])
def test_layer_is_a_hidden_alias_of_layers(cmd, capsys):
    assert build_parser().parse_args([cmd, "--layer", "conv2"]).layers == "conv2"
    with pytest.raises(SystemExit):
        build_parser().parse_args([cmd, "--help"])
    out = capsys.readouterr().out
    assert "--layers" in out and "--layer " not in out and "--layer\n" not in out


@pytest.mark.parametrize("how", [[], ["--checkpoint"]])
def test_evolution_checkpoint_as_flag_or_old_positional(how):
    a = build_parser().parse_args(["evolution", *how, "ck.safetensors"])
    assert a.checkpoint == "ck.safetensors"


def test_evolution_help_lists_the_flag_not_the_positional(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evolution", "--help"])
    out = capsys.readouterr().out
    assert "--checkpoint FILE" in out and "old_checkpoint" not in out


def test_evolution_with_checkpoint_flag_draws(tmp_path):
    from convsee.models.checkpoint import default_checkpoint

    out = tmp_path / "ev"
    argv = ["evolution", "--checkpoint", str(default_checkpoint("mnist")), "--layers", "conv1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "evolution_conv1.gif").is_file()


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["render", "--kernels", "sample:1"],
            "--kernels draws the kernels alone; it takes no INPUT (got sample:1)",
        ),
        (
            ["render", "--diff", "sample:1", "sample:2", "sample:3"],
            "--diff A B compares A and B; it takes no INPUT (got sample:3)",
        ),
        (["render", "--kernels", "--diff", "sample:1", "sample:2"], "--kernels and a diff are"),
        (["train", "--epochs", "0"], "--epochs must be a whole number of at least 1, got 0"),
        (["train", "--batch-size", "-3"], "--batch-size must be a whole number of at least 1"),
        (["train", "--lr", "0"], "--lr must be a positive number, got 0.0"),
    ],
)
def test_refused_in_one_line_writing_nothing(tmp_path, capsys, argv, line):
    out = tmp_path / "o"
    assert main([*argv, "--out", str(out / "x.safetensors" if argv[0] == "train" else out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convsee {argv[0]}: error: {line}") and err.count("\n") == 1
    assert "TrainConfig" not in err
    assert not out.exists()


def test_dataset_choices_are_the_registrys(monkeypatch, capsys):
    """Every --dataset takes exactly the registered datasets: one more registered, one more
    taken; an unknown one is refused with the registry's names."""
    from dataclasses import replace

    from convsee.datasets.registry import DATASETS

    line = "convsee evaluate: error: --dataset: invalid choice: 'kmnist' (choose from 'mnist', "
    assert parse_error(capsys, ["evaluate", "--dataset", "kmnist"]) == line + "'fashion-mnist')"
    kmnist = replace(DATASETS["mnist"], name="kmnist", title="Kuzushiji-MNIST")
    monkeypatch.setitem(DATASETS, "kmnist", kmnist)
    parser = build_parser()
    for command in ("layers", "evaluate", "predict", "train", "serve"):
        assert parser.parse_args([command, "--dataset", "kmnist"]).dataset == "kmnist"
