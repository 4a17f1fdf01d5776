"""Where a model's silhouettes lose mask IoU, on rendered people.

    python benchmarks/mask_errors.py [--model PATH] [--data DIR] [--num 60] [--seed 999] [--pictures DIR]
        [--json OUT.json]

GPSm multiplies each person's GPS by the IoU of their silhouette, as the evaluator measures it:
the prediction's body (I > 0) against the union of the 14 ``dp_masks`` zoomed to the annotated
box (`densepose.evaluation.mask_iou`). On a rendered set (``--data``: a `densepose synth` folder;
without it, ``--num`` images are rendered with ``--seed`` into a temporary folder), the model's
detections (score >= 0.3) are matched to the annotated people as COCO matches them (by score, each
to the free person of highest box IoU >= 0.5), for each person found who has ``dp_masks``,
every pixel the two silhouettes disagree on falls in one kind (`error_kinds`), as a share of
the person's true area:

* extra, on another person: body drawn on another annotated person (their ``segmentation``);
* extra, near: within ``NEAR`` pixels of the true silhouette (an outline drawn too wide);
* extra, far: further out, on nobody (props in front of the person, background);
* missed, near / missed, far: the person's body left out, within ``NEAR`` pixels of their
  outline or deeper inside.

The same by the person's height in pixels (``HEIGHTS``). ``--pictures DIR`` writes the people with
the most extra or missed pixels (``--worst``): the image | the overlay (green: both, red: extra,
blue: missed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Pixels this close to a silhouette's outline count as "near" it.
NEAR = 3.0
#: Height ranges (annotated box, pixels) of the per-height rows.
HEIGHTS = ((0, 64), (64, 128), (128, 256), (256, 100_000))
#: The kinds of `error_kinds`.
KINDS = ("extra, on another person", "extra, near", "extra, far", "missed, near", "missed, far")


def true_silhouette(ann: dict, height: int, width: int) -> np.ndarray:
    """The evaluator's ground-truth mask of ``ann``: its ``dp_masks`` union zoomed to the integer
    box and pasted into a (height, width) bool image."""
    from densepose.data.rle import decode_dp_masks
    from densepose.evaluation.masks import zoom_mask

    x, y, w, h = ann["bbox"]
    x0, y0, x1, y1 = int(x), int(y), int(x + w), int(y + h)
    out = np.zeros((height, width), dtype=bool)
    if x1 <= x0 or y1 <= y0:
        return out
    zoomed = zoom_mask(decode_dp_masks(ann["dp_masks"]) > 0, y1 - y0, x1 - x0)
    ys, xs = slice(max(y0, 0), min(y1, height)), slice(max(x0, 0), min(x1, width))
    out[ys, xs] = zoomed[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return out


def error_kinds(seen: np.ndarray, truth: np.ndarray, others: np.ndarray) -> dict[str, int]:
    """(H, W) bool predicted and true silhouettes and the other people's pixels -> pixels of each of ``KINDS``."""
    from scipy.ndimage import distance_transform_edt

    extra, missed = seen & ~truth, truth & ~seen
    outside, inside = distance_transform_edt(~truth), distance_transform_edt(truth)
    on_other = extra & others
    return {
        KINDS[0]: int(on_other.sum()),
        KINDS[1]: int((extra & ~others & (outside <= NEAR)).sum()),
        KINDS[2]: int((extra & ~others & (outside > NEAR)).sum()),
        KINDS[3]: int((missed & (inside <= NEAR)).sum()),
        KINDS[4]: int((missed & (inside > NEAR)).sum()),
    }


def overlay(image: np.ndarray, seen: np.ndarray, truth: np.ndarray, box: list[float]) -> np.ndarray:
    """The image and its overlay side by side (green: both, red: extra, blue: missed), cropped
    to ``box`` (xywh) and 10 pixels around it -> uint8 (h, 2 w, 3)."""
    out = image.astype(np.float32)
    for where, colour in ((seen & truth, (0, 255, 0)), (seen & ~truth, (255, 0, 0)), (truth & ~seen, (0, 0, 255))):
        out[where] = out[where] * 0.4 + np.array(colour, dtype=np.float32) * 0.6
    x, y, w, h = box
    ys = slice(max(int(y) - 10, 0), int(y + h) + 10)
    xs = slice(max(int(x) - 10, 0), int(x + w) + 10)
    return np.concatenate([image[ys, xs], out[ys, xs].astype(np.uint8)], axis=1)


