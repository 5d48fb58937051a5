"""The pipeline's first slot: the network that turns an image into feature maps.

* ``convnet.py``: the lecture's small VGG-style CNN (stride 8), trained from scratch on 128 x 128 images.
* ``resnet.py``: torchvision's ResNet-50 body (v1.5 bottlenecks, frozen batch norm folded into the
  convolutions), inference only; C2..C5 at strides 4, 8, 16, 32.
* ``fpn.py``: the feature pyramid (lateral 1x1, top-down nearest upsampling, 3x3 outputs, the extra
  ``'pool'`` level), forward and backward, and ``BackboneWithFPN`` that puts a body under it.
"""

from .convnet import Backbone, make_backbone
