"""Label assignment by IoU, written once for the RPN (anchors) and the RoI heads (proposals).

Each prediction (anchor or proposal) is matched to the ground-truth box it overlaps most. Below the low
threshold it is background; between the two thresholds it is ignored (too ambiguous to teach either
class); at or above the high threshold it is foreground. Torchvision's ``Matcher``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Matcher"]


class Matcher:
    """Match predictions to ground truth by an IoU matrix.

    Args:
        high_threshold: quality at or above which a prediction takes its best ground truth.
        low_threshold: quality below which a prediction is background.
        allow_low_quality_matches: also give each ground truth the prediction(s) that overlap it most,
            ties included, even below ``high_threshold`` (the Faster R-CNN paper's rule for the RPN, so
            that every object has at least one positive anchor).
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(
        self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False
    ):
        if low_threshold > high_threshold:
            raise ValueError(
                f"low_threshold ({low_threshold}) must not exceed high_threshold ({high_threshold})"
            )
        self.high_threshold = float(high_threshold)
        self.low_threshold = float(low_threshold)
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __call__(self, match_quality_matrix) -> np.ndarray:
        """Assign each prediction a ground-truth index, -1 (background) or -2 (ignored).

        Args:
            match_quality_matrix: ``(G, N)`` IoU of each of G ground-truth boxes with N predictions.

        Returns:
            ``(N,)`` int64. With no ground truth (``G = 0``) every prediction is background; torchvision
            raises an error there instead, but an image without objects is a normal training input.
        """
        q = np.asarray(match_quality_matrix)
        if q.ndim != 2:
            raise ValueError(f"match_quality_matrix must have shape (G, N); got {q.shape}")
        G, N = q.shape
        if G == 0:
            return np.full(N, self.BELOW_LOW_THRESHOLD, dtype=np.int64)
        best = q.max(axis=0)  # (N,)
        matches = q.argmax(axis=0).astype(np.int64)  # first best ground truth on ties
        all_matches = matches.copy()
        matches[best < self.low_threshold] = self.BELOW_LOW_THRESHOLD
        matches[(best >= self.low_threshold) & (best < self.high_threshold)] = (
            self.BETWEEN_THRESHOLDS
        )
        if self.allow_low_quality_matches and N:
            # every prediction tied for a ground truth's best quality keeps its own best match
            highest = q.max(axis=1, keepdims=True)  # (G, 1)
            _, preds = np.nonzero(q == highest)
            matches[preds] = all_matches[preds]
        return matches
