"""The NumPy engine: layers with hand-written backward, losses, optimisers, weights on disk.

The contract every layer follows is in ``module.py``.
"""

from .activations import ReLU
from .batch_norm import FrozenBatchNorm2d, fold_batch_norm, frozen_batch_norm
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .linear import Flatten, Linear
from .losses import binary_cross_entropy_with_logits, smooth_l1, softmax_cross_entropy
from .module import Module, Parameter, Sequential
from .optim import SGD, Adam, WarmupStepSchedule
from .pooling import MaxPool2d
from .upsample import UpsampleNearest, interpolate_nearest
from .weights import WeightsError, load_weights, save_weights
