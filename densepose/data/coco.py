"""Load and validate DensePose-COCO annotation files; turn annotations into model targets.

The loader is shared by training (``densepose.data.dataset``) and evaluation (ground truth), so
it is deliberately permissive about *which* fields a person has and strict about their *shape*:

- every person needs ``id``, ``image_id``, ``bbox`` (xywh, 4 finite numbers, w, h >= 0);
- ``keypoints`` (17 x 3 numbers), ``segmentation``, ``iscrowd``, ``area`` are optional;
- DensePose fields are optional as a group: a person with any of ``dp_x``, ``dp_y``, ``dp_I``,
  ``dp_U``, ``dp_V`` must have all five, of equal length, with I in 1..24, U, V in [0, 1] and
  x, y in [0, 256], none NaN; ``dp_masks``, when present, is a list of 14 entries (RLE dict or
  ``[]``). People without DensePose fields are kept (the evaluator ignores them; training uses
  their boxes).

Every violation raises ``UserError`` naming the file and the record.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from densepose.data.rle import DP_MASK_SIZE, decode_dp_masks, decode_mask
from densepose.errors import UserError
from densepose.io.json_files import read_json
from densepose.surface.parts import NUM_CHARTS, NUM_MASK_PARTS

DP_POINT_FIELDS = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")
NUM_KEYPOINTS = 17

#: COCO person keypoints, in order.
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: Keypoint k becomes KEYPOINT_FLIP[k] in a mirrored image (left <-> right).
KEYPOINT_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15], dtype=np.int64)


@dataclass
class CocoDensePose:
    """A validated DensePose-COCO file.

    Attributes:
        path: the JSON file.
        images: image id -> image record (``file_name``, ``height``, ``width``, ...).
        annotations: image id -> list of its person records, in file order (possibly empty).
        categories: the category records.
        image_ids: image ids in file order.
    """

    path: Path
    images: dict[int, dict]
    annotations: dict[int, list[dict]]
    categories: list[dict]
    image_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.image_ids)

    def num_people(self) -> int:
        return sum(len(a) for a in self.annotations.values())


def load_coco(path: str | Path) -> CocoDensePose:
    """Read and validate a DensePose-COCO JSON file; index annotations by image id.

    Raises:
        UserError: missing file, bad JSON, or a malformed image/annotation record.
    """
    path = Path(path)
    return parse_coco(read_json(path, "annotation file"), path)


def parse_coco(data: dict, path: str | Path = "<memory>") -> CocoDensePose:
    """Validate an already-parsed COCO dict (see ``load_coco``)."""
    path = Path(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: top level must be a JSON object with images/annotations/categories")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{path}: missing or non-list '{key}'")
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        raise UserError(f"{path}: 'categories' must be a list")

    images: dict[int, dict] = {}
    image_ids: list[int] = []
    for k, img in enumerate(data["images"]):
        where = f"{path}: image #{k}"
        if not isinstance(img, dict):
            raise UserError(f"{where}: must be an object")
        for name in ("id", "file_name", "height", "width"):
            if name not in img:
                raise UserError(f"{where} (id {img.get('id')}): missing '{name}'")
        if not _is_int(img["id"]):
            raise UserError(f"{where}: 'id' must be an integer, got {img['id']!r}")
        if not (_is_int(img["height"]) and _is_int(img["width"]) and img["height"] > 0 and img["width"] > 0):
            raise UserError(f"{where} (id {img['id']}): height/width must be positive integers")
        if img["id"] in images:
            raise UserError(f"{where}: duplicate image id {img['id']}")
        images[img["id"]] = img
        image_ids.append(img["id"])

    annotations: dict[int, list[dict]] = defaultdict(list)
    seen_ids: set = set()
    for k, ann in enumerate(data["annotations"]):
        where = f"{path}: annotation #{k} (id {ann.get('id') if isinstance(ann, dict) else None})"
        validate_annotation(ann, where)
        if ann["image_id"] not in images:
            raise UserError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if ann["id"] in seen_ids:
            raise UserError(f"{where}: duplicate annotation id")
        seen_ids.add(ann["id"])
        annotations[ann["image_id"]].append(ann)
    return CocoDensePose(path, images, {i: annotations.get(i, []) for i in image_ids}, categories, image_ids)


def has_densepose(ann: dict) -> bool:
    """True when the person carries DensePose points (``dp_x`` and friends)."""
    return "dp_x" in ann


def validate_annotation(ann: dict, where: str) -> None:
    """Check one person record; raise ``UserError`` starting with ``where`` on the first problem."""
    if not isinstance(ann, dict):
        raise UserError(f"{where}: must be an object")
    for name in ("id", "image_id", "bbox"):
        if name not in ann:
            raise UserError(f"{where}: missing '{name}'")
    box = _floats(ann["bbox"], where, "bbox")
    if len(box) != 4 or not np.isfinite(box).all() or box[2] < 0 or box[3] < 0:
        raise UserError(f"{where}: bbox must be 4 finite numbers [x, y, w, h] with w, h >= 0")
    if "keypoints" in ann and ann["keypoints"]:
        kp = _floats(ann["keypoints"], where, "keypoints")
        if len(kp) != 3 * NUM_KEYPOINTS or not np.isfinite(kp).all():
            raise UserError(f"{where}: keypoints must be {3 * NUM_KEYPOINTS} finite numbers, got {len(kp)}")
    present = [f for f in DP_POINT_FIELDS if f in ann]
    if present:
        missing = [f for f in DP_POINT_FIELDS if f not in ann]
        if missing:
            raise UserError(f"{where}: has {', '.join(present)} but not {', '.join(missing)}")
        arrays = {f: _floats(ann[f], where, f) for f in DP_POINT_FIELDS}
        n = len(arrays["dp_x"])
        for f, a in arrays.items():
            if len(a) != n:
                raise UserError(f"{where}: {f} has {len(a)} values but dp_x has {n}")
            if np.isnan(a).any() or np.isinf(a).any():
                raise UserError(f"{where}: {f} contains NaN or infinity")
        i = arrays["dp_I"]
        if n and (np.any(i != np.round(i)) or i.min() < 1 or i.max() > NUM_CHARTS):
            raise UserError(f"{where}: dp_I must be integers in 1..{NUM_CHARTS}, got {i.min():g}..{i.max():g}")
        for f in ("dp_U", "dp_V"):
            if n and (arrays[f].min() < 0 or arrays[f].max() > 1):
                raise UserError(f"{where}: {f} must be in [0, 1], got {arrays[f].min():g}..{arrays[f].max():g}")
        for f in ("dp_x", "dp_y"):
            if n and (arrays[f].min() < 0 or arrays[f].max() > DP_MASK_SIZE):
                raise UserError(f"{where}: {f} must be in [0, {DP_MASK_SIZE}], got {arrays[f].min():g}..{arrays[f].max():g}")
    if "dp_masks" in ann:
        masks = ann["dp_masks"]
        if not isinstance(masks, list) or len(masks) != NUM_MASK_PARTS:
            n = len(masks) if isinstance(masks, list) else type(masks).__name__
            raise UserError(f"{where}: dp_masks must be a list of {NUM_MASK_PARTS} entries, got {n}")
        for j, m in enumerate(masks):
            if m and not (isinstance(m, dict) and "counts" in m and "size" in m):
                raise UserError(f"{where}: dp_masks[{j}] must be an RLE dict with counts/size or []")
            if m and list(m["size"]) != [DP_MASK_SIZE, DP_MASK_SIZE]:
                raise UserError(f"{where}: dp_masks[{j}] size must be [256, 256], got {m['size']}")


def annotation_to_target(ann: dict, height: int, width: int, with_mask: bool = False) -> dict:
    """One person record -> its part of the model target (ARCHITECTURE.md, "Model I/O").

    Returns a dict with
        ``box`` (4,) float32 xyxy pixels,
        ``keypoints`` (17, 3) float32 (x, y, v) or None,
        ``mask`` (H, W) uint8 instance mask from ``segmentation`` or None (only if ``with_mask``),
        ``dp`` None or a dict: ``x``, ``y`` (P,) float32 in 0..256 box coordinates, ``I`` (P,)
        int64 1..24, ``U``, ``V`` (P,) float32, ``mask`` (256, 256) uint8 labels 0..14 (zeros when
        the record has no ``dp_masks``).
    """
    x, y, w, h = (float(v) for v in ann["bbox"])
    box = torch.tensor([x, y, x + w, y + h], dtype=torch.float32)
    keypoints = None
    if ann.get("keypoints"):
        keypoints = torch.tensor(ann["keypoints"], dtype=torch.float32).reshape(NUM_KEYPOINTS, 3)
    mask = None
    if with_mask and ann.get("segmentation"):
        mask = torch.from_numpy(decode_mask(ann["segmentation"], height, width))
    dp = None
    if has_densepose(ann):
        labels = (
            decode_dp_masks(ann["dp_masks"]) if ann.get("dp_masks")
            else np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), dtype=np.uint8)
        )
        dp = {
            "x": torch.tensor(ann["dp_x"], dtype=torch.float32),
            "y": torch.tensor(ann["dp_y"], dtype=torch.float32),
            "I": torch.tensor(ann["dp_I"], dtype=torch.float64).round().long(),
            "U": torch.tensor(ann["dp_U"], dtype=torch.float32),
            "V": torch.tensor(ann["dp_V"], dtype=torch.float32),
            "mask": torch.from_numpy(labels),
        }
    return {"box": box, "keypoints": keypoints, "mask": mask, "dp": dp}


def image_target(anns: list[dict], height: int, width: int, with_masks: bool = False) -> dict:
    """All people of one image -> the per-image target dict of the model contract.

    Crowd regions (``iscrowd`` = 1) are left out, as in the reference training code.

    Returns ``boxes`` (G, 4) float32 xyxy, ``keypoints`` (G, 17, 3) (when any person has keypoints;
    the others get v = 0), ``masks`` (G, H, W) uint8 (only if ``with_masks`` and every person has a
    segmentation), ``dp`` list of G entries (dict or None).
    """
    people = [annotation_to_target(a, height, width, with_masks) for a in anns if not a.get("iscrowd", 0)]
    target: dict = {
        "boxes": torch.stack([p["box"] for p in people]) if people else torch.zeros((0, 4)),
        "dp": [p["dp"] for p in people],
    }
    if any(p["keypoints"] is not None for p in people):
        # A person without keypoints gets v = 0 everywhere, which every keypoint loss ignores.
        empty = torch.zeros((NUM_KEYPOINTS, 3))
        target["keypoints"] = torch.stack([empty if p["keypoints"] is None else p["keypoints"] for p in people])
    if with_masks:
        if people and all(p["mask"] is not None for p in people):
            target["masks"] = torch.stack([p["mask"] for p in people])
        elif not people:
            target["masks"] = torch.zeros((0, height, width), dtype=torch.uint8)
    return target


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _floats(values, where: str, name: str) -> np.ndarray:
    if not isinstance(values, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) or v is None for v in values
    ):
        raise UserError(f"{where}: {name} must be a list of numbers")
    # JSON has no NaN literal, but Python's json writes/reads NaN; None is what other writers emit.
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
