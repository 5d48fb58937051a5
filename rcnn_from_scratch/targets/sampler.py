"""Foreground / background subsampling, written once for the RPN and the RoI heads.

Most anchors and proposals are background; training on all of them would drown the few positives.
So each image contributes a fixed number of examples with at most a given fraction of positives:
256 anchors, half positive, in the RPN; 512 RoIs, a quarter positive, in the box head (torchvision's
``BalancedPositiveNegativeSampler``; the Fast R-CNN paper used 64 RoIs per image, 25% foreground).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BalancedPositiveNegativeSampler"]


class BalancedPositiveNegativeSampler:
    """Choose at most ``int(batch_size_per_image * positive_fraction)`` positives, negatives fill up.

    Args:
        batch_size_per_image: examples per image.
        positive_fraction: largest share of positives.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        if batch_size_per_image < 0 or not 0 <= positive_fraction <= 1:
            raise ValueError(
                "batch_size_per_image must be >= 0 and positive_fraction in [0, 1]; got "
                f"{batch_size_per_image} and {positive_fraction}"
            )
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)

    def __call__(self, labels, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sample positives and negatives of one image.

        Args:
            labels: ``(N,)`` ints: ``>= 1`` positive (a class), ``0`` negative, ``-1`` ignored.
            rng: the random generator (chosen at random, so a seed makes it reproducible).

        Returns:
            ``(positive, negative)``: two ``(N,)`` bool masks, disjoint, never selecting an ignored one.
        """
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (N,); got {labels.shape}")
        positive = np.flatnonzero(labels >= 1)
        negative = np.flatnonzero(labels == 0)
        num_pos = min(len(positive), int(self.batch_size_per_image * self.positive_fraction))
        num_neg = min(len(negative), self.batch_size_per_image - num_pos)
        pos_mask = np.zeros(len(labels), dtype=bool)
        neg_mask = np.zeros(len(labels), dtype=bool)
        pos_mask[rng.choice(positive, num_pos, replace=False)] = True
        neg_mask[rng.choice(negative, num_neg, replace=False)] = True
        return pos_mask, neg_mask
