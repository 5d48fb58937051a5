"""Hostile and damaged weights files for R-CNN, Fast, Faster and Mask R-CNN: every one a clear error.

Each file is a shipped or a tiny saved model with one thing changed, rewritten with ``save_weights``
(so only the changed thing is wrong).
"""

import json

import numpy as np
import pytest

from rcnn_from_scratch.models.fast_rcnn import FastRCNN, FastRCNNConfig
from rcnn_from_scratch.models.faster_rcnn import FasterRCNN, FasterRCNNConfig
from rcnn_from_scratch.models.mask_rcnn import MaskRCNN, MaskRCNNConfig
from rcnn_from_scratch.models.rcnn import DEFAULT_WEIGHTS as RCNN_WEIGHTS
from rcnn_from_scratch.models.rcnn import RCNN, RCNNConfig
from rcnn_from_scratch.models.saved_model import validate_config
from rcnn_from_scratch.nn import WeightsError, load_weights, save_weights

TINY = {
    FastRCNN: FastRCNNConfig(channels=(4,), hidden=8),
    FasterRCNN: FasterRCNNConfig(channels=(4,), hidden=8),
    MaskRCNN: MaskRCNNConfig(channels=(4,), hidden=8, mask_layers=(4,)),
}


def _tampered(tmp_path, Model, change_state=None, change_config=None):
    """A tiny saved ``Model`` with its arrays and/or config changed, rewritten as a weights file."""
    path = Model(TINY[Model]).save(tmp_path / "model.npz")
    state, config = load_weights(path)
    if change_state:
        change_state(state)
    if change_config:
        change_config(config)
    return save_weights(tmp_path / "tampered.npz", state, config)


@pytest.mark.parametrize("Model", list(TINY))
def test_a_saved_model_loads_back_with_the_same_parameters(tmp_path, Model):
    model = Model(TINY[Model], seed=3)
    loaded = Model.load(model.save(tmp_path / "m.npz"))
    for (n, p), (m, q) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        assert n == m and np.array_equal(p.data, q.data)


@pytest.mark.parametrize("Model", list(TINY))
def test_a_bias_of_shape_one_is_not_broadcast_into_the_parameter(tmp_path, Model):
    def shrink(state):
        name = next(k for k, v in state.items() if k.endswith("bias") and v.shape[0] > 1)
        state[name] = state[name][:1]

    path = _tampered(tmp_path, Model, change_state=shrink)
    with pytest.raises(WeightsError, match=r"parameter '.*bias' has shape \(1,\); the model needs"):
        Model.load(path)


@pytest.mark.parametrize("Model", list(TINY))
def test_a_transposed_weight_is_named_with_both_shapes(tmp_path, Model):
    def transpose(state):
        name = next(k for k, v in state.items() if v.ndim == 2 and v.shape[0] != v.shape[1])
        state[name] = state[name].T.copy()

    path = _tampered(tmp_path, Model, change_state=transpose)
    with pytest.raises(
        WeightsError, match=r"parameter '.*weight' has shape \(\d+, \d+\); the model"
    ):
        Model.load(path)


@pytest.mark.parametrize("Model", list(TINY))
@pytest.mark.parametrize("kind", ["complex", "bool", "nan"])
def test_complex_bool_and_nan_parameters_are_refused_by_name(tmp_path, Model, kind):
    def spoil(state):
        name = next(k for k in state if k.endswith("weight"))
        v = state[name]
        state[name] = {"complex": v.astype(complex), "bool": v > 0, "nan": v * np.nan}[kind]

    path = _tampered(tmp_path, Model, change_state=spoil)
    with pytest.raises(WeightsError, match=r"parameter '.*weight' holds"):
        Model.load(path)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("hidden", 10**7, r"hidden must be an integer in \[1, 65536\]; got 10000000"),
        ("anchor_sizes", [-16.0, 32.0], r"anchor_sizes\[0\] must be a finite number > 0"),
        ("rpn_nms_thresh", "0.7", "rpn_nms_thresh must be a real number; got str"),
        ("nms_thresh", None, "nms_thresh must be a real number; got NoneType"),
        ("channels", [4, 0], r"channels\[1\] must be an integer in \[1, 4096\]"),
        ("aspect_ratios", [], "aspect_ratios must be a tuple of 1 to 64 numbers"),
        ("pooler", "max", "pooler must be one of"),
        ("num_classes", True, "num_classes must be an integer; got bool"),
        ("score_thresh", float("nan"), "score_thresh must be a real number, not NaN"),
    ],
)
@pytest.mark.parametrize("Model", [FasterRCNN, MaskRCNN])
def test_a_stored_config_of_the_wrong_type_or_range_is_refused_before_building(
    tmp_path, Model, field, value, message
):
    path = _tampered(tmp_path, Model, change_config=lambda c: c.update({field: value}))
    with pytest.raises(WeightsError, match="stored config is not valid: " + message):
        Model.load(path)


