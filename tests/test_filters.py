import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convsee.errors import ConvseeError
from convsee.run.filters import blur_maps, gaussian_kernel1d


def test_blur_matches_reflect_padded_2d_convolution():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(3, 6, 24, 24)).astype(np.float32)
    for size, sigma in ((5, 3.0), (3, 3.0), (3, 0.7)):
        g = torch.from_numpy(gaussian_kernel1d(size, sigma))
        k2 = (g[:, None] * g[None, :])[None, None]
        x = torch.from_numpy(maps).reshape(-1, 1, 24, 24)
        pad = size // 2
        ref = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), k2).reshape(maps.shape)
        np.testing.assert_allclose(blur_maps(maps, size, sigma), ref.numpy(), atol=1e-5)


def test_blur_keeps_constants_and_input():
    a = np.full((2, 4, 4), 3.0, np.float32)
    before = a.copy()
    np.testing.assert_allclose(blur_maps(a, 5, 3.0), a, atol=1e-6)  # 5 > 4: edge padding
    assert np.array_equal(a, before)
    assert abs(gaussian_kernel1d(5, 3.0).sum() - 1) < 1e-6


def test_bad_kernel():
    with pytest.raises(ConvseeError, match="odd"):
        blur_maps(np.zeros((4, 4)), 4, 1.0)
