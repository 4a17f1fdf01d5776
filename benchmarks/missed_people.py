"""Which annotated people a model's detections miss, on a rendered set, and what they look like.

    densepose predict V/images --min-score 0.05 --json P.json --coco-json V/annotations.json --out D
    python benchmarks/missed_people.py --data V --results D/P.json [--min-score 0.3] [--pictures OUT.png]

The people are those with DensePose points (``dp_x``), the ones GPS and GPSm AP score. The
detections of at least ``--min-score`` (the detector's score, ``detection_score``, and its box,
``detection_bbox``, where the results have them) are matched to them as COCO matches (by score,
each to the free person of highest box IoU >= 0.5; crowd regions ignored). Each person missed is
described by what sets them apart, each as the share of the missed against that of the found:

* near miss: a detection overlaps them by IoU 0.3-0.5 (a box off the person: a pair, a part);
* lying: their box is wider than tall;
* under 64 px: their box is under 64 pixels tall;
* sparse: their silhouette fills under 30 % of their box (spread limbs, or a fragment);
* few joints: at most 5 of their 17 keypoints are visible (a fragment at the border or behind
  something).

``--pictures`` writes a sheet of the missed people, each cut from its image with a margin and
labelled with its height in pixels and its best IoU with a detection (and, with ``--stages``,
where it was lost).

``--stages`` runs the model that wrote the results (``--model``, default the bundled one) again on
the images of the missed people, at ``--min-score``, and says where in its pipeline each was lost
(`lost_at`): the first stage after which no box it passes on overlaps them by IoU >= 0.5.

* never boxed: no detection at either test size (after each size's height window);
* merged away: by the NMS across test sizes or the group-box rule;
* person check: its checked score fell under the min score;
* repeat rules: the covered-box or wider-box rule dropped it or lowered its score under the min
  score (`densepose.modeling.covered_boxes`);
* taken by another: a box of theirs was kept, and matched to someone else.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The properties of a person the summary compares between the missed and the found.
TRAITS = ("near miss", "lying", "under 64 px", "sparse", "few joints")
#: Where a missed person was lost (`lost_at`), in the pipeline's order.
STAGES = ("never boxed", "merged away", "person check", "repeat rules", "taken by another")
#: One tile of the picture sheet, (width, height) pixels, and tiles per row.
TILE, COLUMNS = (96, 160), 10


def person_rows(annotations: dict, results: list[dict], min_score: float) -> list[dict]:
    """Per annotated person with DensePose points: ``found``, ``best_iou`` with any kept detection,
    the `TRAITS`, and ``image_id`` / ``bbox`` (xywh)."""
    from densepose.modeling.ops.boxes import box_iou_xywh
    from real_photos import match_rows, xywh_to_xyxy

    by_image: dict[int, list[dict]] = {}
    for r in results:
        if r.get("detection_score", r["score"]) >= min_score:
            by_image.setdefault(r["image_id"], []).append(r)
    anns_of: dict[int, list[dict]] = {}
    for a in annotations["annotations"]:
        anns_of.setdefault(a["image_id"], []).append(a)
    rows = []
    for image in annotations["images"]:
        anns = anns_of.get(image["id"], [])
        people = [a for a in anns if not a.get("iscrowd", 0) and "dp_x" in a]
        if not people:
            continue
        crowds = xywh_to_xyxy([a["bbox"] for a in anns if a.get("iscrowd", 0)])
        dets = by_image.get(image["id"], [])
        det_xywh = np.array([r.get("detection_bbox", r["bbox"]) for r in dets], dtype=np.float64).reshape(-1, 4)
        scores = np.array([r.get("detection_score", r["score"]) for r in dets], dtype=np.float64)
        people_xywh = np.array([a["bbox"] for a in people], dtype=np.float64)
        matched, _ = match_rows(xywh_to_xyxy(det_xywh), scores, xywh_to_xyxy(people_xywh), crowds)
        best = box_iou_xywh(people_xywh[:, None], det_xywh[None]).max(axis=1) if len(dets) else np.zeros(len(people))
        for j, a in enumerate(people):
            w, h = a["bbox"][2], a["bbox"][3]
            found = bool((matched == j).any())
            rows.append({
                "image_id": image["id"], "bbox": a["bbox"], "found": found, "best_iou": float(best[j]),
                "near miss": not found and 0.3 <= best[j] < 0.5, "lying": w > h, "under 64 px": h < 64,
                "sparse": a["area"] / max(w * h, 1.0) < 0.3, "few joints": a.get("num_keypoints", 17) <= 5,
            })
    return rows


def lost_at(model, image, people_xyxy: np.ndarray, min_score: float) -> list[str]:
    """For each of the (P, 4) xyxy people of ``image`` (3, H, W) float RGB, the first of `STAGES`
    after which none of the boxes ``model`` passes on overlaps them by IoU >= 0.5.

    The model runs once, at ``min_score``, with the functions between its stages wrapped to
    record what they are given and what they keep: ``select_across_sizes`` (the detections of each
    test size, and the merge) and ``demote_repeated`` (the checked scores, and the repeat rules).
    """
    from unittest import mock

    import torch

    from densepose.modeling import rcnn, second_look
    from densepose.modeling.ops.boxes import box_iou

    seen: dict[str, torch.Tensor] = {}
    select, demote = rcnn.select_across_sizes, second_look.demote_repeated
    cfg = model.cfg
    height, width = image.shape[-2:]
    scale = model.transform.target_size(height, width, max((cfg.min_size_test, *cfg.extra_test_sizes)))[0] / height

    def merged(boxes, scores, *args):
        rows, order = select(boxes, scores, *args)
        seen["never boxed"] = torch.cat(boxes)
        seen["merged away"] = torch.cat([b[r] for b, r in zip(boxes, rows)])
        return rows, order

    def settled(boxes, scores, *args):
        lowered, kept = demote(boxes, scores, *args)
        seen.setdefault("never boxed", boxes / scale)  # one test size: no merge, its detections are these
        seen["person check"] = boxes[scores >= min_score] / scale  # the largest size's pixels -> input
        seen["repeat rules"] = boxes[kept & (lowered >= min_score)] / scale
        return lowered, kept

    with mock.patch.object(rcnn, "select_across_sizes", merged), \
            mock.patch.object(second_look, "demote_repeated", settled), torch.no_grad():
        model([image], score_thresh=min_score)
    people = torch.as_tensor(people_xyxy, dtype=torch.float32).reshape(-1, 4)
    out = []
    for person in people:
        stage = next((s for s in STAGES[:-1] if s in seen and (len(seen[s]) == 0 or
                      box_iou(person[None], seen[s].float()).max() < 0.5)), STAGES[-1])
        out.append(stage)
    return out


def stage_rows(rows: list[dict], annotations: dict, images: Path, model, min_score: float) -> None:
    """Adds ``lost at`` (`lost_at`) to each missed person of ``rows``, image by image."""
    import torch
    from real_photos import xywh_to_xyxy

    from densepose.io.images import load_image

    names = {i["id"]: i["file_name"] for i in annotations["images"]}
    by_image: dict[int, list[dict]] = {}
    for r in rows:
        if not r["found"]:
            by_image.setdefault(r["image_id"], []).append(r)
    for image_id, missed in by_image.items():
        # read as `densepose predict` read it (EXIF orientation, size limits)
        pixels = torch.from_numpy(load_image(images / names[image_id])[0]).permute(2, 0, 1).float()
        for r, stage in zip(missed, lost_at(model, pixels, xywh_to_xyxy([r["bbox"] for r in missed]), min_score)):
            r["lost at"] = stage


def summarise(rows: list[dict]) -> dict:
    """People, missed, and per trait its share among the missed and among the found."""
    missed = [r for r in rows if not r["found"]]
    found = [r for r in rows if r["found"]]

    def share(sel: list[dict], trait: str) -> float:
        return float(np.mean([r[trait] for r in sel])) if sel else 0.0

    return {"people": len(rows), "missed": len(missed),
            "traits": {t: {"missed": share(missed, t), "found": share(found, t)} for t in TRAITS}}


def sheet(rows: list[dict], annotations: dict, images: Path, count: int):
    """A PIL image of up to ``count`` missed people, each cut from its image with a 15 % margin."""
    from PIL import Image, ImageDraw

    names = {i["id"]: i["file_name"] for i in annotations["images"]}
    missed = [r for r in rows if not r["found"]][:count]
    cols = min(COLUMNS, max(len(missed), 1))
    out = Image.new("RGB", (cols * TILE[0], max(1, -(-len(missed) // cols)) * TILE[1]))
    for k, r in enumerate(missed):
        x, y, w, h = r["bbox"]
        with Image.open(images / names[r["image_id"]]) as im:
            tile = im.convert("RGB").crop((int(x - 0.15 * w), int(y - 0.15 * h), int(x + 1.15 * w),
                                           int(y + 1.15 * h))).resize(TILE)
        draw = ImageDraw.Draw(tile)
        draw.text((2, 2), f"{int(h)} {r['best_iou']:.2f}", fill=(255, 0, 0))
        if "lost at" in r:  # --stages
            draw.text((2, TILE[1] - 12), r["lost at"], fill=(255, 0, 0))
        out.paste(tile, ((k % cols) * TILE[0], (k // cols) * TILE[1]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a densepose synth folder (annotations.json, images/)")
    p.add_argument("--results", type=Path, required=True, help="densepose predict --json output for its images")
    p.add_argument("--min-score", type=float, default=0.3, help="detections kept from this detector score")
    p.add_argument("--pictures", type=Path, help="write a sheet of the missed people to this PNG")
    p.add_argument("--count", type=int, default=40, help="missed people on the sheet")
    p.add_argument("--stages", action="store_true", help="run the model again: where each missed person was lost")
    p.add_argument("--model", help="with --stages: the model file that wrote the results (default: the bundled one)")
    args = p.parse_args(argv)
    for path in (args.data / "annotations.json", args.results):
        if not path.is_file():
            sys.exit(f"missed_people: {path} not found")
    annotations = json.loads((args.data / "annotations.json").read_text())
    rows = person_rows(annotations, json.loads(args.results.read_text()), args.min_score)
    s = summarise(rows)
    print(f"{s['people']} people with DensePose points, {s['missed']} missed "
          f"({s['missed'] / max(s['people'], 1):.2f}) at detector score >= {args.min_score}")
    print(f"{'trait':<12} {'missed':>7} {'found':>7}")
    for trait, v in s["traits"].items():
        print(f"{trait:<12} {v['missed']:>7.2f} {v['found']:>7.2f}")
    if args.stages:
        import densepose.api

        model = densepose.api.build_model_from_checkpoint(args.model or densepose.api.bundled_model_path())
        stage_rows(rows, annotations, args.data / "images", model.eval(), args.min_score)
        missed = [r for r in rows if not r["found"]]
        print(f"{'lost at':<24} {'missed':>7}")
        for stage in STAGES:
            print(f"{stage:<24} {sum(r['lost at'] == stage for r in missed):>7}")
    if args.pictures:
        sheet(rows, annotations, args.data / "images", args.count).save(args.pictures)
        print(f"wrote {args.pictures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
