"""Weights on disk for the detectors built from modules (Fast, Faster and Mask R-CNN): one mixin.

A subclass names itself (``model_name``, recorded in the file), its config dataclass
(``config_class``) and its shipped file (``default_weights``), and lists its parameters with
``named_parameters()``. The file holds the parameters, the config, and optional training records;
``nn/weights.py`` does the atomic, pickle-free writing and the validation of the file itself.

A file's config is not trusted either: :func:`validate_config` checks every field's type and range
before a model is built from it (a ``hidden`` of 10**7 would allocate 234 GiB, a negative anchor size
or a string threshold would fail much later inside NumPy), and :meth:`SavedModel.load` checks every
parameter's shape exactly (no broadcasting of a ``(1,)`` bias into a ``(16,)`` one).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from ..conventions import (
    check_allocation,
    check_int,
    check_positive_finite,
    check_real,
    check_threshold,
)
from ..nn import WeightsError, load_weights, save_weights
from ..nn.weights import check_parameter_shapes as _check_shapes
from ..proposals.selective_search import MODES
from ..roi.warp import WARP_METHODS

__all__ = ["SavedModel", "validate_config", "config_from_record"]

RECORD = "record."  # prefix of arrays kept beside the parameters (a training's loss curves)

# The rule of every config field of the shapes detectors (R-CNN, Fast, Faster and Mask R-CNN, the
# FPN variant). The bounds are generous (the shipped models use a tenth of them or less) and keep any
# model buildable. A field without a rule here is the config class's own to check (__post_init__).
_INTS = {
    "num_classes": (1, 1000),
    "crop_size": (1, 1024),
    "hidden": (1, 65536),
    "pooled_size": (1, 64),
    "mask_pooled_size": (1, 64),
    "rois_per_image": (1, 10**6),
    "rpn_batch_size": (1, 10**6),
    "rpn_pre_nms_train": (1, 10**6),
    "rpn_post_nms_train": (1, 10**6),
    "rpn_pre_nms_test": (1, 10**6),
    "rpn_post_nms_test": (1, 10**6),
    "detections_per_img": (1, 10**5),
    "fpn_channels": (1, 4096),
    "canonical_scale": (1, 10**4),
    "sampling_ratio": (-1, 64),  # RoIAlign's; <= 0 adapts to the RoI
}
_INT_TUPLES = {
    "channels": (1, 4096, 6),
    "trunk_channels": (1, 4096, 6),
    "mask_layers": (1, 4096, 16),
}
_POSITIVE_TUPLES = {"anchor_sizes": (1e8, 64), "aspect_ratios": (1e4, 64)}  # largest, longest
_THRESHOLDS = ("positive_fraction", "rpn_positive_fraction", "fg_iou", "bg_iou_low", "nms_thresh",
               "rpn_nms_thresh", "mask_threshold")  # fmt: skip
_REALS = {"score_thresh": (-1e6, 1e6), "smooth_l1_beta": (0.0, 1e6), "context_padding": (0.0, 1e4)}
_POSITIVE = ("svm_c",)
_CHOICES = {"pooler": ("roi_pool", "roi_align"), "proposal_mode": tuple(MODES),
            "warp_method": WARP_METHODS}  # fmt: skip
_BOOLS = ("class_agnostic_masks",)
KNOWN_FIELDS = frozenset(
    [*_INTS, *_INT_TUPLES, *_POSITIVE_TUPLES, *_THRESHOLDS, *_REALS, *_POSITIVE, *_CHOICES, *_BOOLS]
)


def _tuple(value, name: str, longest: int) -> tuple:
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= longest:
        raise ValueError(f"{name} must be a tuple of 1 to {longest} numbers; got {value!r}")
    return tuple(value)


def validate_config(config) -> None:
    """Check a detector config's every field: type, range, and that the model it builds fits in
    memory. Raises ``ValueError`` naming the field, what was expected and what came.

    The largest layer (the first of the box head, or R-CNN's last hidden layer) is bounded by
    ``conventions.MAX_ALLOCATION_BYTES`` with its gradient and two Adam moments.
    """
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    for name, value in values.items():
        if name not in KNOWN_FIELDS:
            continue  # the class's own field, checked by its __post_init__
        if name in _INTS:
            check_int(value, name, *_INTS[name])
        elif name in _INT_TUPLES:
            low, high, longest = _INT_TUPLES[name]
            for i, v in enumerate(_tuple(value, name, longest)):
                check_int(v, f"{name}[{i}]", low, high)
        elif name in _POSITIVE_TUPLES:
            largest, longest = _POSITIVE_TUPLES[name]
            for i, v in enumerate(_tuple(value, name, longest)):
                check_positive_finite(v, f"{name}[{i}]")
                check_real(v, f"{name}[{i}]", 1 / largest, largest)
        elif name in _THRESHOLDS:
            check_threshold(value, name)
        elif name in _REALS:
            check_real(value, name, *_REALS[name])
        elif name in _POSITIVE:
            check_positive_finite(value, name)
        elif name in _CHOICES:
            if not isinstance(value, str) or value not in _CHOICES[name]:
                raise ValueError(f"{name} must be one of {_CHOICES[name]}; got {value!r}")
        elif not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be true or false; got {value!r}")
    if "bg_iou_low" in values and values["bg_iou_low"] > values["fg_iou"]:
        raise ValueError(
            f"bg_iou_low ({values['bg_iou_low']}) must not exceed fg_iou ({values['fg_iou']})"
        )
    if "hidden" not in values:
        return
    if "channels" in values:
        width, stages = values["channels"][-1], len(values["channels"])
    else:
        width, stages = values.get("fpn_channels", 1), 0
    if "crop_size" in values:  # R-CNN: the crop shrinks by 2 per stage
        side = values["crop_size"] // 2**stages
        if side < 1:
            raise ValueError(
                f"crop_size {values['crop_size']} is too small for {stages} stages of channels "
                f"{values['channels']} (at least {2**stages})"
            )
    else:
        side = values.get("pooled_size", 1)
    weights = float(width) * side * side * values["hidden"]
    check_allocation(
        4 * weights, 4, f"the first fully connected layer ({width} x {side} x {side} inputs x "
        f"hidden {values['hidden']}, with its gradient and Adam moments)",
    )  # fmt: skip


def config_from_record(config_class, record: dict, path):
    """The ``config_class`` described by a weights file's config record, validated before use.

    JSON lists become tuples; fields the record lacks keep their defaults; other keys (the model's
    name, training records) are ignored. A bad field is a ``WeightsError`` naming it.
    """
    known = {f.name for f in fields(config_class)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in record.items() if k in known}
    try:
        config = config_class(**values)
        validate_config(config)
    except ValueError as err:
        raise WeightsError(f"{path}: the stored config is not valid: {err}") from None
    return config


def check_parameter_shapes(own: dict, state: dict, path) -> None:
    """The file's arrays must be exactly the model's parameters (``own``: name -> shape), each of
    exactly its shape (``nn.weights.check_parameter_shapes``)."""
    _check_shapes(own, {name: np.shape(a) for name, a in state.items()}, path)


class SavedModel:
    """``save(path)``, ``load(path)`` and ``pretrained()`` for a model with ``named_parameters()``."""

    model_name: str
    config_class: type
    default_weights: Path

    def config_dict(self) -> dict:
        """The config as JSON-ready values (what :meth:`save` records)."""
        return json.loads(json.dumps(asdict(self.config)))

    def save(self, path, extra: dict | None = None, arrays: dict | None = None) -> Path:
        """Write the parameters and the config to an ``.npz``, atomically.

        ``extra``: JSON-ready records kept beside the config (how the weights were trained);
        ``arrays``: named arrays kept as ``"record.<name>"`` (the training's loss curves).
        """
        state = {n: p.data for n, p in self.named_parameters()}
        state.update({RECORD + k: np.asarray(v) for k, v in (arrays or {}).items()})
        return save_weights(
            path, state, {"model": self.model_name, **self.config_dict(), **(extra or {})}
        )

    @classmethod
    def load(cls, path):
        """A model from a file written by :meth:`save`.

        Raises:
            WeightsError: a damaged or foreign file (``load_weights``), another model's file, a
                config field of the wrong type or range (before the model is built), or a
                parameter missing, unexpected, or not of exactly the model's shape.
        """
        state, config = load_weights(path)
        if config.get("model") != cls.model_name:
            raise WeightsError(
                f"{path}: holds a {config.get('model')!r} model, not a {cls.model_name!r}"
            )
        model = cls(config_from_record(cls.config_class, config, path))
        own = dict(model.named_parameters())
        state = {k: v for k, v in state.items() if not k.startswith(RECORD)}
        check_parameter_shapes({n: p.data.shape for n, p in own.items()}, state, path)
        for name, p in own.items():
            p.data[...] = state[name]
        return model

    @classmethod
    def pretrained(cls, path=None):
        """The shipped model (``default_weights``; its command is in ``data/README.md``)."""
        return cls.load(path or cls.default_weights)
