"""The numbers and names of torchvision's ResNet-50-FPN models, apart from their assembly in
``resnet_fpn.py``: the inference configuration (torchvision's keyword arguments, validated before
anything is built), the key map from our parameter names to torchvision's state-dict keys, and the
initialisation of a model built without weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from ..checkpoints.torchvision import COCO_CATEGORIES

if TYPE_CHECKING:
    from .resnet_fpn import FasterRCNNResNet50FPN

__all__ = [
    "ResNetFPNConfig",
    "LEVELS",
    "ROI_LEVELS",
    "torchvision_name",
    "initialise_as_torchvision",
]


LEVELS = ("0", "1", "2", "3", "pool")  # torchvision's names of the pyramid levels P2 .. P6
ROI_LEVELS = LEVELS[:4]  # RoIs are pooled from P2 .. P5; 'pool' serves the RPN only


@dataclass(frozen=True)
class ResNetFPNConfig:
    """torchvision's builder keyword arguments (their names and defaults) for inference.

    ``num_classes`` counts the background, as in torchvision (COCO: 91 ids, 80 of them used).
    ``batch_norm_eps``: the frozen batch norm's epsilon; torchvision's COCO v1 files need 0.0
    (its builder calls ``overwrite_eps(model, 0.0)``), a model built without weights uses 1e-5.
    """

    num_classes: int = 91
    min_size: int = 800
    max_size: int = 1333
    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    batch_norm_eps: float = 0.0
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one per level
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    rpn_pre_nms_top_n_test: int = 1000  # per level
    rpn_post_nms_top_n_test: int = 1000  # per image
    rpn_nms_thresh: float = 0.7
    rpn_score_thresh: float = 0.0
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    mask_threshold: float = 0.5  # applied to the pasted probabilities: masks = probability > 0.5
    categories: tuple[str, ...] = field(default=COCO_CATEGORIES, repr=False)

    def __post_init__(self):
        _validate_config(self)


_INT_FIELDS = ("num_classes", "min_size", "max_size", "rpn_pre_nms_top_n_test",
               "rpn_post_nms_top_n_test", "box_detections_per_img")  # fmt: skip
_FRACTION_FIELDS = ("rpn_nms_thresh", "rpn_score_thresh", "box_score_thresh", "box_nms_thresh",
                    "mask_threshold")  # fmt: skip


def _validate_config(c: ResNetFPNConfig) -> None:
    """Types and ranges, checked before anything is built (a config may come from a file)."""
    for name in _INT_FIELDS:
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 100_000:
            raise ValueError(f"{name} must be an int in [1, 100000]; got {v!r}")
    if c.num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be >= 2; got {c.num_classes}")
    if c.min_size > c.max_size:
        raise ValueError(f"min_size ({c.min_size}) must not exceed max_size ({c.max_size})")
    for name in _FRACTION_FIELDS:
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1]; got {v!r}")
    eps = c.batch_norm_eps
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= eps <= 1.0:
        raise ValueError(f"batch_norm_eps must be a number in [0, 1]; got {eps!r}")
    for name, n in (("image_mean", 3), ("image_std", 3), ("anchor_sizes", 5)):
        v = getattr(c, name)
        if (
            not isinstance(v, (tuple, list))
            or len(v) != n
            or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < 1e4 for x in v
            )
        ):
            raise ValueError(f"{name} must be {n} positive numbers; got {v!r}")
    r = c.aspect_ratios
    if (
        not isinstance(r, (tuple, list))
        or not r
        or not all(isinstance(x, (int, float)) and 1e-3 < x < 1e3 for x in r)
    ):
        raise ValueError(f"aspect_ratios must be positive numbers; got {r!r}")
    if len(c.categories) != c.num_classes:
        raise ValueError(
            f"categories must name the {c.num_classes} classes (background first); "
            f"got {len(c.categories)} names"
        )


# our module names -> torchvision's state-dict keys (the small heads are shared with the other
# models, whose names differ in three places); applied to every name ``named_parameters`` yields
_TORCHVISION_NAMES = (
    (r"^rpn\.head\.conv\.", "rpn.head.conv.0.0."),
    (r"^roi_heads\.box_head\.fc6\.1\.", "roi_heads.box_head.fc6."),
    (r"^roi_heads\.box_head\.fc7\.0\.", "roi_heads.box_head.fc7."),
    (r"^roi_heads\.box_head\.(cls_score|bbox_pred)\.", r"roi_heads.box_predictor.\1."),
    (r"^roi_heads\.mask_head\.mask_fcn([1-9])\.",
     lambda m: f"roi_heads.mask_head.{int(m.group(1)) - 1}.0."),
    (r"^roi_heads\.mask_head\.(conv5_mask|mask_fcn_logits)\.", r"roi_heads.mask_predictor.\1."),
)  # fmt: skip


def torchvision_name(name: str) -> str:
    """Our dotted parameter name -> torchvision's state-dict key."""
    for pattern, replacement in _TORCHVISION_NAMES:
        name = re.sub(pattern, replacement, name)
    return name


