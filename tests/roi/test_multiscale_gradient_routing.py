"""MultiScaleRoIAlign's backward routes each RoI's gradient to its own level only: with the upstream
gradient of one RoI, every other level's gradient is exactly zero, and its own level's is the
numerical gradient of RoIAlign on that map alone (and only on its image of the batch)."""

import numpy as np

from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error
from rcnn_from_scratch.roi.multiscale import (
    multiscale_roi_align_backward,
    multiscale_roi_align_forward,
)
from rcnn_from_scratch.roi.roi_align import roi_align

SCALES = [0.25, 0.125, 0.0625]  # strides 4, 8, 16 of a 64 x 64 image
RULE = dict(canonical_scale=16, canonical_level=3)  # sides [8, 16) -> 0, [16, 32) -> 1, >= 32 -> 2


def _problem(rng):
    maps = [rng.standard_normal((2, 2, 64 // s, 64 // s)) for s in (4, 8, 16)]
    sides = np.array([5.3, 12.7, 18.1, 27.9, 36.4, 50.2])  # two RoIs per level
    x0 = rng.uniform(1, 60 - sides) + 0.013  # sample points off the grid lines
    y0 = rng.uniform(1, 60 - sides) + 0.029
    batch = np.array([0, 1, 1, 0, 0, 1])
    rois = np.stack([batch, x0, y0, x0 + sides, y0 + sides], axis=1)
    return maps, rois


def test_one_rois_gradient_reaches_its_level_and_image_only():
    rng = np.random.default_rng(7)
    maps, rois = _problem(rng)
    out, cache = multiscale_roi_align_forward(maps, rois, (2, 3), 2, SCALES, 2, 4, **RULE)
    assert cache.levels.tolist() == [0, 0, 1, 1, 2, 2]
    for k in range(len(rois)):
        dout = np.zeros_like(out)
        dout[k] = rng.standard_normal(out.shape[1:])
        grads = multiscale_roi_align_backward(dout, cache)
        own, n = int(cache.levels[k]), int(rois[k, 0])
        for lv, g in enumerate(grads):
            if lv != own:
                assert not g.any(), (k, lv)  # exactly zero, not merely small
        assert not grads[own][1 - n].any()  # the other image of the batch gets nothing
        assert np.abs(grads[own][n]).sum() > 0

        def alone(m, k=k, own=own, dout=dout):  # RoIAlign of RoI k on its level's map alone
            return float(np.sum(roi_align(m, rois[k : k + 1], (2, 3), SCALES[own], 2) * dout[k]))

        numeric = numerical_gradient(alone, maps[own])
        assert relative_error(grads[own], numeric) < 1e-7, k


def test_the_levels_gradients_add_up_over_rois():
    # linearity: the gradient of all RoIs together is the sum of each RoI's alone
    rng = np.random.default_rng(8)
    maps, rois = _problem(rng)
    out, cache = multiscale_roi_align_forward(maps, rois, 2, 2, SCALES, 2, 4, **RULE)
    dout = rng.standard_normal(out.shape)
    together = multiscale_roi_align_backward(dout, cache)
    summed = [np.zeros_like(m) for m in maps]
    for k in range(len(rois)):
        one = np.zeros_like(dout)
        one[k] = dout[k]
        for lv, g in enumerate(multiscale_roi_align_backward(one, cache)):
            summed[lv] += g
    for lv in range(3):
        np.testing.assert_allclose(together[lv], summed[lv], rtol=1e-12, atol=1e-14)
