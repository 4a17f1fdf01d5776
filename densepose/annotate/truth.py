"""Dense ground truth of synthetic images: the exact surface point under a pixel of a person.

Images imported with ``--truth`` carry ``truth/<image id>.npz`` (``instance``, ``I``, ``U``, ``V``
per pixel, from ``densepose synth``); person k of the image is ``instance == k``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from densepose.annotate.importer import load_truth
from densepose.surface.parts import CHART_TO_MASK_PART


@functools.lru_cache(maxsize=16)
def _truth(project: str, image_id: int, mtime: float) -> dict[str, np.ndarray]:
    return load_truth(Path(project), image_id)


def true_iuv(project: Path, person: dict, x: float, y: float) -> tuple[int, float, float] | None:
    """The dense truth (I, U, V) under box point (x, y) of ``person`` (a persons row), or None
    when the image has no truth or the pixel is not on that person."""
    if person["truth_instance"] is None:
        return None
    path = Path(project) / "truth" / f"{person['image_id']}.npz"
    if not path.is_file():
        return None
    t = _truth(str(project), int(person["image_id"]), path.stat().st_mtime)
    h, w = t["I"].shape
    col = int(np.clip(np.floor(person["x"] + x * person["w"] / 256.0), 0, w - 1))
    row = int(np.clip(np.floor(person["y"] + y * person["h"] / 256.0), 0, h - 1))
    if t["instance"][row, col] != person["truth_instance"] or t["I"][row, col] == 0:
        return None
    return int(t["I"][row, col]), float(t["U"][row, col]), float(t["V"][row, col])


def true_point(surface, project: Path, person: dict, x: float, y: float) -> tuple[int, np.ndarray] | None:
    """The true surface point (face, bary (3,)) under box point (x, y), or None."""
    iuv = true_iuv(project, person, x, y)
    if iuv is None:
        return None
    face, bary = surface.points_from_iuv(np.array([iuv[0]]), np.array([[iuv[1], iuv[2]]]))
    return int(face[0]), bary[0]


def click_error(surface, project: Path, person: dict, x: float, y: float, face: int, bary) -> float | None:
    """Geodesic distance (metres) from a clicked surface point to the truth at (x, y), or None."""
    truth = true_point(surface, project, person, x, y)
    if truth is None:
        return None
    g = surface.geodesics.between_points(np.array([face]), np.asarray(bary, dtype=np.float64)[None],
                                         np.array([truth[0]]), truth[1][None])
    return float(np.asarray(g)[0])


def truth_labels(project: Path, person: dict) -> np.ndarray:
    """The person's true (256, 256) coarse part labels, resampled from the dense truth into the box."""
    t = _truth(str(project), int(person["image_id"]), (Path(project) / "truth" / f"{person['image_id']}.npz").stat().st_mtime)
    h, w = t["I"].shape
    grid = (np.arange(256) + 0.5) / 256.0
    cols = np.clip(np.floor(person["x"] + grid * person["w"]).astype(np.int64), 0, w - 1)
    rows = np.clip(np.floor(person["y"] + grid * person["h"]).astype(np.int64), 0, h - 1)
    charts = t["I"][rows[:, None], cols[None, :]].astype(np.int64)
    mine = t["instance"][rows[:, None], cols[None, :]] == person["truth_instance"]
    return np.where(mine, CHART_TO_MASK_PART[charts], 0).astype(np.uint8)
