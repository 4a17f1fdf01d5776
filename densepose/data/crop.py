"""Zoom-in crops for training: a window cut out of an image, with every person's target following.

Portraits and close-ups (a person larger than the frame, cut by its border) are where a detector
trained on whole bodies fails; a crop around part of a person, enlarged by the model's resize,
turns any training image into such a shot. ``zoom_window`` picks the window, ``crop`` cuts it.

Targets follow the model contract of `densepose.data.transforms`: boxes (G, 4) xyxy in pixels,
optional keypoints (G, 17, 3) and instance masks (G, H, W), and ``dp`` (G entries, None or a dict
of points ``x``, ``y`` in 0..256 box coordinates, ``I``, ``U``, ``V`` and the 256x256 part
``mask``). A person keeps the part of them inside the window: the box is clipped (and tightened
to the part mask where there is one), DensePose points are re-expressed in the new box and those
outside it dropped. A person with nothing left inside the window is removed.
"""
from __future__ import annotations

import math

import torch

from densepose.data.rle import DP_MASK_SIZE

# A clipped box thinner than this (pixels of the crop) is a sliver of a person, not a person.
MIN_BOX_SIDE = 2.0


def crop(image: torch.Tensor, target: dict, window: tuple[int, int, int, int]) -> tuple[torch.Tensor, dict]:
    """Cut ``window`` = (x0, y0, x1, y1) integer pixels out of a (3, H, W) image; targets follow."""
    x0, y0, x1, y1 = window
    h, w = image.shape[-2:]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"crop window {window} is not inside the {w}x{h} image")
    boxes = target["boxes"].reshape(-1, 4).float()
    offset = boxes.new_tensor([x0, y0, x0, y0])
    keep: list[int] = []
    new_boxes: list[torch.Tensor] = []
    new_dp: list[dict | None] = []
    for g, box in enumerate(boxes):
        dp = target["dp"][g] if target.get("dp") is not None else None
        visible = _visible_box(box, dp, window)
        if visible is None:
            continue
        keep.append(g)
        new_boxes.append(visible - offset)
        new_dp.append(None if dp is None else _remap_dp(dp, box, visible))
    out = dict(target)
    out["boxes"] = torch.stack(new_boxes) if new_boxes else boxes.new_zeros((0, 4))
    out["dp"] = new_dp
    index = torch.tensor(keep, dtype=torch.long)
    if target.get("keypoints") is not None:
        kp = target["keypoints"][index].clone()
        kp[..., 0] -= x0
        kp[..., 1] -= y0
        outside = (kp[..., 0] < 0) | (kp[..., 0] >= x1 - x0) | (kp[..., 1] < 0) | (kp[..., 1] >= y1 - y0)
        kp[..., 2][outside] = 0
        out["keypoints"] = kp
    if target.get("masks") is not None:
        out["masks"] = target["masks"][index][:, y0:y1, x0:x1].clone()
    return image[:, y0:y1, x0:x1].clone(), out


def _visible_box(box: torch.Tensor, dp: dict | None, window: tuple[int, int, int, int]) -> torch.Tensor | None:
    """The part of ``box`` inside ``window`` (image pixels), tightened to the part mask; None if empty."""
    x0, y0, x1, y1 = window
    vis = torch.stack([box[0].clamp(x0, x1), box[1].clamp(y0, y1), box[2].clamp(x0, x1), box[3].clamp(y0, y1)])
    if dp is not None and bool(dp["mask"].any()):
        # The person's cells of the 256x256 part mask that lie in the window, in image pixels: a
        # box corner can overlap the window while none of the person does.
        n = DP_MASK_SIZE
        bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
        c0, c1 = (min(max(int(math.floor((v - float(box[0])) / bw * n)), 0), n) for v in (x0, x1))
        r0, r1 = (min(max(int(math.floor((v - float(box[1])) / bh * n)), 0), n) for v in (y0, y1))
        sub = dp["mask"][r0:r1 + 1, c0:c1 + 1]
        if not bool(sub.any()):
            return None
        cols = torch.nonzero(sub.any(0)).flatten()
        rows = torch.nonzero(sub.any(1)).flatten()
        tight = torch.stack([
            box[0] + (c0 + cols[0]) * bw / n, box[1] + (r0 + rows[0]) * bh / n,
            box[0] + (c0 + cols[-1] + 1) * bw / n, box[1] + (r0 + rows[-1] + 1) * bh / n,
        ]).to(vis.dtype)
        vis = torch.cat([torch.maximum(vis[:2], tight[:2]), torch.minimum(vis[2:], tight[2:])])
    if float(vis[2] - vis[0]) < MIN_BOX_SIDE or float(vis[3] - vis[1]) < MIN_BOX_SIDE:
        return None
    return vis


