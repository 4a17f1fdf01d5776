"""Does a model know which way people face? Front/back and left/right of its charts on rendered people.

    python benchmarks/orientation.py [--model PATH] [--data DIR] [--num 60] [--seed 999] [--json OUT.json]

A chart says on which side of the body a pixel lies: torso front or back, upper leg left front or
right back, head left or right. Which of them a pixel shows depends on which way the person faces,
so a model that cannot tell confuses each chart with its turned-around partner (``CHART_TURN``:
right front <-> left back, ...). On a rendered set (``--data``: a `densepose synth` folder; without
it, ``--num`` images are rendered with ``--seed`` into a temporary folder), each annotated person is
matched to the model's best detection (box IoU >= 0.5, score >= 0.3) and its labels are read at the
ground-truth points:

* chart accuracy: the predicted chart is the true one; *turned*: it is the true chart's
  turned-around partner; coarse-part accuracy (the 14 parts of ``dp_masks``).
* where the points go (`point_kinds`): background, the true chart, its turned-around partner, its
  mirror image (``CHART_FLIP``: the other side's limb, the same front or back), another chart of
  the same coarse part (a limb's front for its back), or another part.
* by facing: people whose shoulders show which way they face (the left shoulder right of the right
  one in the image: facing the camera; the other way round: facing away; shoulders closer than 15 %
  of the box width: skipped). For each limb group, the share of its points labelled with a front
  chart and with a back chart; a model that knows front from back labels most of the points of
  people facing the camera "front", of people facing away "back".
* head: the share of people whose "head left" chart lies on the side of the image where that
  person's left is (right for people facing the camera).
* U, V where the chart is right: per group of charts (``KAPPA_GROUP_NAMES``), the correlation of
  the predicted U and V with the true ones over the points whose chart the model got right; how
  well it places a point within its chart (1: exactly, 0: no better than the chart's middle).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Charts of the front and of the back of each limb group (torso, legs, arms).
GROUPS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "torso": ((2,), (1,)),
    "upper legs": ((9, 10), (7, 8)),
    "lower legs": ((13, 14), (11, 12)),
    "upper arms": ((15, 16), (17, 18)),
    "lower arms": ((19, 20), (21, 22)),
}
HEAD_RIGHT, HEAD_LEFT = 23, 24
LEFT_SHOULDER, RIGHT_SHOULDER = 5, 6  # COCO keypoint order


def facing_of(keypoints: list[float] | None, box_width: float) -> str | None:
    """'camera', 'away' or None (no keypoints, shoulders not both visible, or too close to tell)."""
    k = np.asarray(keypoints or [], dtype=np.float64).reshape(-1, 3)
    if len(k) <= RIGHT_SHOULDER or k[LEFT_SHOULDER, 2] == 0 or k[RIGHT_SHOULDER, 2] == 0:
        return None
    dx = k[LEFT_SHOULDER, 0] - k[RIGHT_SHOULDER, 0]
    if abs(dx) < 0.15 * box_width:
        return None
    return "camera" if dx > 0 else "away"


#: The kinds of `point_kinds`, in the order they are tested.
POINT_KINDS = ("background", "exact", "turned", "mirrored", "same part", "other part")


def point_kinds(truth: np.ndarray, seen: np.ndarray) -> dict[str, int]:
    """True and predicted charts (n,) of n points -> how many fall in each of ``POINT_KINDS`` (each
    point in the first kind it fits)."""
    from densepose.surface.parts import CHART_FLIP, CHART_TO_MASK_PART, CHART_TURN

    left = np.ones(len(truth), dtype=bool)
    counts = {}
    for kind, fits in zip(POINT_KINDS, (seen == 0, seen == truth, seen == CHART_TURN[truth], seen == CHART_FLIP[truth],
                                        CHART_TO_MASK_PART[seen] == CHART_TO_MASK_PART[truth], left)):
        counts[kind] = int((fits & left).sum())
        left &= ~fits
    return counts


def predicted_renders(predictor, data: Path, wanted: Callable[[dict], bool]
                      ) -> Iterator[tuple[dict, list[dict], np.ndarray, list, np.ndarray]]:
    """The model on each render of the `densepose synth` folder ``data`` that holds an annotation
    ``wanted`` accepts -> for each with a detection: (its image record, all its annotations, its
    (H, W, 3) pixels, the predictor's people, their (N, 4) xyxy boxes)."""
    from densepose.io.images import load_image

    coco = json.loads((data / "annotations.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for im in coco["images"]:
        anns = by_image.get(im["id"], [])
        if not any(wanted(a) for a in anns):
            continue
        image = load_image(data / "images" / im["file_name"])[0]
        result = predictor(image)
        if len(result):
            yield im, anns, image, result, np.array([p.box for p in result], dtype=np.float64)


def score(predictor, data: Path) -> dict:
    """Per-point tallies over the rendered set ``data`` -> the summary described in the module doc."""
    from densepose.surface.parts import CHART_TO_KAPPA_GROUP, CHART_TO_MASK_PART, CHART_TURN, KAPPA_GROUP_NAMES
    from real_photos import box_iou

    exact = turned = coarse = points = 0
    kinds = dict.fromkeys(POINT_KINDS, 0)
    uv_pairs: list[np.ndarray] = []  # (n, 5): kappa group, true U, V, predicted U, V at right-chart points
    groups = {f: {g: [0, 0, 0] for g in GROUPS} for f in ("camera", "away")}
    head = {f: [0, 0] for f in ("camera", "away")}
    people = 0
    for _, anns, image, result, det in predicted_renders(predictor, data, lambda a: "dp_I" in a):
        h, w = image.shape[:2]
        for a in (a for a in anns if "dp_I" in a):
            x, y, bw, bh = a["bbox"]
            iou = box_iou(det, np.array([[x, y, x + bw, y + bh]]))[:, 0]
            best = int(np.argmax(iou))
            if iou[best] < 0.5:
                continue
            people += 1
            iuv = result[best].iuv_image(h, w)
            labels = iuv[..., 0].astype(np.int64)
            px = np.clip((x + np.asarray(a["dp_x"]) / 256 * bw).astype(np.int64), 0, w - 1)
            py = np.clip((y + np.asarray(a["dp_y"]) / 256 * bh).astype(np.int64), 0, h - 1)
            truth, seen = np.asarray(a["dp_I"]).astype(np.int64), labels[py, px]
            right = seen == truth
            exact += int(right.sum())
            uv_pairs.append(np.stack([CHART_TO_KAPPA_GROUP[truth[right]], np.asarray(a["dp_U"])[right],
                                      np.asarray(a["dp_V"])[right], iuv[py, px, 1][right] / 255.0,
                                      iuv[py, px, 2][right] / 255.0], axis=1))
            turned += int((seen == CHART_TURN[truth]).sum())
            coarse += int((CHART_TO_MASK_PART[seen] == CHART_TO_MASK_PART[truth]).sum())
            points += len(truth)
            for kind, n in point_kinds(truth, seen).items():
                kinds[kind] += n
            facing = facing_of(a.get("keypoints"), bw)
            if facing is None:
                continue
            for name, (front, back) in GROUPS.items():
                on = np.isin(truth, front + back)
                tally = groups[facing][name]
                tally[0] += int(np.isin(seen[on], front).sum())
                tally[1] += int(np.isin(seen[on], back).sum())
                tally[2] += int(on.sum())
            cols_left, cols_right = np.nonzero(labels == HEAD_LEFT)[1], np.nonzero(labels == HEAD_RIGHT)[1]
            if len(cols_left) >= 5 and len(cols_right) >= 5:
                left_on_image_right = cols_left.mean() > cols_right.mean()
                head[facing][0] += int(left_on_image_right == (facing == "camera"))
                head[facing][1] += 1
    points = max(points, 1)
    return {
        "people": people, "points": points, "chart_accuracy": exact / points, "turned": turned / points,
        "coarse_part_accuracy": coarse / points, "point_kinds": {k: n / points for k, n in kinds.items()},
        "by_facing": {f: {g: {"front": t[0] / max(t[2], 1), "back": t[1] / max(t[2], 1), "points": t[2]}
                          for g, t in gs.items()} for f, gs in groups.items()},
        "head_sides_right": {f: {"right": c[0] / max(c[1], 1), "people": c[1]} for f, c in head.items()},
        "uv_correlation": uv_correlation(np.concatenate(uv_pairs) if uv_pairs else np.zeros((0, 5)), KAPPA_GROUP_NAMES),
    }


def uv_correlation(pairs: np.ndarray, names: tuple[str, ...]) -> dict:
    """(n, 5) rows (group, true U, true V, predicted U, V) -> per group with 20+ points the
    correlation of predicted with true U and V, and the number of points."""
    out = {}
    for group in range(1, len(names)):
        rows = pairs[pairs[:, 0] == group]
        if len(rows) >= 20:
            out[names[group]] = {"u": float(np.corrcoef(rows[:, 1], rows[:, 3])[0, 1]),
                                 "v": float(np.corrcoef(rows[:, 2], rows[:, 4])[0, 1]), "points": len(rows)}
    return out


def add_render_set_arguments(ap: argparse.ArgumentParser) -> None:
    """The model and render-set options of the benchmarks that score a model on rendered people."""
    ap.add_argument("--model", default=None, help="model file (default: the bundled model)")
    ap.add_argument("--data", default=None, help="a `densepose synth` folder (default: render --num images)")
    ap.add_argument("--num", type=int, default=60)
    ap.add_argument("--seed", type=int, default=999)
    ap.add_argument("--threads", type=int, default=2)


@contextmanager
def rendered_set(args: argparse.Namespace) -> Iterator[tuple[Path, object] | None]:
    """(the `densepose synth` folder ``args.data``, or ``args.num`` images rendered with ``args.seed``
    into a temporary folder kept while the block runs; the model as the benchmarks read it: score
    >= 0.3, fp32), or None when rendering fails."""
    import torch

    from densepose.api import load
    from densepose.cli.main import main as cli

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "renders"
        if not args.data and cli(["synth", "--out", str(data), "--num", str(args.num), "--seed", str(args.seed),
                                  "--workers", str(args.threads), "--no-progress"]) != 0:
            yield None
            return
        yield data, load(args.model, min_score=0.3, precision="fp32")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_render_set_arguments(ap)
    ap.add_argument("--json", default=None, help="write the summary here")
    args = ap.parse_args(argv)
    with rendered_set(args) as found:
        if found is None:
            return 1
        summary = score(found[1], found[0])
    print(f"model {args.model or 'bundled'}; {summary['people']} people, {summary['points']} points")
    print(f"chart accuracy {summary['chart_accuracy']:.3f}; turned-around chart {summary['turned']:.3f}; "
          f"coarse part {summary['coarse_part_accuracy']:.3f}")
    print("points: " + "; ".join(f"{k} {v:.3f}" for k, v in summary["point_kinds"].items()))
    for facing, groups in summary["by_facing"].items():
        cells = "  ".join(f"{g} {v['front']:.2f}/{v['back']:.2f}" for g, v in groups.items())
        print(f"facing {facing:6s} front/back: {cells}")
    for facing, v in summary["head_sides_right"].items():
        print(f"facing {facing:6s} head left/right on the right sides: {v['right']:.2f} of {v['people']} people")
    cells = "  ".join(f"{g} {v['u']:.2f}/{v['v']:.2f}" for g, v in summary["uv_correlation"].items())
    print(f"U/V correlation with the truth where the chart is right: {cells}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
