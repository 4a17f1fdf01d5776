"""The study's pictures (matplotlib): Fig. 5-style curves, per-part error and the heat map."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from densepose.cache import atomic_write_bytes

HEAT_CMAP = "jet"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _crop(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero((img < 250).any(-1))  # the body, a few pixels around it
    if len(ys) == 0:
        return img
    return img[max(ys.min() - 8, 0):ys.max() + 9, max(xs.min() - 8, 0):xs.max() + 9]


def _heat_axes(plt, fig, axes, pics: dict[str, np.ndarray], vmax_cm: float) -> None:
    for ax, name in zip(axes, ("front", "back")):
        ax.imshow(_crop(pics[name]))
        ax.set_title(name)
        ax.axis("off")
    sm = plt.cm.ScalarMappable(cmap=HEAT_CMAP, norm=plt.Normalize(0, vmax_cm))
    fig.colorbar(sm, ax=list(axes), fraction=0.05, label=f"geodesic error (cm), fixed scale 0-{vmax_cm:g}")


def _save(plt, fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def save_heat_figure(path: Path, pics: dict[str, np.ndarray], vmax_cm: float) -> None:
    """Front and back heat maps side by side with their colour bar."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
    _heat_axes(plt, fig, axes, pics, vmax_cm)
    _save(plt, fig, path)


def save_study_figure(path: Path, thresholds_cm: np.ndarray, curves: dict[str, np.ndarray], per_part: dict,
                      pics: dict[str, np.ndarray], vmax_cm: float) -> None:
    """One page: fraction of points within x cm per annotator and pooled, mean error per part, heat map."""
    plt = _plt()
    fig = plt.figure(figsize=(14, 4.8))
    grid = fig.add_gridspec(1, 4, width_ratios=[1.2, 1.0, 0.7, 0.7], wspace=0.55, left=0.05, right=0.93)
    ax = fig.add_subplot(grid[0])
    for name, frac in curves.items():
        pooled = name == "pooled"
        ax.plot(thresholds_cm, frac, color="k" if pooled else None, lw=2.5 if pooled else 1.2, label=name)
    ax.set_xlabel("geodesic error x (cm)")
    ax.set_ylabel("fraction of points within x")
    ax.set_ylim(0, 1.01)
    ax.set_xlim(0, thresholds_cm[-1])
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("annotator accuracy")
    ax = fig.add_subplot(grid[1])
    names = list(per_part)
    ax.barh(names, [per_part[n]["mean_cm"] for n in names], color="#2d6cdf")
    ax.barh(names, [per_part[n]["median_cm"] for n in names], color="#9cc1ff", height=0.4)
    ax.invert_yaxis()
    ax.set_xlabel("error (cm): mean (dark), median (light)")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title("per part")
    _heat_axes(plt, fig, [fig.add_subplot(grid[2]), fig.add_subplot(grid[3])], pics, vmax_cm)
    _save(plt, fig, path)
