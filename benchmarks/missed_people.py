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
labelled with its height in pixels and its best IoU with a detection.
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
        ImageDraw.Draw(tile).text((2, 2), f"{int(h)} {r['best_iou']:.2f}", fill=(255, 0, 0))
        out.paste(tile, ((k % cols) * TILE[0], (k // cols) * TILE[1]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a densepose synth folder (annotations.json, images/)")
    p.add_argument("--results", type=Path, required=True, help="densepose predict --json output for its images")
    p.add_argument("--min-score", type=float, default=0.3, help="detections kept from this detector score")
    p.add_argument("--pictures", type=Path, help="write a sheet of the missed people to this PNG")
    p.add_argument("--count", type=int, default=40, help="missed people on the sheet")
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
    if args.pictures:
        sheet(rows, annotations, args.data / "images", args.count).save(args.pictures)
        print(f"wrote {args.pictures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
