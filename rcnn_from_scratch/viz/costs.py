"""Figures of where the test time goes: each stage's parts (proposals, features, heads) as bars,
beside the papers' own figures."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["PAPER_SECONDS", "plot_stage_costs"]

# Seconds per image that the papers report (GPU, VGG16), split as far as the papers split them:
# R-CNN 47 s and Fast R-CNN 0.32 s without the proposals (Fast R-CNN, Table 4); selective search
# plus Fast R-CNN 1.83 s and Faster R-CNN 0.198 s in all (Faster R-CNN, Table 5), so selective search
# is the 1.51 s difference.
PAPER_SECONDS = {
    "R-CNN": {"features + heads": 47.0},
    "Fast R-CNN": {"proposals": 1.83 - 0.32, "features + heads": 0.32},
    "Faster R-CNN": {"all": 0.198},
}


def _bars(ax, times: dict[str, dict[str, float]], unit: str) -> None:
    parts = list(dict.fromkeys(p for t in times.values() for p in t))
    width = 0.8 / max(len(parts), 1)
    scale = 1000.0 if unit == "ms" else 1.0
    for k, part in enumerate(parts):
        xs = [i for i, t in enumerate(times.values()) if part in t]
        values = [scale * t[part] for t in times.values() if part in t]
        offset = (k - (len(parts) - 1) / 2) * width
        bars = ax.bar(np.array(xs) + offset, values, width, label=part)
        ax.bar_label(bars, [f"{v:,.0f}" if v >= 100 else f"{v:.3g}" for v in values], fontsize=7,
                     padding=1)  # fmt: skip
    ax.set_xticks(range(len(times)), list(times))
    ax.set_yscale("log")
    ax.set_ylabel(f"{unit} per image (log scale)")
    ax.margins(y=0.15)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(parts), fontsize=8,
              frameon=False)  # fmt: skip


def plot_stage_costs(times: dict[str, dict[str, float]], paper: dict | None = None,
                     title: str = "measured here", unit: str = "ms") -> Figure:  # fmt: skip
    """Grouped bars of seconds per image: one group per stage, one bar per part.

    Args:
        times: ``{stage: {part: seconds}}``, e.g. :func:`~rcnn_from_scratch.comparison.time_detectors`'
            ``proposals`` / ``features`` / ``heads`` (other keys are drawn too; drop ``regions``).
        paper: optional second panel in the same form, e.g. :data:`PAPER_SECONDS`, in seconds.
        title: the first panel's title.
        unit: ``"ms"`` or ``"s"`` for the first panel's axis.

    Returns:
        A Figure (never shown); log-scale axes, since the stages differ by orders of magnitude.
    """
    if unit not in ("ms", "s"):
        raise ValueError(f"unit must be 'ms' or 's'; got {unit!r}")
    for name, t in {"times": times, **({"paper": paper} if paper else {})}.items():
        if not t or not all(v > 0 for part in t.values() for v in part.values()):
            raise ValueError(f"{name} must map each stage to positive seconds per part; got {t!r}")
    panels = 1 + (paper is not None)
    fig = Figure(figsize=(5.2 * panels, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, panels))
    _bars(axes[0], times, unit)
    axes[0].set_title(title, fontsize=10, pad=22)
    if paper is not None:
        _bars(axes[1], paper, "s")
        axes[1].set_title("the papers (GPU, VGG16)", fontsize=10, pad=22)
    return fig
