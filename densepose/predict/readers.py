"""Read back what `densepose predict` writes: ``*_IUV.png``, ``*_INDS.png``, ``<stem>.npz``."""
from __future__ import annotations

import os
import re

import numpy as np
from PIL import Image

from densepose.errors import UserError
from densepose.predict.results import PersonResult

#: ``detectron``: the original tool's file ([I, U*255, V*255] written by OpenCV, so the PNG's
#: blue channel holds I and ``cv2.imread`` returns [I, U, V]); ``rgb``: I in the red channel.
IUV_LAYOUTS = ("detectron", "rgb")
MAX_CHART = 24


def detect_iuv_layout(rgb: np.ndarray) -> str:
    """Which channel of an RGB-decoded (H, W, 3) IUV picture holds I (values 0..24).

    The I channel never exceeds 24 while U and V reach up to 255; when both end channels stay
    within 0..24 (e.g. an empty picture) the answer is the default, ``detectron``.
    """
    red_is_i = int(rgb[..., 0].max(initial=0)) <= MAX_CHART
    blue_is_i = int(rgb[..., 2].max(initial=0)) <= MAX_CHART
    if red_is_i and not blue_is_i:
        return "rgb"
    return "detectron"


def read_iuv_png(path: str | os.PathLike, layout: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``*_IUV.png`` -> (labels (H, W) uint8, u, v (H, W) float32 in [0, 1]).

    ``layout`` is ``detectron`` (I in the blue channel, the default written by `densepose predict`
    and by the original ``infer_simple.py``), ``rgb`` (I in the red channel, ``--iuv-layout rgb``),
    or None to detect it from the values (`detect_iuv_layout`).
    """
    if layout is not None and layout not in IUV_LAYOUTS:
        raise UserError(f"IUV layout must be one of {', '.join(IUV_LAYOUTS)}, not {layout!r}")
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    if (layout or detect_iuv_layout(arr)) == "detectron":
        arr = arr[..., ::-1]
    return arr[..., 0].copy(), arr[..., 1].astype(np.float32) / 255.0, arr[..., 2].astype(np.float32) / 255.0


def read_inds_png(path: str | os.PathLike) -> np.ndarray:
    """``*_INDS.png`` -> (H, W) uint8 instance index (0 background, 1 = best score)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")).copy()


def _map_box(data, k: int) -> np.ndarray | None:
    """Person ``k``'s map box from an npz, None where it is the detection box (or the file predates it)."""
    if "map_boxes" not in data.files or np.array_equal(data["map_boxes"][k], data["boxes"][k]):
        return None
    return data["map_boxes"][k]


def read_npz(path: str | os.PathLike) -> tuple[list[PersonResult], dict]:
    """``<stem>.npz`` -> (people sorted by descending score, metadata dict of the other arrays)."""
    with np.load(path, allow_pickle=False) as data:
        n = len(data["scores"])
        per_person = [re.fullmatch(r"(.+)_(\d+)", key) for key in data.files]
        confidences: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        for m in per_person:
            if m and m.group(1) not in ("labels", "u", "v") and int(m.group(2)) < n:
                confidences[int(m.group(2))][m.group(1)] = data[m.group(0)]
        people = [
            PersonResult(
                data["boxes"][k], float(data["scores"][k]), data[f"labels_{k}"], data[f"u_{k}"], data[f"v_{k}"],
                (int(data["origins"][k][0]), int(data["origins"][k][1])), confidences=confidences[k],
                map_box=_map_box(data, k), dense_score=_dense_score(data, k),
            )
            for k in range(n)
        ]
        meta = {key: data[key] for key, m in zip(data.files, per_person) if m is None and key != "dense_scores"}
    return people, meta


def _dense_score(data, k: int) -> float | None:
    """Person k's dense score from an NPZ (NaN, or a file written before they existed: None)."""
    if "dense_scores" not in data.files or np.isnan(data["dense_scores"][k]):
        return None
    return float(data["dense_scores"][k])
