"""``densepose predict`` (images, folders, globs, videos -> IUV/INDS/NPZ/JSON/pictures) and ``densepose demo``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from densepose.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16")  # densepose.api.PRECISIONS, without importing torch at start-up
PRECISION_HELP = ("auto (default: bf16 on CPUs with AVX512-BF16/AMX, else fp32), fp32, or bf16 autocast "
                  "(~1.5x faster on such CPUs, same accuracy within noise: MODELS.md)")

OUTPUT_HELP = """\
outputs (default when none is chosen: --iuv --inds --vis parts):
  <stem>_IUV.png   RGB PNG, R = I (0..24), G = U*255, B = V*255 (Caffe2's cv2.imwrite files are BGR)
  <stem>_INDS.png  gray PNG, 0 background, k = k-th person by descending score
  <stem>.npz       boxes, scores, per-person labels_k / u_k / v_k at box size
  results.json     COCO results with official uv_shape/uv_data, readable by `densepose evaluate`
  <stem>_<kind>.jpg  visualisations: parts, contours, texture, u, v, boxes
videos: <stem>_<kind>.mp4 plus per-frame outputs in <stem>_frames/
exit status: 0 all inputs done, 1 some inputs failed (each reported), 2 usage error"""


def register(subparsers) -> None:
    from densepose.vis.render import VIS_KINDS

    p = subparsers.add_parser(
        "predict",
        help="run DensePose on images, folders, globs and videos",
        description="Run a DensePose model and write IUV/INDS PNGs, NPZ, COCO results JSON and pictures.",
        epilog=OUTPUT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image/video files, folders or glob patterns")
    p.add_argument("--out", default="densepose_out", help="output folder (default: %(default)s)")
    p.add_argument("--model", default=None, help="model file (default: the bundled light model)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument("--batch-size", type=int, default=1, help="images or frames per forward pass")
    p.add_argument("--min-score", type=float, default=0.5, help="keep detections scoring at least this")
    p.add_argument("--size", type=int, default=None,
                   help="shorter image side fed to the model (default: the model's test size, 512 for the light model)")
    p.add_argument("--max-size", type=int, default=None, help="cap on the longer side fed to the model (default: the model's)")
    p.add_argument("--iuv", action="store_true", help="write <stem>_IUV.png")
    p.add_argument("--inds", action="store_true", help="write <stem>_INDS.png")
    p.add_argument("--npz", action="store_true", help="write <stem>.npz")
    p.add_argument("--json", nargs="?", const="results.json", default=None, metavar="FILE",
                   help="write COCO results JSON (default name results.json inside --out)")
    p.add_argument("--coco-json", default=None, metavar="ANNOTATIONS",
                   help="take image_id for --json from this COCO file, matching by file name")
    p.add_argument("--vis", default=None, metavar="KINDS",
                   help=f"comma-separated visualisations: {','.join(VIS_KINDS)}")
    p.add_argument("--texture", default=None, metavar="ATLAS",
                   help="texture atlas image (6N x 4N tiles) for --vis texture (default: a procedural one)")
    p.add_argument("--all", action="store_true", help="write every output format and visualisation")
    p.add_argument("--video-vis", default="parts", metavar="KIND",
                   help="visualisation in the annotated MP4 of a video, or 'none' (default: %(default)s)")
    p.add_argument("--no-frame-outputs", action="store_true", help="for videos write only the MP4 (and JSON)")
    p.add_argument("--every", type=int, default=1, help="process every N-th video frame")
    p.add_argument("--max-frames", type=int, default=None, help="stop each video after this many processed frames")
    p.add_argument("--smooth", type=float, default=0.0, metavar="W",
                   help="video: temporal EMA weight of the previous frame for U/V of tracked people, 0..1 (0 = off)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_predict_cli)

    d = subparsers.add_parser(
        "demo",
        help="run the bundled model on the bundled images and write a picture",
        description="Run the bundled light model on the images shipped in densepose/assets and write "
        "one contact sheet per image (input, parts, contours, texture).",
    )
    d.add_argument("--out", default="densepose_demo", help="output folder (default: %(default)s)")
    d.add_argument("--model", default=None, help="model file (default: the bundled light model)")
    d.add_argument("--image", action="append", default=None, help="use this image instead of the bundled ones")
    d.add_argument("--device", default="cpu")
    d.add_argument("--min-score", type=float, default=0.5)
    d.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    d.set_defaults(func=run_demo_cli)


def _options(args, out_dir: Path):
    from densepose.predict import OutputOptions
    from densepose.vis.render import VIS_KINDS
    from densepose.vis.texture import load_atlas

    chosen = args.iuv or args.inds or args.npz or args.json is not None or args.vis is not None
    if args.all:
        iuv = inds = npz = True
        json_name = args.json or "results.json"
        vis = tuple(VIS_KINDS)
    elif chosen:
        iuv, inds, npz, json_name = args.iuv, args.inds, args.npz, args.json
        vis = ()
    else:
        iuv, inds, npz, json_name, vis = True, True, False, None, ("parts",)
    if args.vis is not None:
        vis = tuple(k.strip() for k in args.vis.split(",") if k.strip())
    for kind in vis:
        if kind not in VIS_KINDS:
            raise UserError(f"--vis: unknown visualisation {kind!r}; choose from {', '.join(VIS_KINDS)}")
    video_vis = None if args.video_vis.lower() == "none" else args.video_vis
    if video_vis is not None and video_vis not in VIS_KINDS:
        raise UserError(f"--video-vis: unknown visualisation {video_vis!r}; choose from none, {', '.join(VIS_KINDS)}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.every < 1:
        raise UserError(f"--every must be at least 1, got {args.every}")
    if not 0.0 <= args.smooth < 1.0:
        raise UserError(f"--smooth must be in [0, 1), got {args.smooth}")
    atlas = load_atlas(args.texture) if args.texture else None
    image_ids = _read_image_ids(args.coco_json) if args.coco_json else None
    json_path = None
    if json_name is not None:
        json_path = Path(json_name) if Path(json_name).is_absolute() or Path(json_name).parent != Path(".") else out_dir / json_name
    return OutputOptions(
        out_dir=out_dir, iuv=iuv, inds=inds, npz=npz, json=json_path, vis=vis, atlas=atlas, video_vis=video_vis,
        frame_outputs=not args.no_frame_outputs, smooth=args.smooth, every=args.every, max_frames=args.max_frames,
        image_ids=image_ids,
    )


def _read_image_ids(path: str) -> dict[str, int]:
    try:
        with open(path) as f:
            data = json.load(f)
        return {Path(im["file_name"]).name: int(im["id"]) for im in data["images"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot read image ids from this COCO file ({exc.__class__.__name__}: {exc})") from None


def run_predict_cli(args) -> int:
    import torch

    from densepose.api import load
    from densepose.predict import run_predict

    out_dir = Path(args.out)
    opts = _options(args, out_dir)
    predictor = load(args.model, device=args.device, min_score=args.min_score, min_size=args.size, max_size=args.max_size,
                     precision=args.precision)
    if args.device == "cpu" and torch.get_num_threads() > 8:
        torch.set_num_threads(8)
    summary = run_predict(args.inputs, predictor, opts, batch_size=args.batch_size, progress=not args.quiet)
    print(f"{summary.ok} input(s) done, {len(summary.failed)} failed; {len(summary.written)} file(s) written to {out_dir}")
    return 1 if summary.failed else 0


def bundled_images() -> list[Path]:
    from densepose.api import ASSETS_DIR
    from densepose.io.images import IMAGE_EXTENSIONS

    if not ASSETS_DIR.is_dir():
        return []
    return sorted(
        p for p in ASSETS_DIR.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.stem.lower().startswith(("texture", "atlas"))
    )


def run_demo_cli(args) -> int:
    import numpy as np

    from densepose.api import compose, load
    from densepose.io.images import load_image, write_png
    from densepose.vis import make_grid, visualize

    predictor = load(args.model, device=args.device, min_score=args.min_score, precision=args.precision)
    images = [Path(p) for p in args.image] if args.image else bundled_images()
    if not images:
        raise UserError("no demo image found in densepose/assets; pass one with --image PATH")
    out_dir = Path(args.out)
    failed = 0
    for path in images:
        try:
            image, _ = load_image(path)
            people = predictor(image)
            h, w = image.shape[:2]
            labels, u, v, _ = compose(people, h, w)
            boxes = np.array([p.box for p in people], np.float32).reshape(-1, 4)
            scores = [p.score for p in people]
            panels = [image] + [visualize(image, labels, u, v, k, boxes=boxes, scores=scores) for k in ("parts", "contours", "texture")]
            sheet = make_grid(panels, ncols=4, titles=["input", f"parts ({len(people)} people)", "U/V isolines", "texture"])
            target = out_dir / f"{path.stem}_demo.png"
            try:
                write_png(target, sheet)
            except OSError as exc:
                raise UserError(f"cannot write {target} ({exc.strerror or exc})") from None
            print(f"{path.name}: {len(people)} person(s) -> {target}")
        except UserError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    return 1 if failed else 0
