"""BoxCoder: closed-form deltas, round trips, the dw/dh clamp, errors, torchvision parity."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rcnn_from_scratch import BoxCoder


def test_encode_gives_the_r_cnn_parametrisation_by_hand():
    proposal = np.array([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), size 10 x 20
    gt = np.array([[2.0, 4.0, 22.0, 24.0]])  # centre (12, 14), size 20 x 20
    d = BoxCoder((10, 10, 5, 5)).encode(gt, proposal)
    np.testing.assert_allclose(d, [[10 * 7 / 10, 10 * 4 / 20, 5 * math.log(2), 0.0]])


@st.composite
def pairs(draw):
    n = draw(st.integers(0, 20))
    el = st.floats(-100, 100, allow_nan=False)
    sz = st.floats(1, 60, allow_nan=False)  # size ratios below 1000 / 16
    p_xy, g_xy = (
        draw(arrays(np.float64, (n, 2), elements=el)),
        draw(arrays(np.float64, (n, 2), elements=el)),
    )
    p_wh, g_wh = (
        draw(arrays(np.float64, (n, 2), elements=sz)),
        draw(arrays(np.float64, (n, 2), elements=sz)),
    )
    return np.hstack([g_xy, g_xy + g_wh]), np.hstack([p_xy, p_xy + p_wh])


@settings(max_examples=100, deadline=None)
@given(pairs(), st.sampled_from([(1, 1, 1, 1), (10, 10, 5, 5), (2, 3, 4, 5)]))
def test_decode_of_encode_is_identity(pair, weights):
    gt, proposals = pair  # size ratios stay below 1000 / 16, so the clamp never bites
    coder = BoxCoder(weights)
    back = coder.decode(coder.encode(gt, proposals), proposals)
    np.testing.assert_allclose(back, gt, atol=1e-9 * (1 + np.abs(gt).max(initial=0)))


def test_decode_clamps_dw_and_dh_at_log_1000_over_16():
    coder = BoxCoder((1, 1, 1, 1))
    out = coder.decode(np.array([[0, 0, 50.0, 50.0]]), np.array([[0, 0, 16.0, 16.0]]))
    np.testing.assert_allclose(out[0, 2] - out[0, 0], 1000.0)


def test_decode_handles_one_delta_set_per_class():
    coder = BoxCoder((10, 10, 5, 5))
    boxes = np.array([[0, 0, 10, 10], [5, 5, 25, 15]], np.float32)
    deltas = np.zeros((2, 12), np.float32)
    out = coder.decode(deltas, boxes)
    assert out.shape == (2, 12) and out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(2, 3, 4), np.repeat(boxes[:, None], 3, 1))
    assert coder.decode(deltas, [boxes[:1], boxes[1:]]).shape == (2, 3, 4)


def test_lists_are_encoded_per_image():
    coder = BoxCoder((1, 1, 1, 1))
    b = np.array([[0, 0, 4, 4]], np.float32)
    out = coder.encode([b, b], [b, b])
    assert isinstance(out, list) and len(out) == 2 and np.all(out[0] == 0)


def test_empty_inputs_encode_and_decode_to_empty():
    coder = BoxCoder((1, 1, 1, 1))
    assert coder.encode(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)
    assert coder.decode(np.zeros((0, 8)), np.zeros((0, 4))).shape == (0, 8)


def test_bad_input_gives_clear_errors():
    coder = BoxCoder((1, 1, 1, 1))
    with pytest.raises(ValueError, match="positive width"):
        coder.encode([[0, 0, 4, 4]], [[0, 0, 0, 4]])
    with pytest.raises(ValueError, match="pair up"):
        coder.encode([[0, 0, 4, 4]], [[0, 0, 4, 4], [0, 0, 4, 4]])
    with pytest.raises(ValueError, match="rel_codes"):
        coder.decode(np.zeros((1, 3)), [[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="rel_codes must be finite"):
        coder.decode(np.full((1, 4), np.nan), [[0, 0, 4, 4]])
    with pytest.raises(ValueError, match="weights"):
        BoxCoder((1, 1, 1))


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coder_matches_torchvision(weights):
    torch = pytest.importorskip("torch")
    det_utils = pytest.importorskip("torchvision.models.detection._utils")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (50, 2))
    p = np.hstack([xy, xy + rng.uniform(1, 50, (50, 2))]).astype(np.float32)
    g = p + rng.normal(0, 5, (50, 4)).astype(np.float32)
    g[:, 2:] = np.maximum(g[:, 2:], g[:, :2] + 1)
    theirs = det_utils.BoxCoder(weights)
    ours = BoxCoder(weights)
    np.testing.assert_allclose(
        ours.encode(g, p),
        theirs.encode_single(torch.from_numpy(g), torch.from_numpy(p)).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    codes = rng.normal(0, 2, (50, 8)).astype(np.float32)
    np.testing.assert_allclose(
        ours.decode(codes, [p]),
        theirs.decode(torch.from_numpy(codes), [torch.from_numpy(p)]).numpy(),
        rtol=1e-5,
        atol=1e-3,
    )


@pytest.mark.parametrize("clip", [float("nan"), "4.1", None])
def test_a_nan_or_non_numeric_clip_is_refused_by_name(clip):
    with pytest.raises(ValueError, match="bbox_xform_clip"):
        BoxCoder((1.0, 1.0, 1.0, 1.0), bbox_xform_clip=clip)


@pytest.mark.parametrize(
    "weights", [(1, 1, 1, float("nan")), (1, 1, 1, float("inf")), (1, 1, 1, "1"), 5]
)
def test_nan_infinite_or_non_numeric_weights_are_refused(weights):
    with pytest.raises(ValueError, match="weights"):
        BoxCoder(weights)