def test_a_config_whose_head_would_not_fit_in_memory_is_refused():
    with pytest.raises(ValueError, match="first fully connected layer .* would need"):
        validate_config(FastRCNNConfig(channels=(4096,), pooled_size=64, hidden=65536))


def test_the_shipped_configs_pass_validation():
    for config in (RCNNConfig(), FastRCNNConfig(), FasterRCNNConfig(), MaskRCNNConfig()):
        validate_config(config)


def test_another_models_file_is_refused(tmp_path):
    path = FastRCNN(TINY[FastRCNN]).save(tmp_path / "fast.npz")
    with pytest.raises(WeightsError, match="holds a 'fast_rcnn' model, not a 'mask_rcnn'"):
        MaskRCNN.load(path)


def _rcnn_file(tmp_path, change):
    state, config = load_weights(RCNN_WEIGHTS)
    change(state, config)
    return save_weights(tmp_path / "rcnn.npz", state, config)


def test_rcnn_load_names_a_missing_svm_weight(tmp_path):
    path = _rcnn_file(tmp_path, lambda s, c: s.pop("svm.weight"))
    with pytest.raises(WeightsError, match=r"missing parameter\(s\) \['svm.weight'\]"):
        RCNN.load(path)


def test_rcnn_load_refuses_a_cut_down_svm_weight_with_its_shape(tmp_path):
    def cut(state, config):
        state["svm.weight"] = state["svm.weight"][:10]

    path = _rcnn_file(tmp_path, cut)
    with pytest.raises(
        WeightsError, match=r"'svm.weight' has shape \(10, 3\); the model needs \(128, 3\)"
    ):
        RCNN.load(path)


@pytest.mark.parametrize(
    "field, value, message",
    [("hidden", 10**7, "hidden"), ("crop_size", 4, "crop_size 4 is too small"),
     ("warp_method", "stretch", "warp_method must be one of"), ("svm_c", 0, "svm_c")],
)  # fmt: skip
def test_rcnn_load_refuses_a_bad_stored_config(tmp_path, field, value, message):
    path = _rcnn_file(tmp_path, lambda s, c: c.update({field: value}))
    with pytest.raises(WeightsError, match=message):
        RCNN.load(path)


def test_the_shipped_rcnn_still_loads_and_its_config_round_trips():
    model = RCNN.pretrained()
    assert json.loads(json.dumps(model.config.channels)) == list(RCNNConfig().channels)


def test_configs_built_in_code_are_checked_too():
    from rcnn_from_scratch.models.fast_rcnn import FastRCNNConfig
    from rcnn_from_scratch.models.faster_rcnn import FasterRCNNConfig
    from rcnn_from_scratch.models.mask_rcnn import MaskRCNNConfig
    from rcnn_from_scratch.models.rcnn import RCNNConfig

    with pytest.raises(ValueError, match="hidden"):
        FastRCNNConfig(hidden=10**7)
    with pytest.raises(ValueError, match="nms_thresh"):
        FasterRCNNConfig(nms_thresh=None)
    with pytest.raises(ValueError, match="anchor_sizes"):
        MaskRCNNConfig(anchor_sizes=(-16.0, 32.0, 48.0))
    with pytest.raises(ValueError):
        RCNNConfig(num_classes="3")
