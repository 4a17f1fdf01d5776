"""Pseudo-labelled person boxes from a static-camera video by background subtraction.

The background is the per-pixel median of the frames used. A pixel is foreground when its colour
differs enough from the background; cleaned-up connected components of foreground become boxes
when their size and shape are those of one upright pedestrian, or two boxes when a blob is two
pedestrians side by side (`split_pair`). Every other sizeable blob (groups, people cut by the
frame border, partial bodies) is "uncertain" and is painted over with the background in the
written images, so that no unlabelled person remains to teach a detector to miss people.

    python -m densepose.data.pseudo_labels --video vtest.avi --frames 660:795 --out data/vtest_pseudo
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from densepose.cache import atomic_write_bytes
from densepose.errors import UserError
from densepose.io.images import encode_jpeg, write_png
from densepose.io.video import iter_frames

# vtest.avi comes from Debian's opencv-doc package (see shared/data/LICENSES.md).
VTEST_LICENSE = {
    "id": 1,
    "name": "Apache-2.0 AND BSD-3-Clause",
    "url": "",
    "note": "vtest.avi from Debian package opencv-doc 4.6.0+dfsg-12, examples/data (Debian copyright, Files: *)",
}


@dataclass
class BlobRules:
    """Thresholds that turn a colour difference into person boxes (defaults tuned on vtest.avi)."""

    diff_threshold: int = 40  # max over RGB channels of |frame - background| for foreground
    open_size: int = 3  # opening removes isolated noise pixels
    close_height: int = 9  # a tall closing joins head, torso and legs split by background-like clothes
    close_width: int = 3
    min_height: int = 30  # one upright pedestrian in vtest.avi is about 40-155 px tall
    max_height: int = 160
    min_aspect: float = 2.0  # height / width; in vtest.avi blobs at 1.4-2.0 are mostly two people side by side
    max_aspect: float = 4.5
    min_fill: float = 0.3  # blob area / box area; walking legs spread give 0.3-0.4, partial people less
    height_tolerance: float = 0.25  # |height / expected height at that row - 1| (perspective check)
    min_blob_area: int = 30  # smaller blobs are noise, neither person nor uncertain
    border_margin: int = 2  # a blob this close to the frame border may be a cut person
    paint_dilation: int = 4  # painted-out regions grow by this many pixels to cover soft edges
    # A blob of two people side by side is cut at its thinnest column (within the middle
    # split_window of its width) when that column holds at most split_neck of the fuller half's
    # tallest column and both halves pass every one-pedestrian rule; only with a fitted height model.
    split_pairs: bool = True
    split_window: tuple[float, float] = (0.3, 0.7)
    split_neck: float = 0.75


def median_background(frames: Iterable[np.ndarray]) -> np.ndarray:
    """Per-pixel median of uint8 (H, W, 3) frames -> (H, W, 3) uint8."""
    stack = np.stack(list(frames))
    if stack.ndim != 4 or stack.shape[0] == 0:
        raise UserError("median_background needs at least one (H, W, 3) frame")
    return np.median(stack, axis=0).round().astype(np.uint8)


def foreground_mask(frame: np.ndarray, background: np.ndarray, rules: BlobRules) -> np.ndarray:
    """uint8 (H, W, 3) frame and background -> cleaned bool (H, W) foreground mask."""
    diff = np.abs(frame.astype(np.int16) - background.astype(np.int16)).max(axis=2)
    mask = diff > rules.diff_threshold
    mask = ndimage.binary_opening(mask, structure=np.ones((rules.open_size, rules.open_size), bool))
    mask = ndimage.binary_closing(mask, structure=np.ones((rules.close_height, rules.close_width), bool))
    return ndimage.binary_fill_holes(mask)


HeightModel = tuple[float, float]  # expected person height = a * box bottom y + b (ground-plane perspective)


def fit_height_model(boxes: np.ndarray, tolerance: float, min_boxes: int = 10) -> HeightModel | None:
    """Robust line ``height = a * bottom + b`` through xyxy person boxes (N, 4); None when too few.

    With a static camera over flat ground a person's height in pixels is close to linear in the
    row of their feet. Two people stacked one behind the other pass every shape rule but are
    1.3-1.7 times too tall for their row, so the outliers are dropped and the line refitted.
    """
    if len(boxes) < min_boxes:
        return None
    bottoms, heights = boxes[:, 3].astype(float), (boxes[:, 3] - boxes[:, 1]).astype(float)
    design = np.stack([bottoms, np.ones_like(bottoms)], axis=1)
    inliers = np.ones(len(boxes), bool)
    for _ in range(4):
        a, b = np.linalg.lstsq(design[inliers], heights[inliers], rcond=None)[0]
        inliers = np.abs(heights / np.maximum(design @ (a, b), 1.0) - 1) <= tolerance
        if inliers.sum() < min_boxes:
            return None
    return float(a), float(b)


def _is_one_pedestrian(
    box: np.ndarray, blob_mask: np.ndarray, shape: tuple[int, int], rules: BlobRules, height_model: HeightModel | None
) -> bool:
    x0, y0, x1, y1 = box
    height, width = y1 - y0, x1 - x0
    h, w = shape
    m = rules.border_margin
    touches_border = x0 < m or y0 < m or x1 > w - m or y1 > h - m
    expected_height = height if height_model is None else max(height_model[0] * y1 + height_model[1], 1.0)
    return (
        not touches_border
        and rules.min_height <= height <= rules.max_height
        and rules.min_aspect <= height / width <= rules.max_aspect
        and blob_mask.mean() >= rules.min_fill
        and abs(height / expected_height - 1) <= rules.height_tolerance
    )


def find_blobs(frame: np.ndarray, background: np.ndarray, rules: BlobRules) -> tuple[np.ndarray, np.ndarray]:
    """Connected foreground blobs of one uint8 (H, W, 3) frame.

    Returns ``labels`` (H, W) int32 (0 = background, blob ``k`` has label ``k + 1``) and ``boxes``
    (N, 4) int64 xyxy (x1, y1 exclusive); blobs under ``min_blob_area`` pixels are dropped from both.
    """
    labels, count = ndimage.label(foreground_mask(frame, background, rules))
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    kept = np.zeros(count + 1, np.int32)
    boxes = []
    for k, blob in enumerate(ndimage.find_objects(labels), start=1):
        if areas[k] >= rules.min_blob_area:
            boxes.append([blob[1].start, blob[0].start, blob[1].stop, blob[0].stop])
            kept[k] = len(boxes)
    return kept[labels], np.array(boxes, np.int64).reshape(-1, 4)


def classify_blobs(
    labels: np.ndarray, boxes: np.ndarray, rules: BlobRules, height_model: HeightModel | None = None
) -> np.ndarray:
    """(N,) bool: which blobs of :func:`find_blobs` are one pedestrian. Without ``height_model`` the
    height-for-row check is skipped."""
    return np.array([_is_one_pedestrian(box, labels[box[1]:box[3], box[0]:box[2]] == k, labels.shape, rules,
                                        height_model) for k, box in enumerate(boxes, start=1)], bool)


def split_pair(
    box: np.ndarray, blob_mask: np.ndarray, shape: tuple[int, int], rules: BlobRules, height_model: HeightModel
) -> np.ndarray | None:
    """The boxes (2, 4) xyxy of two pedestrians side by side forming one blob, or None.

    ``box``: the blob's xyxy box in the frame; ``blob_mask``: its (h, w) bool pixels inside the box.
    The cut is the column with the fewest blob pixels in the middle of the box (heads and legs of
    two people are apart even where their shoulders touch); each side, tightened to its pixels,
    must be one pedestrian of the height expected at its row.
    """
    columns = blob_mask.sum(0)
    width = len(columns)
    lo, hi = int(width * rules.split_window[0]), int(np.ceil(width * rules.split_window[1]))
    if hi <= lo:
        return None
    window = columns[lo:hi]
    thinnest = np.flatnonzero(window == window.min())
    cut = lo + int(thinnest[len(thinnest) // 2])  # the middle of the thinnest columns
    if columns[cut] > rules.split_neck * min(columns[:cut].max(initial=0), columns[cut:].max(initial=0)):
        return None
    halves = []
    for offset, part in ((0, blob_mask[:, :cut]), (cut, blob_mask[:, cut:])):
        rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
        if not len(rows):
            return None
        half = np.array([box[0] + offset + cols[0], box[1] + rows[0], box[0] + offset + cols[-1] + 1, box[1] + rows[-1] + 1])
        pixels = part[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        if not _is_one_pedestrian(half, pixels, shape, rules, height_model):
            return None
        halves.append(half)
    return np.stack(halves).astype(np.int64)


def split_pairs(
    labels: np.ndarray, boxes: np.ndarray, is_person: np.ndarray, rules: BlobRules, height_model: HeightModel | None
) -> tuple[np.ndarray, np.ndarray]:
    """The blobs that are not one pedestrian but two side by side (`split_pair`).

    Returns (their person boxes (2K, 4) xyxy int64, which of the N blobs were split (N,) bool).
    """
    split = np.zeros(len(boxes), bool)
    found = []
    if rules.split_pairs and height_model is not None:
        for k in np.flatnonzero(~is_person):
            x0, y0, x1, y1 = boxes[k]
            pair = split_pair(boxes[k], labels[y0:y1, x0:x1] == k + 1, labels.shape, rules, height_model)
            if pair is not None:
                split[k] = True
                found.append(pair)
    return (np.concatenate(found) if found else np.zeros((0, 4), np.int64)), split


def label_blobs(
    frame: np.ndarray, background: np.ndarray, rules: BlobRules, height_model: HeightModel | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`find_blobs` and :func:`classify_blobs` of one frame: ``labels``, ``boxes``, ``is_person``."""
    labels, boxes = find_blobs(frame, background, rules)
    return labels, boxes, classify_blobs(labels, boxes, rules, height_model)


