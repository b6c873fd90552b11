"""optimize at scale (issue 20) and units it cannot excite (issue 16): batches of channels give
the per-channel result, a stop (time budget, SIGTERM) keeps what is done, each layer is written
when it is finished, dead ReLU units are optimised through their pre-activation, and a unit
nothing can excite is flagged."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

import convsee
from convsee.cli import main
from convsee.run import optimize as opt
from convsee.run.optimize import OptimizeConfig, Stop, baselines, excited, optimize_units
from convsee.run.units import torch_model

DEAD = '''
import torch
from torch import nn


class Dead(nn.Module):
    """conv (2 channels) -> ReLU; channel 1 is -1 whatever the input, so 0 after the ReLU."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.conv.weight[1].zero_()
            self.conv.bias[1] = -1.0

    def forward(self, x):
        return self.relu(self.conv(x)).flatten(1).sum(1, keepdim=True)
'''


@pytest.fixture(scope="module")
def lenet():
    net = convsee.load()
    return net, torch_model(net)


def replay(model, layer_module: str, x: np.ndarray, units, centre=True) -> np.ndarray:
    """Each row's unit, from a plain forward hook (not convsee's runner)."""
    got = {}
    mod = dict(model.named_modules())[layer_module]
    h = mod.register_forward_hook(lambda m, i, o: got.setdefault("a", o.detach().clone()))
    try:
        with torch.no_grad():
            model(torch.from_numpy(x))
    finally:
        h.remove()
    a = got["a"].numpy()
    rows = np.arange(len(units))
    if a.ndim == 2:
        return a[rows, units]
    return a[rows, units, a.shape[2] // 2, a.shape[3] // 2]


@pytest.mark.parametrize("name", ["conv2", "pool1"])
def test_batches_of_channels_give_the_per_channel_result(lenet, name):
    net, model = lenet
    [layer] = net.select(name)
    units = [0, 1, 2, 3, 4, 5]
    cfg = dict(steps=25, rounds=1, restarts=2, seed=3)
    together = optimize_units(model, net.prep, layer, units, OptimizeConfig(batch=12, **cfg))
    in_fours = optimize_units(model, net.prep, layer, units, OptimizeConfig(batch=8, **cfg))
    alone = [
        optimize_units(model, net.prep, layer, [u], OptimizeConfig(batch=2, **cfg)) for u in units
    ]
    one = np.array([r.values[0] for r in alone])
    np.testing.assert_allclose(together.values, one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(in_fours.values, one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(together.x, np.concatenate([r.x for r in alone]), atol=1e-4)
    # the values are those of the images returned (an independent forward pass)
    np.testing.assert_allclose(
        replay(model, layer.module, together.x, units), together.values, rtol=1e-5, atol=1e-5
    )
    assert (together.steps == 25).all() and together.stopped is None


def test_redirected_relu_gradient_by_hand():
    x = torch.tensor([[-1.0, 2.0], [-3.0, -0.5]], requires_grad=True)
    g = torch.tensor([[0.7, -1.0], [0.4, -2.0]])
    with opt._redirect_mode():
        y = torch.relu(x)
        (gx,) = torch.autograd.grad(y, [x], g)
    assert torch.equal(y, x.detach().clamp(min=0))
    # row 0: its ReLU passes a gradient, so the plain one; row 1 is all dead: the gradient
    # goes through, except where it would push a negative input lower (g > 0 at x < 0)
    assert torch.equal(gx, torch.tensor([[0.0, -1.0], [0.0, -2.0]]))
    # an in-place ReLU module computes the same values under the mode
    m = torch.nn.ReLU(inplace=True)
    with opt._redirect_mode():
        out = m(x.detach().clone())
    assert torch.equal(out, x.detach().clamp(min=0))


def test_redirected_relu6_gradient_by_hand():
    x = torch.tensor([[-1.0, 7.0, 2.0], [-3.0, 8.0, -0.5]], requires_grad=True)
    g = torch.tensor([[0.7, -1.0, 0.3], [0.4, -2.0, -0.6]])
    for relu6 in (torch.nn.functional.relu6, torch.nn.ReLU6(), torch.nn.Hardtanh(0.0, 6.0)):
        with opt._redirect_mode():
            y = relu6(x)
            (gx,) = torch.autograd.grad(y, [x], g)
        assert torch.equal(y, x.detach().clamp(0, 6))
        # row 0 passes a gradient at 2.0: the plain one; row 1 is all clamped: the gradient
        # goes through except where it pushes below 0 (g > 0 at x < 0) or above 6 (g < 0 at x > 6)
        assert torch.equal(gx, torch.tensor([[0.0, 0.0, 0.3], [0.0, 0.0, -0.6]]))
    with opt._redirect_mode():
        out = torch.nn.ReLU6(inplace=True)(x.detach().clone())
        other = torch.nn.Hardtanh(-1.0, 1.0)(x)  # not a ReLU6: untouched, its own gradient
        (go,) = torch.autograd.grad(other, [x], g)
    assert torch.equal(out, x.detach().clamp(0, 6))
    assert torch.equal(go, g * ((x > -1) & (x < 1)))


def test_dead_pool_units_rise_through_their_pre_activation(lenet):
    net, model = lenet
    [layer] = net.select("pool1")
    units = list(range(6))
    base = baselines(model, net.prep, layer, units)
    cfg = dict(steps=30, rounds=1)
    plain = optimize_units(model, net.prep, layer, units, OptimizeConfig(redirect=False, **cfg))
    moved = optimize_units(
        model, net.prep, layer, units, OptimizeConfig(**cfg), spec_layers=net.spec.layers
    )
    assert (plain.values == 0).sum() >= 1  # stuck at 0 after the ReLU: no gradient (2 of 6 here)
    assert not excited(plain, base).all()
    assert excited(moved, base).all()
    assert moved.redirected == "conv1 (the input of relu1)"
    np.testing.assert_allclose(
        replay(model, layer.module, moved.x, units), moved.values, rtol=1e-5, atol=1e-5
    )


def test_a_stop_keeps_the_units_started_and_says_why(lenet):
    net, model = lenet
    [layer] = net.select("conv2")
    stop = Stop()
    seen = []

    def progress(n):
        seen.append(n)
        if len(seen) == 3:
            stop.requested = "asked to stop"

    cfg = OptimizeConfig(steps=50, rounds=1, batch=4)
    res = optimize_units(model, net.prep, layer, range(10), cfg, stop=stop, progress=progress)
    assert res.units == [0, 1, 2, 3] and res.stopped == "asked to stop"
    assert res.steps.tolist() == [3] * 4 and seen == [4, 4, 4]
    np.testing.assert_allclose(
        replay(model, layer.module, res.x, res.units), res.values, rtol=1e-5, atol=1e-5
    )
    # a deadline already past: the first chunk still runs its few steps (it returned nothing)
    res = optimize_units(model, net.prep, layer, range(6), cfg, stop=Stop(deadline=0.0))
    assert res.units == [0, 1, 2, 3] and res.stopped == "time budget reached"
    assert res.steps.tolist() == [3] * 4
    np.testing.assert_allclose(
        replay(model, layer.module, res.x, res.units), res.values, rtol=1e-5, atol=1e-5
    )


def test_a_deadline_cuts_the_steps_to_fit(lenet):
    import time

    net, model = lenet
    [layer] = net.select("conv1")
    stop = Stop(time.perf_counter() + 0.5)
    res = optimize_units(model, net.prep, layer, range(6), OptimizeConfig(steps=100000), stop=stop)
    assert len(res.units) == 6 and (res.steps < 100000).all()


ARGS = ["optimize", "--steps", "8", "--rounds", "1", "--random", "20", "--quiet"]


def _stop_after_first_write(monkeypatch, action):
    """Run `action(stop)` right after the first layer's files are written."""
    import convsee.draw.render as render

    stops, real = [], render.write_outputs

    class Recorded(Stop):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            stops.append(self)

    def write(files, out):
        done = real(files, out)
        if stops and not getattr(stops[0], "_acted", False):
            stops[0]._acted = True
            action(stops[0])
        return done

    monkeypatch.setattr(opt, "Stop", Recorded)
    monkeypatch.setattr(render, "write_outputs", write)


def test_time_budget_keeps_the_finished_layer(tmp_path, monkeypatch, capsys):
    def expire(stop):
        stop.deadline = 0.0

    _stop_after_first_write(monkeypatch, expire)
    out = tmp_path / "o"
    assert main([*ARGS, "--layers", "conv1,conv2,fc3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stopped early (time budget reached)" in text and "2 layers not done" in text
    assert sorted(p.name for p in out.iterdir()) == ["optimize_conv1.json", "optimize_conv1.png"]
    side = json.loads((out / "optimize_conv1.json").read_text())
    assert side["stopped"] is None and side["beat_random"] == sum(side["excited"])


def test_sigterm_keeps_the_finished_layer(tmp_path, monkeypatch, capsys):
    _stop_after_first_write(monkeypatch, lambda stop: os.kill(os.getpid(), signal.SIGTERM))
    out = tmp_path / "o"
    assert main([*ARGS, "--layers", "conv1,fc3", "--out", str(out)]) == 130
    assert "interrupted by SIGTERM" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["optimize_conv1.json", "optimize_conv1.png"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_a_unit_nothing_can_excite_is_flagged(tmp_path, capsys):
    (tmp_path / "dead.py").write_text(DEAD)
    out = tmp_path / "o"
    argv = [*ARGS, "--model", f"{tmp_path / 'dead.py'}:Dead", "--input-size", "1,16,16"]
    assert main([*argv, "--layers", "relu", "--steps", "60", "--out", str(out)]) == 0
    side = json.loads((out / "optimize_relu.json").read_text())
    assert side["units"] == [0, 1]
    assert side["excited"] == [True, False] and side["not_excited"] == [1]
    assert side["values"][1] == 0.0 and side["random_best"][1] == 0.0
    assert side["pre_activation"] == "conv (the input of relu)"
    assert "1 of 2 beat the best of 20 random inputs" in capsys.readouterr().out


def test_network_optimize_returns_a_figure_per_layer(lenet):
    net, model = lenet
    figs = net.optimize("pool1,fc3", channels=[0, 1], steps=20, rounds=1)
    assert [f.name for f in figs] == ["optimize_pool1.png", "optimize_fc3.png"]
    side = figs[0].sidecar
    assert side["units"] == [0, 1] and side["pre_activation"] == "conv1 (the input of relu1)"
    base = baselines(model, net.prep, net.select("pool1")[0], [0, 1], seed=0)
    np.testing.assert_allclose(side["random_best"], base.random_best, atol=1e-5)
    pairs = zip(side["values"], side["random_best"], strict=True)
    assert side["excited"] == [v > b for v, b in pairs]
    assert figs[0].image.size[0] > 100
