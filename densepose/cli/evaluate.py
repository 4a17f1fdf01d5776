"""``densepose evaluate``: GPS / GPSm / IOU AP, the pointwise curve and COCO AP of a results file."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from densepose.cache import atomic_write_bytes
from densepose.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate DensePose results (GPS, GPSm, IOU AP) against DensePose-COCO annotations",
        description="Evaluate DensePose results with the official protocol (GPS/GPSm/IOU AP in one pass), "
                    "the paper's pointwise geodesic-error curve, and COCO box/mask/keypoint AP.",
    )
    p.add_argument("--gt", required=True, help="DensePose-COCO annotations JSON")
    p.add_argument("--results", required=True,
                   help="COCO results JSON (uv_shape + uv_data per detection) or our NPZ layout")
    p.add_argument("--surface", default="anny", choices=("anny", "smpl"), help="body surface of the charts (default anny)")
    p.add_argument("--smpl-model", default=None, help="SMPL model file (v_template, f), needed by --surface smpl")
    p.add_argument("--kappa", default="per-part", choices=("per-part", "smpl", "paper"),
                   help="GPS normaliser: per-part (the official rule, measured on the surface; default), "
                        "smpl (the official evaluator's constants, for SMPL-chart results) or paper (0.255)")
    p.add_argument("--min-iou", type=float, default=0.5,
                   help="lowest matching threshold, in [0.05, 0.5] (default 0.5: thresholds 0.50:0.05:0.95); "
                        "at or below 0.4 / 0.3 / 0.2 the table adds AP40 / AP30 / AP20 (detectron2's "
                        "MIN_IOU_THRESHOLD)")
    p.add_argument("--exact", action="store_true",
                   help="use exact surface points instead of the official nearest-vertex snap")
    p.add_argument("--gt-boxes", action="store_true",
                   help="results were computed on the GT boxes (pointwise curve pairs by box IoU >= 0.99)")
    p.add_argument("--out", default=None, help="write the metrics as JSON here")
    p.add_argument("--curve", default=None, help="write the pointwise curve (ratio of correct points vs cm) as PNG here")
    p.add_argument("--no-coco", action="store_true", help="skip box/mask/keypoint AP (pycocotools)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.data.coco import load_coco
    from densepose.evaluation import evaluate, load_results
    from densepose.evaluation.gt_checks import check_ground_truth

    gt, results = load_coco(args.gt), load_results(args.results)  # bad input fails before the surface loads
    check_ground_truth(gt)
    surface = _surface(args.surface, args.smpl_model)
    metrics = evaluate(gt, results, surface, kappa=args.kappa, exact=args.exact, gt_boxes=args.gt_boxes,
                       min_iou=args.min_iou, coco_metrics=not args.no_coco, progress=True)
    metrics["settings"].update({"gt": str(args.gt), "results": str(args.results)})
    print(format_table(metrics))
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(metrics, indent=1) + "\n").encode())
        print(f"wrote {args.out}")
    if args.curve:
        if "pointwise" not in metrics:
            raise UserError(f"{args.results}: no DensePose output, no pointwise curve to plot")
        write_curve_png(metrics["pointwise"], args.curve)
        print(f"wrote {args.curve}")
    return 0


def _surface(name: str, smpl_model):
    from densepose.surface import load_surface

    if name == "smpl":
        return load_surface("smpl", smpl_model=smpl_model)
    return load_surface(name)


def format_table(m: dict) -> str:
    """The metrics dict of ``evaluate`` -> a printable table (values in percent)."""
    s = m["settings"]
    lines = []
    if "densepose" in m:
        snap = "exact points" if s["exact"] else "vertex snap"
        lines.append(f"DensePose AP (%)  surface {s['surface']}, kappa {s['kappa']}, {snap}, maxDets {s['max_dets']}, "
                     f"thresholds {s.get('min_iou', 0.5):.2f}:0.05:0.95")
        columns = list(m["densepose"]["gps"])
        lines.append(f"{'mode':<6}" + "".join(f"{c:>7}" for c in columns))
        for mode, label in (("gps", "GPS"), ("gpsm", "GPSm"), ("iou", "IOU")):
            row = m["densepose"][mode]
            lines.append(f"{label:<6}" + "".join(_pct(row[c]) for c in columns))
        pw = m["pointwise"]
        ratios = ", ".join(f"{k} cm {_pct(v).strip()}" for k, v in pw["ratio_at_cm"].items())
        lines.append(f"pointwise: AUC10 {_pct(pw['auc10']).strip()}  AUC30 {_pct(pw['auc30']).strip()}  "
                     f"(points within: {ratios}; {pw['num_points']} points, "
                     f"{pw['num_gt_matched']}/{pw['num_gt']} people with a detection at box IoU >= {pw['min_box_iou']:g})")
    for kind, row in m.get("coco", {}).items():
        lines.append(f"COCO {kind} (%): " + "  ".join(f"{k} {_pct(v).strip()}" for k, v in row.items()))
    c = m["counts"]
    lines.append(f"{c['images']} images, {c['gt']} people ({c['gt_densepose']} with DensePose), "
                 f"{c['detections']} detections ({c['detections_evaluated']} evaluated)"
                 + (f", {c['pairs']} pairs" if "pairs" in c else ""))
    if "gt_in_ignore_regions" in c:
        lines.append(f"ignore regions: {c['gt_in_ignore_regions']} people and {c['detections_in_ignore_regions']} "
                     "detections dropped (as the official evaluator)")
    for text, n in m.get("warnings", {}).items():
        lines.append(f"warning: {text}: {n}")
    return "\n".join(lines)


def _pct(v: float) -> str:
    return f"{'n/a':>7}" if v is None or v < 0 else f"{100.0 * v:7.2f}"


def write_curve_png(pointwise: dict, path) -> None:
    """Ratio of correct points vs geodesic error threshold (the paper's pointwise plot)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.plot(pointwise["curve_cm"], pointwise["curve_ratio"], lw=2)
    ax.set_xlabel("geodesic error (cm)")
    ax.set_ylabel("ratio of correct points")
    ax.set_xlim(0, max(pointwise["curve_cm"]))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"AUC10 {100 * pointwise['auc10']:.1f}  AUC30 {100 * pointwise['auc30']:.1f}")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
