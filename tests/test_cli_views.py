"""The library functions the CLI commands now call (views/optimize, predict, evaluate,
attribution, render.render_outputs), each checked against an independent computation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import convsee
from convsee.cli.errors import said
from convsee.errors import ConvseeError


@pytest.fixture(scope="module")
def net():
    return convsee.load()


def test_prediction_line_lists_the_top_classes_by_probability(net):
    from convsee.views.predict import prediction_line

    (p,) = net.predict(net.inputs(["sample:7"]))
    probs = np.asarray(p.probabilities)
    top = np.argsort(-probs)[:3]  # the oracle: numpy's order, not the view's sort
    want = ", ".join(f"{k} {probs[k]:.1%}" for k in top)
    assert prediction_line(p, 3) == f"sample:7: {int(top[0])} (true 7)  [{want}]"
    assert prediction_line(p, 1).endswith(f"[{top[0]} {probs[top[0]]:.1%}]")


def test_read_each_keeps_the_readable_inputs(net, tmp_path):
    from convsee.views.predict import read_each

    inputs, failed = read_each(net, ["sample:1", str(tmp_path / "no.png"), "sample:2"])
    assert [i.name for i in inputs] == ["sample:1", "sample:2"]
    assert len(failed) == 1 and failed[0][0] == str(tmp_path / "no.png")
    with pytest.raises(ConvseeError):
        read_each(net, [str(tmp_path / "no.png")])


def test_class_index_and_dense_refusal_name_their_flags(net):
    from convsee.views.predict import check_dense, class_index

    assert class_index("7", [str(i) for i in range(10)]) == 7
    assert class_index("Cat", ["dog", "cat"]) == 1
    with pytest.raises(ConvseeError) as e:
        class_index("12", [str(i) for i in range(10)])
    assert said(e.value).startswith("--map-class '12' is not a class: 0, 1")
    with pytest.raises(ConvseeError) as e:
        check_dense(net)
    assert said(e.value).startswith("--map draws class scores given per position")


def test_evaluate_matches_per_input_predictions(net, tmp_path):
    from convsee.views.evaluate import evaluate

    samples = net.inputs()  # the ten bundled digits, one per class
    truth = []
    for i, inp in enumerate(samples + samples[:4]):
        d = tmp_path / str(inp.label)
        d.mkdir(exist_ok=True)
        Image.fromarray((inp.image * 255).round().astype(np.uint8)).save(d / f"{i}.png")
        truth.append(inp.label)
    ev = evaluate(net, str(tmp_path), batch_size=5)
    # the oracle: each image predicted on its own, through Network.predict
    files = sorted(tmp_path.glob("*/*.png"))
    preds = {f: net.predict(net.inputs([str(f)]))[0].prediction for f in files}
    conf = np.zeros((10, 10), int)
    for f, p in preds.items():
        conf[int(f.parent.name), p] += 1
    assert ev.n == 14 and np.array_equal(ev.conf, conf)
    assert ev.accuracy == pytest.approx(np.trace(conf) / 14)
    assert ev.table()[0].startswith("true\\pred") and len(ev.table()) == 11
    assert ev.picture()[:8] == b"\x89PNG\r\n\x1a\n"


def test_optimize_table_flags_what_is_below_a_baseline():
    from convsee.views.optimize import optimize_table

    res = SimpleNamespace(
        objective="centre neuron of each channel's map",
        units=[0, 1],
        seconds=1.0,
        values=np.array([2.0, 0.5]),
        rounds=[1, 3],
    )
    base = SimpleNamespace(
        random_mean=np.array([0.1, 0.1]),
        random_best=np.array([1.0, 1.0]),
        data_best=None,
        bar=lambda: np.array([1.0, 1.0]),
    )
    lines = optimize_table("conv1", res, base)
    assert lines[0] == "conv1: centre neuron of each channel's map; 2 optimised in 1.00 s"
    assert lines[2].rstrip().endswith("2.000      0.100      1.000")  # beats: no flag
    assert lines[3].endswith("BELOW random best")
    assert lines[4] == "  1 of 2 below a baseline after 3 rounds"


def test_optimize_job_yields_each_layer_with_its_files(net):
    from convsee.run.optimize import OptimizeConfig
    from convsee.views.optimize import OptimizeJob

    job = OptimizeJob(net, "conv1", [0, 1], OptimizeConfig(steps=3, rounds=1), sample=0)
    assert job.data_x is None and job.data_note == "no dataset baseline (a sample of 0 images)"
    (done,) = list(job)
    assert sorted(done.files) == ["optimize_conv1.json", "optimize_conv1.png"]
    assert list(done.result.units) == [0, 1] and job.done == 1
    beat = int(np.sum(done.result.values > done.baselines.random_best))
    assert done.summary == f"{beat} of 2 beat the best of 200 random inputs"


def test_attribution_checks_name_their_flags(net):
    from convsee.views.attribution import attribution

    with pytest.raises(ConvseeError) as e:
        attribution(net, None, target=10)
    assert said(e.value) == "--target must be 0..9, got 10"
    res = attribution(net, None, method="saliency")
    assert [f.name for f in res.figures] == [
        "attribution_sample_3_3_saliency.png",
        "attribution_sample_7_7_saliency.png",
    ]


def test_render_outputs_prediction_lines_and_refusals(net):
    from convsee.views.render import render_outputs

    files, lines = render_outputs(net, ["sample:2", "sample:5"], layers="conv1")
    preds = net.predict(net.inputs(["sample:2", "sample:5"]))
    assert lines == [
        f"{p.input.name}: predicted {p.label} {max(p.probabilities):.1%} (true {p.input.label})"
        for p in preds
    ]
    assert "conv1/2.png" in files and "samples.png" in files
    files, lines = render_outputs(net, kernels_only=True)
    assert lines == [] and "kernels.png" in files
    with pytest.raises(ConvseeError) as e:
        render_outputs(net, ["sample:1"], diff_of=("sample:2", "sample:3"))
    assert said(e.value) == "--diff A B compares A and B; it takes no INPUT (got sample:1)"


def test_activations_npz_matches_a_torch_replay(net):
    import io

    import torch

    from convsee.views.activations import activations_npz

    saved = activations_npz(net, ["sample:1", "sample:2"], "conv*")
    assert saved.layers == ["conv1", "conv2"]
    arrays = np.load(io.BytesIO(saved.npz()))
    assert sorted(arrays) == ["conv1", "conv2", "input", "probabilities"]
    model = net.torch_model()  # the oracle: torch's forward pass, not LeNet-5's NumPy one
    with torch.no_grad():
        x = torch.from_numpy(arrays["input"]).float()
        c1 = model.conv1(x)
    np.testing.assert_allclose(arrays["conv1"], c1.numpy(), rtol=1e-4, atol=1e-4)
    assert saved.describe().startswith("conv1 [2, 6, 24, 24], conv2 [2, 16, 8, 8] (batch")