def initialise_as_torchvision(model: FasterRCNNResNet50FPN, rng: np.random.Generator) -> None:
    """torchvision's initialisation of a model built without weights, so that a random model's
    activations, proposals and detections look like torchvision's random model (shapes and orders of
    magnitude, not values): ResNet and mask convolutions He-normal with fan-out, FPN convolutions
    uniform with bound sqrt(3 / fan-in) (``kaiming_uniform_(a=1)``), the RPN head normal with std
    0.01, linear layers PyTorch's default (uniform with bound 1 / sqrt(fan-in)); biases 0 except the
    linear layers'; batch-norm statistics the identity."""
    for name, p in model.named_parameters():
        shape, leaf = p.data.shape, name.rsplit(".", 1)[-1]
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 0
        if name.startswith("roi_heads.box_"):  # nn.Linear's default, weight and bias
            bound = 1 / np.sqrt(shape[1] if leaf == "weight" else _linear_fan_in(model, name))
            value = rng.uniform(-bound, bound, shape)
        elif leaf in ("running_mean", "bias"):
            value = np.zeros(shape)
        elif len(shape) == 1:  # batch-norm weights and variances
            value = np.ones(shape)
        elif name.startswith("rpn.head."):
            value = rng.normal(0.0, 0.01, shape)
        elif name.startswith("backbone.fpn."):
            value = rng.uniform(-np.sqrt(3 / fan_in), np.sqrt(3 / fan_in), shape)
        else:  # ResNet and mask-head convolutions; a transposed conv's fan-out is dims 1, 2, 3
            fan_out = shape[0] * int(np.prod(shape[2:])) if "conv5_mask" not in name else fan_in
            value = rng.normal(0.0, np.sqrt(2.0 / fan_out), shape)
        p.data[...] = value.astype(np.float32)
    model.backbone.body.fold()


def _linear_fan_in(model, bias_name: str) -> int:
    weights = dict(model.named_parameters())
    return weights[bias_name.removesuffix("bias") + "weight"].shape[1]


_BUILDER_KWARGS = {f.name for f in fields(ResNetFPNConfig)} - {"categories", "anchor_sizes"}


def _make_config(base: dict, overrides: dict) -> ResNetFPNConfig:
    unknown = sorted(set(overrides) - _BUILDER_KWARGS)
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {unknown}; this inference model takes "
            f"{sorted(_BUILDER_KWARGS)}"
        )
    values = {**base, **overrides}
    if "num_classes" in overrides and "categories" not in values:
        n = overrides["num_classes"]
        values["categories"] = (
            COCO_CATEGORIES if n == 91 else tuple(f"class {i}" for i in range(int(n)))
        )
    return ResNetFPNConfig(**values)
