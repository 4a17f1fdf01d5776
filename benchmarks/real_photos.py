"""A model on real photographs: person recall and false positives, and part agreement on the skier.

    python benchmarks/real_photos.py [--model PATH] [--min-score S] [--size S [S ...]] [--precision P] [--json OUT.json]
                                     [--pictures DIR] [--grey] [--scale F] [--flip] [--zoom SIZE] [--details]

Images: the labelled set of ``tests/data/real_photos/annotations.json`` (6 photos and 20 frames of
``vtest.avi``; person boxes drawn by hand, ``iscrowd`` = ignore regions), read from the shared
data folder (``$DENSEPOSE_SHARED/data``, default ``../shared/data`` next to the repository).

* recall: labelled people matched by a detection with score >= ``--min-score`` (default: the
  model's ``default_min_score``) at box IoU >= 0.5
  (greedy, highest score first); false positives: such detections that match no labelled person
  and lie mostly (>= 50 % of their area) outside every ignore region.
* skier: on COCO image 785, the coarse-part agreement with the official DensePose model
  (``data/official/example_results.json``, its best detection): both results are pasted into the
  image, charts reduced to the 14 coarse parts of ``dp_masks`` (``CHART_TO_MASK_PART``; left and
  right are the person's own in both charts, so a left/right swap counts as an error), and the IoU
  averaged over the parts present in either map (background excluded).
* skier charts: of the pixels both call body, the share where our chart is the official one, and
  where it is the official chart's turned-around partner (``CHART_TURN``: the person read as facing
  away; `benchmarks/orientation.py` measures the same on renders).
* ``--pictures DIR``: one PNG per photo (and for two of the frames): photo | parts and boxes | U
  and V isolines, 180 pixels high (MODELS.md shows them).
* ``--grey``: every image (and the skier) turned greyscale (its luma in all three channels) before
  the model sees it, as a black-and-white photo or an infrared camera would give it.
* ``--details``: under each image, its false people (score, box) and the people it missed (box,
  best IoU of any detection kept), all in the image's pixels.
* ``--scale F``: every image (and the skier) resized by F (bilinear, antialiased when shrinking:
  the model's own resize) before the model sees it, as a smaller or larger copy of the same photo
  would be; results are mapped back to the original pixels and scored against the same labels.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "tests" / "data" / "real_photos" / "annotations.json"
SKIER_IMAGE_ID = 785
SKIER_FILE = "photos/coco_000000000785.jpg"


def shared_data_dir() -> Path:
    return Path(os.environ.get("DENSEPOSE_SHARED", REPO.parent / "shared")) / "data"


@dataclass
class ImageScore:
    file_name: str
    frame_index: int | None
    people: int  # labelled (not ignored)
    found: int
    false_positives: int
    detections: int  # at score >= min_score
    false_people: list[tuple[float, list[int]]]  # (score, xyxy box) of each false positive
    missed: list[tuple[list[int], float]]  # (xyxy box, best IoU of a detection) of each person not found


def load_set(data_dir: Path, annotations: Path = ANNOTATIONS) -> list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    """[(image record, RGB uint8 (H, W, 3), people xyxy (P, 4), ignore xyxy (Q, 4))] in file order."""
    from densepose.io.images import load_image
    from densepose.io.video import iter_frames

    coco = json.loads(annotations.read_text())
    frames_wanted: dict[str, set[int]] = {}
    for im in coco["images"]:
        if "frame_index" in im:
            frames_wanted.setdefault(im["file_name"], set()).add(im["frame_index"])
    frames: dict[tuple[str, int], np.ndarray] = {}
    for name, wanted in frames_wanted.items():
        for k, frame in enumerate(iter_frames(data_dir / name, max_frames=max(wanted) + 1)):
            if k in wanted:
                frames[(name, k)] = frame
    out = []
    for im in coco["images"]:
        if "frame_index" in im:
            pixels = frames[(im["file_name"], im["frame_index"])]
        else:
            pixels = load_image(data_dir / im["file_name"])[0]
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        people = xywh_to_xyxy([a["bbox"] for a in anns if not a["iscrowd"]])
        ignore = xywh_to_xyxy([a["bbox"] for a in anns if a["iscrowd"]])
        out.append((im, pixels, people, ignore))
    return out


def xywh_to_xyxy(boxes: list[list[float]]) -> np.ndarray:
    """COCO xywh boxes -> (N, 4) xyxy."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray, b_is_region: bool = False) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU (the evaluator's `box_iou_xywh`); with ``b_is_region``
    the share of each box of ``a`` inside each of ``b`` (COCO's crowd rule)."""
    from densepose.modeling.ops.boxes import box_iou_xywh

    def xywh(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:, :2], x[:, 2:] - x[:, :2]], axis=1)

    return box_iou_xywh(xywh(a)[:, None], xywh(b)[None], np.ones((1, len(b)), bool) if b_is_region else None)


