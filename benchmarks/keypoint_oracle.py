"""What better keypoints are worth: the model on renders with each person's MoveNet keypoints replaced by the truth.

    python benchmarks/keypoint_oracle.py --data V [--model PATH] [--noise 0.03] [--min-iou 0.5]

The skeleton prior and U, V from the skeleton (`densepose.modeling.skeleton_prior`,
`skeleton_uv`) read MoveNet's keypoints of each detection. On a rendered set (``--data``: a
`densepose synth` folder), this runs the model three ways and scores each with the evaluator:
as it is; with every detection whose box overlaps an annotated person's by ``--min-iou`` given
that person's annotated keypoints instead (score 1 where visible, 0.5 where hidden, 0 where not
labelled); and the same with Gaussian noise of ``--noise`` crop heights added to each coordinate.
The prior's tables stay the model file's (counted with MoveNet's keypoints). The keypoints are
swapped in by replacing `densepose.modeling.second_look.crop_keypoints` for the run: a
measurement, not a way to run the model.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import densepose.modeling.second_look as second_look  # noqa: E402
from densepose.api import Predictor, build_model_from_checkpoint, bundled_model_path  # noqa: E402
from densepose.evaluation import evaluate  # noqa: E402
from densepose.io.images import load_image  # noqa: E402
from densepose.modeling.ops.boxes import box_iou  # noqa: E402
from densepose.predict.writers import coco_records  # noqa: E402


def true_keypoints(annotation: dict) -> torch.Tensor:
    """(17, 3) x, y and a score from COCO visibility: 1 visible, 0.5 hidden, 0 not labelled."""
    keypoints = torch.tensor(annotation["keypoints"], dtype=torch.float32).reshape(17, 3)
    v = keypoints[:, 2].clone()
    keypoints[:, 2] = torch.where(v >= 2, 1.0, torch.where(v >= 1, 0.5, 0.0))
    return keypoints


def run(data: Path, model_path: str, oracle: bool, noise: float, min_iou: float, threads: int) -> dict:
    """The model's DensePose AP on ``data``, its keypoints MoveNet's or (``oracle``) the annotated ones."""
    torch.set_num_threads(threads)
    model = build_model_from_checkpoint(model_path)
    predictor = Predictor(model, "cpu", min_score=0.05, precision="fp32")
    gt = json.loads((data / "annotations.json").read_text())
    people: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        people.setdefault(ann["image_id"], []).append(ann)
    current: list[dict] = []
    replaced = [0, 0]
    generator = torch.Generator().manual_seed(0)
    movenet = second_look.crop_keypoints

    def annotated(net, taps, boxes):
        keypoints, scale = movenet(net, taps, boxes)
        replaced[1] += len(boxes)
        if oracle and current and len(boxes):
            truth_boxes = torch.tensor([a["bbox"] for a in current], dtype=torch.float32)
            truth_boxes[:, 2:] += truth_boxes[:, :2]
            best, which = box_iou(boxes.float(), truth_boxes).max(1)
            for row in torch.nonzero(best >= min_iou)[:, 0].tolist():
                k = true_keypoints(current[int(which[row])])
                if noise:
                    k[:, :2] += torch.randn(17, 2, generator=generator) * noise * scale[row]
                keypoints[row] = k.to(keypoints.dtype)
                replaced[0] += 1
        return keypoints, scale

    second_look.crop_keypoints = annotated
    try:
        records = []
        for im in gt["images"]:
            current[:] = people.get(im["id"], [])
            pixels = load_image(data / "images" / im["file_name"])[0]
            with torch.inference_mode():
                out = predictor.forward([predictor.to_tensor(pixels)])[0]
                records += coco_records(list(predictor.image_result(pixels, pixels.shape[:2], out)), im["id"])
    finally:
        second_look.crop_keypoints = movenet
    result = evaluate(gt, records, "anny", progress=False)["densepose"]
    return {"ap": {mode: round(result[mode]["AP"] * 100, 2) for mode in result},
            "keypoints_replaced": replaced[0], "people_read": replaced[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a `densepose synth` folder")
    ap.add_argument("--model", default=None, help="model file with a skeleton prior (default: the bundled model)")
    ap.add_argument("--noise", type=float, default=0.03, help="noise of the third run, in crop heights (0: skip it)")
    ap.add_argument("--min-iou", type=float, default=0.5,
                    help="box IoU with an annotated person to take their keypoints")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = args.model or str(bundled_model_path())
    runs = [("MoveNet's keypoints", False, 0.0), ("annotated keypoints", True, 0.0)]
    if args.noise:
        runs.append((f"annotated keypoints + noise {args.noise}", True, args.noise))
    for name, oracle, noise in runs:
        r = run(args.data, model, oracle, noise, args.min_iou, args.threads)
        ap_line = " / ".join(f"{r['ap'][m]:.2f}" for m in r["ap"])
        print(f"{name:40s} GPS / GPSm / IOU AP {ap_line}  (keypoints replaced for {r['keypoints_replaced']} of "
              f"{r['people_read']} people read)", flush=True)


if __name__ == "__main__":
    main()