def _remap_dp(dp: dict, box: torch.Tensor, new_box: torch.Tensor) -> dict | None:
    """DensePose annotation of ``box`` re-expressed in ``new_box`` (inside it); None if no point is left."""
    n = float(DP_MASK_SIZE)
    scale = (box[2:] - box[:2]) / (new_box[2:] - new_box[:2])  # (2,): new box units per old box unit
    shift = (box[:2] - new_box[:2]) / (new_box[2:] - new_box[:2]) * n
    x = dp["x"] * scale[0] + shift[0]
    y = dp["y"] * scale[1] + shift[1]
    inside = (x >= 0) & (x <= n) & (y >= 0) & (y <= n)
    if not bool(inside.any()):
        return None
    # Nearest sampling of the old 256x256 mask at the centres of the new box's cells.
    centres = (torch.arange(DP_MASK_SIZE, dtype=torch.float32) + 0.5)
    old_cols = ((centres - shift[0]) / scale[0]).floor().long().clamp(0, DP_MASK_SIZE - 1)
    old_rows = ((centres - shift[1]) / scale[1]).floor().long().clamp(0, DP_MASK_SIZE - 1)
    mask = dp["mask"][old_rows[:, None], old_cols[None, :]]
    return {
        "x": x[inside].float(),
        "y": y[inside].float(),
        "I": dp["I"][inside],
        "U": dp["U"][inside],
        "V": dp["V"][inside],
        "mask": mask.contiguous(),
    }


def zoom_window(
    generator: torch.Generator,
    image_size: tuple[int, int],
    boxes: torch.Tensor,
    fill: tuple[float, float] = (0.6, 2.5),
    min_side: float = 0.4,
) -> tuple[int, int, int, int] | None:
    """A crop that makes one person large, often cut by the border like a portrait.

    A person at least 16 px tall is drawn at random; the crop's height is chosen so that the
    person's box height is ``fill`` (drawn log-uniformly) times it, but never below ``min_side``
    of the image's height (an enlargement of at most 1 / min_side). The crop keeps the image's
    aspect ratio; it aims at the person's head two times in three (top of the crop a little above
    the box), else anywhere along the body, and is centred near the person horizontally.

    Args:
        image_size: (H, W) of the image.
        boxes: (G, 4) xyxy person boxes.
    Returns:
        (x0, y0, x1, y1) integer window, or None when no person is tall enough or the crop
        would be the whole image.
    """
    h, w = image_size
    tall = torch.nonzero(boxes[:, 3] - boxes[:, 1] >= 16).flatten()
    if tall.numel() == 0:
        return None

    def uniform(a: float, b: float) -> float:
        return a + (b - a) * float(torch.rand((), generator=generator))

    box = boxes[tall[int(torch.randint(tall.numel(), (), generator=generator))]].tolist()
    ratio = math.exp(uniform(math.log(fill[0]), math.log(fill[1])))
    ch = min(max((box[3] - box[1]) / ratio, min_side * h), float(h))
    cw = min(ch * w / h, float(w))
    if ch >= h - 1 and cw >= w - 1:
        return None
    if float(torch.rand((), generator=generator)) < 2 / 3:
        top = box[1] - uniform(0.0, 0.25) * ch  # the head near the top, as portraits are framed
    else:
        top = uniform(box[1] - 0.5 * ch, box[3] - 0.5 * ch)
    left = 0.5 * (box[0] + box[2]) - cw * uniform(0.2, 0.8)
    x0 = int(round(min(max(left, 0.0), w - cw)))
    y0 = int(round(min(max(top, 0.0), h - ch)))
    return x0, y0, min(x0 + int(round(cw)), w), min(y0 + int(round(ch)), h)
