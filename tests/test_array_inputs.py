"""Arrays given in Python: the model's own input tensor is taken as it is (as a .npy file is on
the command line), and arrays that are no image are refused in one sentence naming the inputs."""

from __future__ import annotations

import numpy as np
import pytest

import convsee


def test_the_models_input_tensor_is_passed_unchanged():
    net = convsee.load()
    [x] = net.inputs(["sample:3"])
    [p] = net.predict([x.x])  # (1, 28, 28), normalised: what the model takes
    [q] = net.predict(["sample:3"])
    assert p.prediction == q.prediction == 3
    np.testing.assert_array_equal(p.probabilities, q.probabilities)
    [again] = net.inputs([x.x])
    np.testing.assert_array_equal(again.x, x.x)


@pytest.mark.parametrize(
    "bad, words",
    [
        (5, "not int64 of shape ()"),
        (np.zeros((2, 3, 4, 5)), "of shape (2, 3, 4, 5)"),
        (np.full((28, 28), np.nan), "NaN or infinite"),
        (np.full((1, 28, 28), np.inf, np.float32), "NaN or infinite"),
    ],
)
def test_arrays_that_are_no_image_are_refused(bad, words):
    net = convsee.load()
    with pytest.raises(convsee.ConvseeError) as e:
        net.predict([bad])
    assert e.value.param == "inputs" and words in str(e.value)
    assert "\n" not in str(e.value)