def match_rows(det: np.ndarray, scores: np.ndarray, people: np.ndarray, ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The matching of detections ``det`` (N, 4) with ``scores`` (N,) to labelled ``people`` (P, 4)
    -> ((N,) int the person each detection found, -1 for none; (N,) bool false positives)."""
    order = np.argsort(-scores, kind="stable")
    iou = box_iou(det[order], people) if len(people) else np.zeros((len(det), 0))
    covered = box_iou(det[order], ignore, b_is_region=True).max(1) if len(ignore) else np.zeros(len(det))
    taken = np.zeros(len(people), dtype=bool)
    person = np.full(len(det), -1, dtype=np.int64)
    false = np.zeros(len(det), dtype=bool)
    for i, row in enumerate(order):
        cand = np.where(~taken & (iou[i] >= 0.5))[0] if len(people) else []
        if len(cand):
            person[row] = cand[np.argmax(iou[i, cand])]
            taken[person[row]] = True
        elif covered[i] < 0.5:
            false[row] = True
    return person, false


def match_people(det: np.ndarray, scores: np.ndarray, people: np.ndarray, ignore: np.ndarray) -> tuple[int, int]:
    """(people found, false positives) for detections ``det`` (N, 4) with ``scores`` (N,) (`match_rows`)."""
    person, false = match_rows(det, scores, people, ignore)
    return int((person >= 0).sum()), int(false.sum())


def coarse_part_miou(ours: np.ndarray, official: np.ndarray) -> float:
    """Mean IoU of the 14 coarse parts between two (H, W) chart-label maps (0..24)."""
    from densepose.surface.parts import CHART_TO_MASK_PART, NUM_MASK_PARTS

    a, b = CHART_TO_MASK_PART[ours], CHART_TO_MASK_PART[official]
    ious = []
    for part in range(1, NUM_MASK_PARTS + 1):
        inter = np.logical_and(a == part, b == part).sum()
        union = np.logical_or(a == part, b == part).sum()
        if union:
            ious.append(inter / union)
    return float(np.mean(ious)) if ious else 0.0


def chart_agreement(ours: np.ndarray, official: np.ndarray) -> tuple[float, float]:
    """Of the pixels both maps label as body: (share with the same chart, share with the official
    chart's turned-around partner, ``CHART_TURN``: the person read as facing the other way)."""
    from densepose.surface.parts import CHART_TURN

    both = (ours > 0) & (official > 0)
    n = max(int(both.sum()), 1)
    return float((ours[both] == official[both]).sum() / n), float((ours[both] == CHART_TURN[official[both]]).sum() / n)


def official_skier_labels(data_dir: Path, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(chart labels (H, W) of the official model's best detection on image 785, its box xyxy)."""
    from densepose.data.uv_encoding import decode_uv_data

    records = [r for r in json.loads((data_dir / "official" / "example_results.json").read_text())
               if r["image_id"] == SKIER_IMAGE_ID]
    best = max(records, key=lambda r: r["score"])
    iuv = decode_uv_data(best["uv_data"], best["uv_shape"])
    x, y, w, h = best["bbox"]
    labels = np.zeros((height, width), dtype=np.int64)
    x0, y0 = int(x), int(y)
    part = iuv[0][: height - y0, : width - x0]
    labels[y0: y0 + part.shape[0], x0: x0 + part.shape[1]] = part
    return labels, np.array([x, y, x + w, y + h])


def _seen(pixels: np.ndarray, grey: bool, scale: float = 1.0) -> np.ndarray:
    """The image the model is shown: ``pixels`` (H, W, 3) uint8, or their greyscale version, resized by ``scale``."""
    import torch

    from densepose.modeling.transform import resize_by
    from densepose.vis.draw import grayscale

    image = grayscale(pixels) if grey else pixels
    if scale == 1.0:
        return image
    resized = resize_by(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float(), scale)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _predict(predictor, pixels: np.ndarray, grey: bool, scale: float):
    """``predictor`` on the image as seen (:func:`_seen`), its results in the pixels of ``pixels``."""
    return predictor.predict_batch([_seen(pixels, grey, scale)], frame_sizes=[pixels.shape[:2]])[0]


def skier_agreement(predictor, data_dir: Path, grey: bool = False, scale: float = 1.0) -> dict[str, float]:
    """Our best match of the official skier against the official model's: ``skier_coarse_miou``
    (:func:`coarse_part_miou`), ``skier_same_chart`` and ``skier_turned_chart``
    (:func:`chart_agreement`); all 0 when nobody is found."""
    from densepose.io.images import load_image

    image = load_image(data_dir / SKIER_FILE)[0]
    h, w = image.shape[:2]
    official, box = official_skier_labels(data_dir, h, w)
    people = _predict(predictor, image, grey, scale)
    if not len(people):
        return {"skier_coarse_miou": 0.0, "skier_same_chart": 0.0, "skier_turned_chart": 0.0}
    ious = box_iou(np.stack([np.asarray(p.box, dtype=np.float64) for p in people]), box[None])[:, 0]
    ours = people[int(np.argmax(ious))].iuv_image(h, w)[..., 0].astype(np.int64)
    same, turned = chart_agreement(ours, official)
    return {"skier_coarse_miou": coarse_part_miou(ours, official), "skier_same_chart": same, "skier_turned_chart": turned}


PICTURE_FRAMES = (84, 532)  # vtest frames drawn besides the photos
PICTURE_HEIGHT = 180
PICTURE_GAP = 4  # white pixels between the panels (benchmarks/compare_pictures.py splits them there)


def picture(result) -> np.ndarray:
    """RGB uint8 strip: photo | parts and boxes | U, V isolines; each panel PICTURE_HEIGHT high."""
    from PIL import Image

    panels = [result.image, result.plot("parts,boxes", legend=False), result.plot("contours", legend=False)]
    h, w = result.image.shape[:2]
    size = (max(1, round(w * PICTURE_HEIGHT / h)), PICTURE_HEIGHT)
    small = [np.asarray(Image.fromarray(p).resize(size, Image.BILINEAR)) for p in panels]
    gap = np.full((PICTURE_HEIGHT, PICTURE_GAP, 3), 255, np.uint8)
    return np.concatenate([small[0], gap, small[1], gap, small[2]], axis=1)


def picture_name(im: dict) -> str:
    stem = Path(im["file_name"]).stem
    return f"{stem}_{im['frame_index']:04d}" if "frame_index" in im else stem


def score_model(predictor, data_dir: Path, pictures: Path | None = None,
                grey: bool = False, scale: float = 1.0) -> tuple[list[ImageScore], dict[str, float]]:
    """Per-image scores on the labelled set and the skier agreement (:func:`skier_agreement`);
    optionally writes pictures; ``grey``: on the greyscale images; ``scale``: on resized copies."""
    from PIL import Image

    scores = []
    for im, pixels, people, ignore in load_set(data_dir):
        result = _predict(predictor, pixels, grey, scale)
        if pictures is not None and im.get("frame_index", PICTURE_FRAMES[0]) in PICTURE_FRAMES:
            pictures.mkdir(parents=True, exist_ok=True)
            # A 128-colour palette keeps the pictures of the docs small (~40-60 kB each).
            Image.fromarray(picture(result)).quantize(128).save(pictures / f"real_{picture_name(im)}.png", optimize=True)
        det = np.array([np.asarray(p.box, dtype=np.float64) for p in result]).reshape(-1, 4)
        conf = np.array([p.score for p in result], dtype=np.float64)
        person, false = match_rows(det, conf, people, ignore)
        best = box_iou(people, det).max(1) if len(det) else np.zeros(len(people))
        missed = [(_pixels(people[k]), round(float(best[k]), 2)) for k in range(len(people)) if k not in person]
        false_people = [(round(float(conf[i]), 3), _pixels(det[i])) for i in np.flatnonzero(false)]
        scores.append(ImageScore(im["file_name"], im.get("frame_index"), len(people), int((person >= 0).sum()),
                                 int(false.sum()), len(det), false_people, missed))
    return scores, skier_agreement(predictor, data_dir, grey, scale)


def _pixels(box: np.ndarray) -> list[int]:
    return [int(round(float(v))) for v in box]


def summary(scores: list[ImageScore], skier: dict[str, float]) -> dict:
    people = sum(s.people for s in scores)
    return {"images": len(scores), "people": people, "found": sum(s.found for s in scores),
            "recall": sum(s.found for s in scores) / max(people, 1),
            "false_positives": sum(s.false_positives for s in scores),
            "false_positives_per_image": sum(s.false_positives for s in scores) / max(len(scores), 1),
            **skier}


def main(argv: list[str] | None = None) -> int:
    import torch

    from densepose.api import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default: the bundled model)")
    ap.add_argument("--min-score", type=float, default=None, help="default: the model file's default_min_score")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, nargs="+", default=None, help="shorter side(s); several are merged (default: the model's)")
    ap.add_argument("--json", default=None, help="write the per-image scores and the summary here")
    ap.add_argument("--pictures", default=None, help="folder for photo | parts | U,V pictures")
    ap.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                    help="fp32 (default: the figures of MODELS.md), bf16, or auto (what predict uses)")
    ap.add_argument("--grey", action="store_true", help="show the model every image in greyscale")
    ap.add_argument("--scale", type=float, default=1.0, help="show the model every image resized by this factor")
    ap.add_argument("--flip", action="store_true", help="the flip test (`densepose predict --flip`)")
    ap.add_argument("--zoom", type=int, default=None, metavar="SIZE",
                    help="small people read at this larger size (`densepose predict --zoom`)")
    ap.add_argument("--details", action="store_true", help="list each false person and each person missed")
    args = ap.parse_args(argv)
    if not 0.05 <= args.scale <= 8:
        ap.error(f"--scale must be between 0.05 and 8, got {args.scale}")
    torch.set_num_threads(args.threads)
    data_dir = shared_data_dir()
    if not data_dir.is_dir():
        print(f"shared data folder not found at {data_dir} (set DENSEPOSE_SHARED)")
        return 2
    predictor = load(args.model, min_score=args.min_score, min_size=args.size, precision=args.precision, flip=args.flip,
                     zoom=args.zoom)
    t0 = time.perf_counter()
    scores, skier = score_model(predictor, data_dir, Path(args.pictures) if args.pictures else None, args.grey, args.scale)
    for s in scores:
        name = s.file_name + (f"#{s.frame_index}" if s.frame_index is not None else "")
        print(f"{name:32s} people {s.people}  found {s.found}  false positives {s.false_positives}  "
              f"detections {s.detections}")
        if args.details:
            for score, box in s.false_people:
                print(f"    false person, score {score:.3f}, box {box}")
            for box, iou in s.missed:
                print(f"    missed person {box}, best detection IoU {iou:.2f}")
    total = summary(scores, skier)
    print(f"model {args.model or 'bundled'}; {predictor.precision}; min score {predictor.min_score}; shorter side {args.size or 'default'}; "
          f"{'flip test; ' if args.flip else ''}{f'small people read at {args.zoom}; ' if args.zoom else ''}"
          f"{'greyscale images; ' if args.grey else ''}{f'images resized by {args.scale:g}; ' if args.scale != 1 else ''}{time.perf_counter() - t0:.0f} s")
    print(f"recall {total['recall']:.3f} ({total['found']}/{total['people']}); false positives "
          f"{total['false_positives']} in {total['images']} images ({total['false_positives_per_image']:.2f}/image); "
          f"skier coarse-part mIoU vs official {total['skier_coarse_miou']:.3f}")
    print(f"skier, pixels both call body: same chart as the official model {total['skier_same_chart']:.3f}, "
          f"its turned-around chart (read as facing the other way) {total['skier_turned_chart']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": total, "images": [asdict(s) for s in scores]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