def score(predictor, data: Path, worst: int = 0) -> tuple[dict, list[tuple[float, str, np.ndarray]]]:
    """Error kinds over the rendered set ``data`` -> (the summary of the module doc, the ``worst``
    people's (share of wrong pixels, name, overlay picture))."""
    from pycocotools import mask as mask_utils

    from orientation import predicted_renders
    from real_photos import match_rows

    rows: list[tuple[float, float, dict[str, int]]] = []  # (height, true area, kinds) per person
    pictures: list[tuple[float, str, np.ndarray]] = []
    ious = []
    for im, anns, image, result, det in predicted_renders(predictor, data, lambda a: a.get("dp_masks") and
                                                         not a.get("iscrowd")):
        anns = [a for a in anns if not a.get("iscrowd")]
        h, w = image.shape[:2]
        boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in anns)], dtype=np.float64)
        person, _ = match_rows(det, np.array([p.score for p in result]), boxes, np.zeros((0, 4)))
        people = [mask_utils.decode(a["segmentation"]).astype(bool) if isinstance(a.get("segmentation"), dict)
                  else np.zeros((h, w), dtype=bool) for a in anns]
        for k, j in enumerate(person.tolist()):
            a = anns[j] if j >= 0 else None
            if a is None or not a.get("dp_masks"):
                continue
            truth = true_silhouette(a, h, w)
            area = int(truth.sum())
            if area == 0:
                continue
            seen = result[k].iuv_image(h, w)[..., 0] > 0
            others = np.zeros((h, w), dtype=bool)
            for i, mask in enumerate(people):
                if i != j:
                    others |= mask
            kinds = error_kinds(seen, truth, others)
            rows.append((a["bbox"][3], area, kinds))
            ious.append((seen & truth).sum() / max((seen | truth).sum(), 1))
            if worst:
                wrong = sum(kinds.values()) / area
                name = f"{Path(im['file_name']).stem}_{a['id']}"
                pictures.append((wrong, name, overlay(image, seen, truth, a["bbox"])))
                pictures = sorted(pictures, key=lambda p: -p[0])[:worst]
    return summarise(rows, ious), pictures


def summarise(rows: list[tuple[float, float, dict[str, int]]], ious: list[float]) -> dict:
    """Per person (height, true area, error kinds) and mask IoU -> mean shares of the true area,
    overall and by height."""
    def shares(sel: list[tuple[float, float, dict[str, int]]]) -> dict[str, float]:
        return {k: float(np.mean([kinds[k] / area for _, area, kinds in sel])) if sel else 0.0 for k in KINDS}
    by_height = {}
    for lo, hi in HEIGHTS:
        sel = [r for r in rows if lo <= r[0] < hi]
        by_height[f"{lo}-{hi}"] = {"people": len(sel), **shares(sel)}
    return {"people": len(rows), "mask_iou": float(np.mean(ious)) if ious else 0.0, **shares(rows),
            "by_height": by_height}


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from orientation import add_render_set_arguments, rendered_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_render_set_arguments(ap)
    ap.add_argument("--pictures", default=None, help="write the worst people's overlays here")
    ap.add_argument("--worst", type=int, default=12, help="how many people --pictures writes")
    ap.add_argument("--json", default=None, help="write the summary here")
    args = ap.parse_args(argv)
    with rendered_set(args) as found:
        if found is None:
            return 1
        summary, pictures = score(found[1], found[0], args.worst if args.pictures else 0)
    if args.json:  # written first: the summary is kept whatever happens to the pictures
        Path(args.json).write_text(json.dumps(summary, indent=1))
    print(f"model {args.model or 'bundled'}; {summary['people']} people; mean mask IoU {summary['mask_iou']:.3f}")
    print("shares of the true area: " + "; ".join(f"{k} {summary[k]:.3f}" for k in KINDS))
    for name, row in summary["by_height"].items():
        print(f"  height {name:>10s} px, {row['people']:4d} people: " + "; ".join(f"{row[k]:.3f}" for k in KINDS))
    if args.pictures:
        out = Path(args.pictures)
        out.mkdir(parents=True, exist_ok=True)
        for rank, (_, name, picture) in enumerate(pictures):
            Image.fromarray(picture).save(out / f"{rank:02d}_{name}.png")
        print(f"{len(pictures)} pictures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
