"""COCO run-length encoding, and the 14-part ``dp_masks`` of DensePose-COCO.

RLE goes through pycocotools (a maintained library, not a rewrite). ``counts`` are kept as str
so that the dicts drop straight into JSON.
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from densepose.surface.parts import NUM_MASK_PARTS

DP_MASK_SIZE = 256


def encode_mask(mask: np.ndarray) -> dict:
    """Binary mask (H, W) -> COCO RLE dict ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_mask(rle: dict | list, height: int | None = None, width: int | None = None) -> np.ndarray:
    """COCO RLE (compressed or uncompressed) or polygons -> binary mask (H, W) uint8.

    Polygons need ``height`` and ``width``; RLE dicts carry their own size.
    """
    if isinstance(rle, list):  # polygons
        if height is None or width is None:
            raise ValueError("decoding polygons needs the image height and width")
        rles = mask_utils.frPyObjects(rle, height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(np.uint8)
    if isinstance(rle.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(np.uint8)


def encode_dp_masks(labels: np.ndarray) -> list:
    """Part label map (256, 256) with values 0..14 -> the 14-entry ``dp_masks`` list.

    Absent parts are ``[]``, as in DensePose-COCO.
    """
    if labels.shape != (DP_MASK_SIZE, DP_MASK_SIZE):
        raise ValueError(f"dp_masks label map must be 256x256, got {labels.shape}")
    out = []
    for k in range(1, NUM_MASK_PARTS + 1):
        part = labels == k
        out.append(encode_mask(part) if part.any() else [])
    return out


def decode_dp_masks(dp_masks: list) -> np.ndarray:
    """The 14-entry ``dp_masks`` list -> part label map (256, 256) uint8, values 0..14.

    Later parts overwrite earlier ones where they overlap, as the reference loaders do.
    """
    if not isinstance(dp_masks, list) or len(dp_masks) != NUM_MASK_PARTS:
        raise ValueError(f"dp_masks must be a list of {NUM_MASK_PARTS} entries")
    labels = np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), dtype=np.uint8)
    for k, rle in enumerate(dp_masks, start=1):
        if rle:
            labels[decode_mask(rle) > 0] = k
    return labels