def person_boxes(
    frame: np.ndarray,
    background: np.ndarray,
    rules: BlobRules | None = None,
    height_model: HeightModel | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) frame and background -> (person boxes (P, 4), uncertain boxes (Q, 4)), xyxy int64."""
    _, boxes, is_person = label_blobs(frame, background, rules or BlobRules(), height_model)
    return boxes[is_person], boxes[~is_person]


def paint_uncertain(
    frame: np.ndarray, background: np.ndarray, labels: np.ndarray, is_person: np.ndarray, dilation: int
) -> tuple[np.ndarray, np.ndarray]:
    """Replace uncertain blobs (dilated by ``dilation`` px) with background pixels.

    Returns the painted (H, W, 3) uint8 frame and the painted (H, W) bool mask. The dilation never
    reaches into a person blob, so a confident person next to a painted group stays intact.
    """
    uncertain_labels = np.flatnonzero(~is_person) + 1
    mask = np.isin(labels, uncertain_labels)
    if dilation > 0 and mask.any():
        mask = ndimage.binary_dilation(mask, iterations=dilation)
        mask &= ~np.isin(labels, np.flatnonzero(is_person) + 1)
    painted = frame.copy()
    painted[mask] = background[mask]
    return painted, mask


def read_frames(video: str | os.PathLike, frame_indices: Sequence[int]) -> dict[int, np.ndarray]:
    """Decode the wanted frames: {index: (H, W, 3) uint8}. Indices past the end are missing."""
    wanted = set(frame_indices)
    if not wanted:
        raise UserError("the frame range is empty")
    frames = {}
    for index, frame in enumerate(iter_frames(video, max_frames=max(wanted) + 1)):
        if index in wanted:
            frames[index] = frame
    if not frames:
        raise UserError(f"{video}: none of frames {min(wanted)}..{max(wanted)} exist in the video")
    return frames


def write_dataset(
    video: str | os.PathLike,
    frame_indices: Sequence[int],
    out_dir: str | os.PathLike,
    rules: BlobRules | None = None,
    pictures: str | os.PathLike | None = None,
    log=print,
) -> dict:
    """Write ``out_dir/images/*.jpg`` and ``out_dir/annotations.json`` (COCO boxes, category person).

    The background is the median of the given frames only (so frames outside them, e.g. a test set,
    are never looked at). Frames without a confident person are skipped. Returns the COCO dict.
    """
    rules = rules or BlobRules()
    frames = read_frames(video, frame_indices)
    background = median_background(frames.values())
    blobs = {index: find_blobs(frame, background, rules) for index, frame in frames.items()}
    # First pass: shape rules only, to learn the expected person height per image row.
    shaped = np.concatenate([boxes[classify_blobs(labels, boxes, rules)] for labels, boxes in blobs.values()])
    height_model = fit_height_model(shaped, rules.height_tolerance)
    log("expected height: " + ("not fitted (too few people)" if height_model is None
                               else "{:.3f} * bottom_y + {:.1f} px".format(*height_model)))
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, sheet_panels, painted_total, pairs_total = [], [], [], 0, 0
    for index, frame in frames.items():
        labels, boxes = blobs[index]
        is_person = classify_blobs(labels, boxes, rules, height_model)
        pair_boxes, split = split_pairs(labels, boxes, is_person, rules, height_model)
        painted, painted_mask = paint_uncertain(frame, background, labels, is_person | split, rules.paint_dilation)
        people_boxes = np.concatenate([boxes[is_person], pair_boxes])
        painted_count = int((~is_person & ~split).sum())
        log(f"frame {index}: {len(people_boxes)} people kept ({len(pair_boxes)} from {int(split.sum())} blobs of two), "
            f"{painted_count} regions painted out")
        if len(people_boxes) == 0:
            continue
        painted_total += painted_count
        pairs_total += len(pair_boxes)
        image_id = len(images) + 1
        file_name = f"frame_{index:05d}.jpg"
        atomic_write_bytes(out_dir / "images" / file_name, encode_jpeg(painted, quality=95))
        h, w = frame.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h,
                       "frame_index": index, "license": VTEST_LICENSE["id"]})
        for x0, y0, x1, y1 in people_boxes.tolist():
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
        sheet_panels.append((painted, people_boxes, painted_mask))
    coco = {
        "info": {
            "description": "Automatic (unverified) person boxes by background subtraction; regions the rules "
            "could not label (merged groups, partial people) are painted over with the median background.",
            "source": Path(video).name,
            "frames": sorted(frames),
            "labels": "automatic: densepose.data.pseudo_labels",
            "rules": asdict(rules),
            "height_model": height_model,
        },
        "licenses": [VTEST_LICENSE],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }
    atomic_write_bytes(out_dir / "annotations.json", json.dumps(coco, indent=1).encode())
    log(f"wrote {len(images)} of {len(frames)} frames, {len(annotations)} boxes ({pairs_total} from blobs of two), "
        f"{painted_total} regions painted out -> {out_dir}")
    if pictures is not None and sheet_panels:
        write_png(pictures, contact_sheet(sheet_panels))
        log(f"contact sheet -> {pictures}")
    return coco


def contact_sheet(panels: list[tuple[np.ndarray, np.ndarray, np.ndarray]], count: int = 6, columns: int = 3) -> np.ndarray:
    """Evenly chosen (image, boxes (P, 4), painted mask (H, W)) panels -> one (rows*H, columns*W, 3) uint8 picture.

    Boxes are drawn green, painted-out regions outlined red (2 px lines), then each panel is shrunk
    to half size (2 x 2 means) to keep the picture small.
    """
    chosen = [panels[i] for i in np.linspace(0, len(panels) - 1, min(count, len(panels))).round().astype(int)]
    drawn = [_half_size(_draw_panel(*p)) for p in chosen]
    h, w = drawn[0].shape[:2]
    rows = -(-len(drawn) // columns)
    sheet = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, panel in enumerate(drawn):
        r, c = divmod(i, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = panel
    return sheet


def _half_size(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H // 2, W // 2, 3) by 2 x 2 means."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).astype(np.float32)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


def _draw_panel(image: np.ndarray, boxes: np.ndarray, painted_mask: np.ndarray) -> np.ndarray:
    out = image.copy()
    outline = painted_mask & ~ndimage.binary_erosion(painted_mask, iterations=2)
    out[outline] = (255, 0, 0)
    for x0, y0, x1, y1 in boxes.tolist():
        # a 2 px rectangle just outside the box, so the box edge itself stays visible
        x0, y0, x1, y1 = max(x0 - 2, 0), max(y0 - 2, 0), min(x1 + 2, out.shape[1]), min(y1 + 2, out.shape[0])
        out[y0:y0 + 2, x0:x1] = out[y1 - 2:y1, x0:x1] = (0, 255, 0)
        out[y0:y1, x0:x0 + 2] = out[y0:y1, x1 - 2:x1] = (0, 255, 0)
    return out


def parse_frame_range(text: str) -> range:
    """'START:STOP[:STEP]' (STOP exclusive, as in Python) -> range."""
    try:
        parts = [int(p) for p in text.split(":")]
        if len(parts) not in (2, 3) or min(parts[:2]) < 0:
            raise ValueError
        frames = range(*parts)
    except ValueError:
        raise UserError(f"--frames {text!r}: expected START:STOP[:STEP] with non-negative integers") from None
    if len(frames) == 0:
        raise UserError(f"--frames {text!r}: the frame range is empty")
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", required=True, help="static-camera video")
    parser.add_argument("--frames", required=True, help="START:STOP[:STEP], STOP exclusive, e.g. 660:795")
    parser.add_argument("--out", required=True, help="dataset folder to write (images/ + annotations.json)")
    parser.add_argument("--pictures", help="write a contact sheet PNG of ~6 labelled frames here")
    parser.add_argument("--no-split-pairs", action="store_true",
                        help="paint out blobs of two pedestrians side by side instead of boxing each")
    args = parser.parse_args(argv)
    try:
        if not Path(args.video).is_file():
            raise UserError(f"{args.video}: video not found")
        write_dataset(args.video, parse_frame_range(args.frames), args.out, BlobRules(split_pairs=not args.no_split_pairs),
                      pictures=args.pictures)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
