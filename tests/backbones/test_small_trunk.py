"""The four-stage trunk under the small pyramid: strides, shapes, names, gradients of every stage."""

import numpy as np
import pytest

from rcnn_from_scratch.backbones.small_trunk import SmallTrunk
from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error


def test_four_maps_at_strides_4_8_16_32_finest_first():
    trunk = SmallTrunk((4, 6, 8, 10), rng=0)
    maps = trunk(np.zeros((2, 3, 64, 96), np.float32))
    assert [m.shape for m in maps] == [(2, 4, 16, 24), (2, 6, 8, 12), (2, 8, 4, 6), (2, 10, 2, 3)]
    assert all(m.dtype == np.float32 for m in maps)
    assert trunk.strides == (4, 8, 16, 32) and trunk.out_channels == (4, 6, 8, 10)
    names = [n for n, _ in trunk.named_parameters()]
    assert names[:4] == [
        "stages.0.0.weight",
        "stages.0.0.bias",
        "stages.0.3.weight",
        "stages.0.3.bias",
    ]
    assert names[-1] == "stages.3.0.bias" and len(names) == 10


@pytest.mark.parametrize("read", [(0, 1, 2, 3), (3,), (1, 3)])
def test_parameter_gradients_equal_numerical_gradients_whichever_maps_are_read(read):
    rng = np.random.default_rng(2)
    trunk = SmallTrunk((2, 2, 3, 3), rng=rng).to(np.float64)
    x = rng.permutation(3 * 32 * 32).reshape(1, 3, 32, 32) / 3072 - 0.4997  # no ties
    r = [rng.standard_normal(m.shape) for m in trunk(x)]

    def loss(_=None):
        maps = trunk(x)
        return float(sum(np.sum(maps[i] * r[i]) for i in read))

    trunk.zero_grad()
    trunk(x)
    assert trunk.backward([r[i] if i in read else None for i in range(4)]) is None
    for name, p in trunk.named_parameters():
        err = relative_error(p.grad, numerical_gradient(loss, p.data))
        assert err < 1e-6, (name, err)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="channels"):
        SmallTrunk((4, 8, 16))
    trunk = SmallTrunk((2, 2, 2, 2))
    with pytest.raises(ValueError, match="multiples of 32"):
        trunk(np.zeros((1, 3, 40, 64), np.float32))
    maps = trunk(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="grads\\[3\\]"):
        trunk.backward([None, None, None, np.zeros((1, 2, 2, 2))])
    trunk(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="one gradient"):
        trunk.backward([maps[-1]])
