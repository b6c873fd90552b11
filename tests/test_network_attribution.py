"""run/network_attribution.py: the one place a Network's output choice and normalisation go
to attribute_batch (Network.attribution and the live page's overlays both use it)."""

from __future__ import annotations

import warnings

import numpy as np
from foreign_models import make

from convsee.models.load import wrap
from convsee.run.attribution import attribute_batch
from convsee.run.network_attribution import attribute_network


def _two_heads(output=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # which output holds the scores: said, not needed here
        return wrap(make("TwoHeads"), input_size=(1, 28, 28), resize="stretch", output=output)


def test_scores_output_is_the_one_chosen_else_the_first():
    net = _two_heads()
    first, second = net.spec.outputs
    assert net.scores_output() is first and first.shape == (4,)
    net = _two_heads("1")
    assert net.scores_output() is net.spec.outputs[1] and second.shape == (10,)


def test_attribute_network_equals_attribute_batch_by_hand():
    net = _two_heads("1")
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    got = attribute_network(net, x, method="gradcam", layer="conv")
    want = attribute_batch(
        net.torch_model(),
        x,
        net.spec,
        method="gradcam",
        layer="conv",
        output="1",
        output_spec=net.spec.outputs[1],
        std=net.prep.channel_std(),
        mean=net.prep.channel_mean(),
    )
    assert got.targets.tolist() == want.targets.tolist() and got.maps.shape == (2, 28, 28)
    np.testing.assert_allclose(got.maps, want.maps, rtol=1e-6, atol=1e-7)
    # the targets are the classes of the chosen output (10 of them), not the first head's 4
    probs = net.run(x)[1]
    assert got.targets.tolist() == probs.argmax(1).tolist()
