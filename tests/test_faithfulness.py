"""ROAD and infidelity (run/faithfulness.py) against the peers as oracles: pytorch-grad-cam's
ROAD classes (its noisy linear imputer with the noise off, solved by scipy's sparse LU, where
convsee uses conjugate gradients) and captum.metrics.infidelity with the same perturbations."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from convsee.errors import ConvseeError
from convsee.run.attribution import attribute_batch
from convsee.run.faithfulness import NEIGHBOURS, impute, infidelity, road
from convsee.spec import describe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))
import peers  # noqa: E402
from test_attribution import small  # noqa: E402

warnings.filterwarnings("ignore", module="captum")


@pytest.fixture(scope="module")
def setup():
    m = small()
    x = torch.randn(3, 3, 24, 24, generator=torch.Generator().manual_seed(5))
    spec = describe(m, (3, 24, 24), "cpu")
    r = attribute_batch(m, x.numpy(), spec, method="saliency", target=[0, 2, 4])
    maps = r.maps / r.maps.max((1, 2), keepdims=True)  # [0, 1] as pytorch-grad-cam's cams
    return m, x, maps, [0, 2, 4]


def test_imputation_solves_the_neighbour_equations():
    """Each filled pixel is the weighted mean of its in-image neighbours (the residual of the
    system, computed here pixel by pixel), kept pixels are untouched."""
    rng = np.random.default_rng(0)
    img = rng.normal(size=(2, 9, 7))
    keep = rng.random((9, 7)) > 0.6
    out = impute(img, keep)
    assert np.array_equal(out[:, keep], img[:, keep])
    for r, c in zip(*np.nonzero(~keep), strict=True):
        nb = [(r + dr, c + dc, w) for (dr, dc), w in NEIGHBOURS.items()]
        nb = [(i, j, w) for i, j, w in nb if 0 <= i < 9 and 0 <= j < 7]
        mean = sum(w * out[:, i, j] for i, j, w in nb) / sum(w for _, _, w in nb)
        assert np.abs(out[:, r, c] - mean).max() < 1e-9
    with pytest.raises(ConvseeError) as e:
        impute(img, np.zeros((9, 7), bool))
    assert e.value.param == "fraction"


@pytest.mark.parametrize("order", ["most", "least", "combined"])
def test_road_equals_pytorch_grad_cam(setup, order):
    if peers.grad_cam() is None:
        pytest.skip("pytorch-grad-cam not installed")
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        AveragerAcrossThresholds,
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    m, x, maps, t = setup
    targets = [ClassifierOutputTarget(c) for c in t]
    quiet = NoisyLinearImputer(noise=0.0)

    def peer(kind, p):
        rule = RemoveMostRelevantFirst if kind == "most" else RemoveLeastRelevantFirst
        return PerturbationConfidenceMetric(rule(p, quiet))(x, maps, targets, m)

    fr = (0.2, 0.5, 0.8)
    ours = road(m, x.numpy(), maps, target=t, order=order, fractions=fr)
    if order == "combined":
        want = np.stack([(peer("least", p) - peer("most", p)) / 2 for p in (80, 50, 20)], 1)
    else:
        want = np.stack([peer(order, p) for p in (80, 50, 20)], 1)
    assert np.abs(want).max() > 1e-3  # the removals move the scores
    assert np.abs(ours - want).max() <= 1e-4 * np.abs(want).max()
    # their averaged form is our mean over the fractions
    avg = AveragerAcrossThresholds(
        lambda p: PerturbationConfidenceMetric(RemoveMostRelevantFirst(p, quiet)), [80, 50, 20]
    )
    if order == "most":
        got = avg(x, maps, targets, m)
        assert np.abs(ours.mean(1) - got).max() <= 1e-4 * np.abs(got).max()


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captum(setup, normalize):
    from captum.metrics import infidelity as captum_infidelity

    m, x, maps, t = setup
    n, s = len(x), 6
    pert = np.random.default_rng(2).normal(0.0, 0.1, (n, s, *x.shape[1:])).astype(np.float32)
    flat = torch.from_numpy(pert.reshape(n * s, *x.shape[1:]))  # input-major, as captum repeats

    def perturb(inputs):
        return flat, inputs - flat

    attr = torch.from_numpy(np.repeat(maps[:, None], 3, 1).astype(np.float32))
    want = captum_infidelity(
        m, perturb, x, attr, target=torch.tensor(t), n_perturb_samples=s, normalize=normalize
    ).numpy()
    ours = infidelity(m, x.numpy(), maps, target=t, perturbations=pert, normalize=normalize)
    assert want.min() > 0
    assert np.abs(ours - want).max() <= 1e-4 * np.abs(want).max()
    # the seeded draws: the same numbers twice, other numbers with another seed
    a = infidelity(m, x.numpy(), maps, target=t, samples=4, seed=1)
    assert np.array_equal(a, infidelity(m, x.numpy(), maps, target=t, samples=4, seed=1))
    assert not np.array_equal(a, infidelity(m, x.numpy(), maps, target=t, samples=4, seed=2))


def test_a_faithful_map_drops_more_than_its_reverse(setup):
    """Removing what Grad-CAM points at lowers the score more than removing what it points
    away from does, on average over inputs and fractions (a sanity check of the direction)."""
    m, x, maps, t = setup
    most = road(m, x.numpy(), maps, target=t, order="most")
    reverse = road(m, x.numpy(), 1 - maps, target=t, order="most")
    assert most.mean() < reverse.mean()


def test_ties_remove_exactly_the_fraction(setup):
    """A map with ties (a flat one, a CAM's zeros) loses as many pixels as a map without:
    the percentile rule alone would remove every pixel of a flat map."""
    from convsee.run.faithfulness import _kept

    rng = np.random.default_rng(0)
    smooth, flat = rng.random((24, 24)), np.zeros((24, 24))
    cam = np.where(smooth > 0.5, smooth, 0.0)
    for f in (0.1, 0.5, 0.9):
        want = int((smooth >= np.percentile(smooth, 100 * (1 - f))).sum())  # no ties
        for m in (smooth, flat, cam):
            for order in ("most", "least"):
                assert (~_kept(m, f, order)).sum() == want
        top = ~_kept(cam, f, "most")
        assert cam[top].min() >= cam[~top].max()  # the most relevant are the ones gone
    m, x, maps, t = setup
    flat_maps = maps.copy()
    flat_maps[1] = 0.0
    assert np.isfinite(road(m, x.numpy(), flat_maps, target=t, fractions=(0.3, 0.9))).all()


def test_bad_arguments_name_their_parameter(setup):
    m, x, maps, t = setup
    cases = [
        (lambda: road(m, x.numpy(), maps, order="best"), "order"),
        (lambda: road(m, x.numpy(), maps, fractions=(0.0, 0.5)), "fractions"),
        (lambda: road(m, x.numpy(), maps[:, :5]), "maps"),
        (lambda: road(m, x.numpy()[0], maps), "x"),
        (lambda: infidelity(m, x.numpy(), maps, samples=0), "samples"),
        (lambda: infidelity(m, x.numpy(), maps, order="most"), "order"),
        (
            lambda: infidelity(m, x.numpy(), maps, perturbations=np.zeros((1, 2, 3))),
            "perturbations",
        ),
    ]
    for call, param in cases:
        with pytest.raises(ConvseeError) as e:
            call()
        assert e.value.param == param, (param, str(e.value))
        assert "--" not in str(e.value)


def test_network_faithfulness_on_lenet():
    """Network.faithfulness: ROAD of LeNet-5's Grad-CAM maps, the most relevant pixels removed
    first lowering the score more than the least; infidelity's perturbations on the pixel
    scale reach the model divided by the normalisation's std."""
    import convsee

    net = convsee.load()
    inputs = ["sample:3", "sample:7"]
    maps = net.attribution(inputs, figures=False).maps
    most = net.faithfulness(inputs, maps, order="most")
    least = net.faithfulness(inputs, maps, order="least")
    assert most.shape == (2, 9) and most.mean() < least.mean()
    comb = net.faithfulness(inputs, maps, order="combined")
    assert np.allclose(comb, (least - most) / 2)
    std = float(net.prep.channel_std()[0])
    pert = np.random.default_rng(4).normal(0, 0.1, (2, 5, 1, 28, 28)).astype(np.float32)
    got = net.faithfulness(inputs, maps, metric="infidelity", perturbations=pert)
    want = infidelity(
        net.torch_model(), net.batch(net._as_inputs(inputs)), maps * std, perturbations=pert / std
    )
    assert np.allclose(got, want, rtol=1e-4)
    with pytest.raises(ConvseeError) as e:
        net.faithfulness(inputs, maps, metric="deletion")
    assert e.value.param == "metric"


def test_a_batch_larger_than_a_pass_gives_the_same_numbers(setup, monkeypatch):
    """The scores of x itself run in slices of rows_per_pass (here one input per pass)."""
    import convsee.run.attribution as attribution

    m, x, maps, t = setup
    whole = road(m, x.numpy(), maps, target=t, fractions=(0.5,))
    seen = []
    h = m.register_forward_pre_hook(lambda _m, i: seen.append(len(i[0])))
    monkeypatch.setattr(attribution, "PASS_VALUES", int(np.prod(x.shape[1:])))
    try:
        sliced = road(m, x.numpy(), maps, target=t, fractions=(0.5,))
    finally:
        h.remove()
    assert seen[:3] == [1, 1, 1]
    np.testing.assert_allclose(sliced, whole, rtol=1e-5, atol=1e-6)
