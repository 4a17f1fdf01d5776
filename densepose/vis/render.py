"""One picture per visualisation kind from a full-image IUV result (what `densepose predict --vis` writes)."""
from __future__ import annotations

import numpy as np

from densepose.vis.colors import colorize_parts, scalar_to_rgb
from densepose.vis.draw import draw_boxes, draw_isolines, grayscale, overlay
from densepose.vis.texture import texture_transfer

#: parts: part colours over a gray image; contours: U/V isolines and part boundaries;
#: texture: the texture atlas pasted on the body; u, v: one coordinate as a colour ramp;
#: boxes: detections with scores on the original image.
VIS_KINDS = ("parts", "contours", "texture", "u", "v", "boxes")


def visualize(
    image: np.ndarray,
    labels: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    kind: str,
    boxes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    atlas: np.ndarray | None = None,
    alpha: float = 0.7,
) -> np.ndarray:
    """RGB uint8 (H, W, 3) picture of kind ``kind`` (one of `VIS_KINDS`).

    ``labels`` (H, W) 0..24 and ``u``, ``v`` (H, W) in [0, 1] are full-image maps aligned with
    ``image``. ``boxes`` (N, 4) xyxy and ``scores`` (N,) are drawn for "boxes" and, when given,
    on top of "parts".
    """
    fg = np.asarray(labels) > 0
    if kind == "parts":
        out = overlay(grayscale(image), colorize_parts(labels), alpha, mask=fg)
        if boxes is not None and len(boxes):
            out = draw_boxes(out, boxes, scores, width=1)
        return out
    if kind == "contours":
        return draw_isolines(grayscale(image), labels, u, v, levels=10, thickness=max(1, min(image.shape[:2]) // 400))
    if kind == "texture":
        return texture_transfer(image, labels, u, v, atlas)
    if kind in ("u", "v"):
        return overlay(grayscale(image), scalar_to_rgb(u if kind == "u" else v), alpha, mask=fg)
    if kind == "boxes":
        return draw_boxes(image, np.zeros((0, 4)) if boxes is None else boxes, scores)
    raise ValueError(f"unknown visualisation {kind!r}; choose from {', '.join(VIS_KINDS)}")
