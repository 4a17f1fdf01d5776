"""Pictures of a full-image IUV result: one kind (`visualize`) or several layered in one image with a
colour legend (`render_layers`, what `densepose predict --vis parts,contours,boxes` writes)."""
from __future__ import annotations

import numpy as np

from densepose.vis.colors import colorize_parts, scalar_to_rgb
from densepose.vis.draw import draw_boxes, draw_isolines, grayscale, overlay
from densepose.vis.legend import draw_legend, isoline_entries, part_entries, scalar_entry
from densepose.vis.texture import texture_transfer

#: parts: part colours over a gray image; contours: U/V isolines and part boundaries;
#: texture: the texture atlas pasted on the body; u, v: one coordinate as a colour ramp;
#: boxes: detections with scores on the original image.
VIS_KINDS = ("parts", "contours", "texture", "u", "v", "boxes")
#: Box colour of `draw_boxes` as used here (named in the legend).
BOX_COLOR = (0, 255, 0)


def parse_kinds(spec: str) -> tuple[str, ...]:
    """``"parts,contours,boxes"`` -> ("parts", "contours", "boxes"); ValueError names an unknown kind."""
    kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
    for kind in kinds:
        if kind not in VIS_KINDS:
            raise ValueError(f"unknown visualisation {kind!r}; choose from {', '.join(VIS_KINDS)}")
    if not kinds:
        raise ValueError(f"no visualisation given; choose from {', '.join(VIS_KINDS)}")
    return kinds


def render_layers(
    image: np.ndarray,
    labels: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    kinds: tuple[str, ...],
    boxes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    atlas: np.ndarray | None = None,
    alpha: float = 0.7,
    legend: str | None = "present",
) -> np.ndarray:
    """One RGB uint8 picture with every kind of ``kinds`` layered, bottom to top: texture, parts,
    u, v, contours, boxes; a colour legend panel is appended on the right.

    Args: as `visualize`; ``legend``: "present" (the parts found in ``labels``), "all" (all 24
    parts, a fixed size, for video frames) or None (no panel). The picture is the image's size plus
    the legend's width.
    """
    for kind in kinds:
        if kind not in VIS_KINDS:
            raise ValueError(f"unknown visualisation {kind!r}; choose from {', '.join(VIS_KINDS)}")
    fg = np.asarray(labels) > 0
    if "texture" in kinds:
        out = texture_transfer(image, labels, u, v, atlas)
    elif {"parts", "contours", "u", "v"} & set(kinds):
        out = grayscale(image)
    else:
        out = np.asarray(image)
    entries = []
    if "parts" in kinds:
        out = overlay(out, colorize_parts(labels), alpha, mask=fg)
        entries += part_entries(None if legend == "all" else labels)
    for name, values in (("u", u), ("v", v)):
        if name in kinds:
            out = overlay(out, scalar_to_rgb(values), alpha, mask=fg)
            entries.append(scalar_entry(name.upper()))
    if "contours" in kinds:
        out = draw_isolines(out, labels, u, v, levels=10, thickness=max(1, min(out.shape[:2]) // 400))
        entries += isoline_entries(10)
    if "boxes" in kinds:
        out = draw_boxes(out, np.zeros((0, 4)) if boxes is None else boxes, scores, color=BOX_COLOR)
        entries.append(("swatch", "person box, score", np.array(BOX_COLOR, np.uint8)))
    return draw_legend(out, entries) if legend else np.ascontiguousarray(out)


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
