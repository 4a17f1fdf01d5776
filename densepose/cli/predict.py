"""``densepose predict``: images, folders, globs, videos -> IUV/INDS/NPZ/JSON/pictures, a line per input."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from densepose.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16")  # densepose.predict.cpu.PRECISIONS, without importing torch at start-up
PRECISION_HELP = ("auto (default: bf16 on CPUs with AVX512-BF16/AMX, else fp32), fp32, or bf16 autocast "
                  "(~1.5x faster on such CPUs, same accuracy within noise: MODELS.md)")
FLIP_HELP = ("flip test: the DensePose head also reads the mirrored image and the answers are averaged "
             "(better parts and U, V, the same people; about 1.5x the time)")
VIS_KINDS = ("parts", "contours", "texture", "u", "v", "boxes")  # densepose.vis.render.VIS_KINDS (tested equal)
DEFAULT_VIS = "parts,boxes"
IUV_LAYOUTS = ("detectron", "rgb")  # densepose.predict.readers.IUV_LAYOUTS (tested equal)

OUTPUT_HELP = """\
outputs (default when none is chosen: --iuv --inds --vis parts,boxes):
  <stem>_IUV.png   I, U*255, V*255 as the original Detectron tool writes it: cv2.imread gives [I, U, V],
                   an RGB reader sees I in the blue channel (--iuv-layout rgb: I in the red channel)
  <stem>_INDS.png  gray PNG, 0 background, k = k-th person by descending score
  <stem>.npz       boxes, scores, per-person labels_k / u_k / v_k at box size
  results.json     COCO results with official uv_shape/uv_data, readable by `densepose evaluate`
  <stem>_<kinds>.jpg  one picture per --vis value; kinds joined by commas are layered in one picture
                   with a colour legend: parts, contours, texture, u, v, boxes
every output is in the input file's pixels (also for files over 4096 px, decoded downscaled).
videos: one annotated <stem>_<kinds>.mp4; per-frame files in <stem>_frames/ with --frame-outputs
output folder: --out, or --out2, --out3, ... when it exists and is not empty (unless --exist-ok)
exit status: 0 all inputs done, 1 some inputs failed (each reported), 2 usage error"""


def _threads_help() -> str:
    return ("CPU threads for inference (default: half the usable CPUs, 1 to 8; on a busy 2-core machine "
            "2 threads ran several times slower than 1)")


def register(subparsers) -> None:
    from densepose.cli import demo

    p = subparsers.add_parser(
        "predict",
        help="run DensePose on images, folders, globs and videos",
        description="Run a DensePose model and write IUV/INDS PNGs, NPZ, COCO results JSON and pictures; "
        "prints one line per input (size, people found, time) and a summary.",
        epilog=OUTPUT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image/video files, folders or glob patterns")
    p.add_argument("--out", default="densepose_out",
                   help="output folder (default: %(default)s; numbered densepose_out2, ... when it is taken)")
    p.add_argument("--exist-ok", action="store_true", help="write into --out even when it holds files")
    p.add_argument("--model", default=None, help="model file (default: the bundled light model)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help=_threads_help())
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument("--batch-size", type=int, default=1,
                   help="images or frames per forward pass (results equal one at a time; default: 1)")
    p.add_argument("--min-score", type=float, default=None,
                   help="keep detections scoring at least this (default: the model file's default_min_score, else 0.5)")
    p.add_argument("--size", type=int, nargs="+", default=None, metavar="SIZE",
                   help="shorter image side fed to the model; several sizes are each tested and their detections "
                   "merged, e.g. --size 512 384 256 finds more people, slower (default: the model's test sizes, "
                   "512 and 256 for the bundled model)")
    p.add_argument("--max-size", type=int, default=None, help="cap on the longer side fed to the model (default: the model's)")
    p.add_argument("--flip", action="store_true", help=FLIP_HELP)
    p.add_argument("--flip-tables", default=None, metavar="MAT",
                   help="the chart's UV_symmetry_transforms.mat for --flip: detectron2 files (SMPL chart) need "
                   "detectron2's, or one written by `densepose surface symmetry` (default: the anny chart's, built in)")
    p.add_argument("--zoom", type=int, default=None, metavar="SIZE",
                   help="read the people shorter than 128 px at the test size from the image resized to this larger "
                   "shorter side, e.g. --zoom 768: finer parts and U, V for small people, for one more trunk pass over a "
                   "crop around them (0: at the test size; default: the model file's, 768 for the bundled model)")
    p.add_argument("--iuv", action="store_true", help="write <stem>_IUV.png")
    p.add_argument("--iuv-layout", choices=IUV_LAYOUTS, default="detectron",
                   help="channel order of <stem>_IUV.png: detectron (default, I in the blue channel of an RGB "
                   "reader, as the original tool) or rgb (I in the red channel)")
    p.add_argument("--inds", action="store_true", help="write <stem>_INDS.png")
    p.add_argument("--npz", action="store_true", help="write <stem>.npz")
    p.add_argument("--json", nargs="?", const="results.json", default=None, metavar="FILE",
                   help="write COCO results JSON (default name results.json inside the output folder)")
    p.add_argument("--coco-json", default=None, metavar="ANNOTATIONS",
                   help="take image_id for --json from this COCO file, matching by file name (a `densepose synth` "
                   "folder's annotations.json is found by itself)")
    p.add_argument("--vis", action="append", default=None, metavar="KINDS",
                   help=f"a picture of these kinds layered, comma-separated, from {','.join(VIS_KINDS)}; "
                   f"repeat for more pictures (default: {DEFAULT_VIS})")
    p.add_argument("--no-legend", action="store_true", help="pictures without the colour legend")
    p.add_argument("--texture", default=None, metavar="ATLAS",
                   help="texture atlas image (6N x 4N tiles) for the texture kind (default: a procedural one)")
    p.add_argument("--all", action="store_true", help="write every output format and one picture per kind")
    p.add_argument("--video-vis", default=DEFAULT_VIS, metavar="KINDS",
                   help="kinds layered in the annotated MP4 of a video, or 'none' (default: %(default)s)")
    p.add_argument("--frame-outputs", action="store_true",
                   help="videos: also write the chosen outputs for every frame into <stem>_frames/")
    p.add_argument("--every", type=int, default=1, help="process every N-th video frame (default: 1)")
    p.add_argument("--max-frames", type=int, default=None, help="stop each video after this many processed frames")
    p.add_argument("--smooth", type=float, default=0.0, metavar="W",
                   help="video: temporal EMA weight of the previous frame for U/V of tracked people, 0..1 (0 = off)")
    p.add_argument("--quiet", action="store_true", help="no per-input lines and no progress bar")
    p.set_defaults(func=run_predict_cli)
    demo.register(subparsers)


def _kinds(spec: str, flag: str) -> tuple[str, ...]:
    from densepose.vis.render import parse_kinds

    try:
        return parse_kinds(spec)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None


def _options(args, out_dir: Path):
    from densepose.predict.writers import OutputOptions
    from densepose.vis.texture import load_atlas

    chosen = args.iuv or args.inds or args.npz or args.json is not None or args.vis is not None
    if args.all:
        iuv = inds = npz = True
        json_name = args.json or "results.json"
        vis = tuple((k,) for k in VIS_KINDS)
    elif chosen:
        iuv, inds, npz, json_name = args.iuv, args.inds, args.npz, args.json
        vis = ()
    else:
        iuv, inds, npz, json_name, vis = True, True, False, None, (_kinds(DEFAULT_VIS, "--vis"),)
    if args.vis is not None:
        vis = tuple(_kinds(spec, "--vis") for spec in args.vis)
    video_vis = None if args.video_vis.lower() == "none" else _kinds(args.video_vis, "--video-vis")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
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
        out_dir=out_dir, iuv=iuv, inds=inds, npz=npz, json=json_path, vis=vis, legend=not args.no_legend,
        iuv_layout=args.iuv_layout, atlas=atlas, video_vis=video_vis, frame_outputs=args.frame_outputs,
        smooth=args.smooth, every=args.every, max_frames=args.max_frames, image_ids=image_ids,
    )


def _read_image_ids(path: str) -> dict[str, int]:
    try:
        with open(path) as f:
            data = json.load(f)
        return {Path(im["file_name"]).name: int(im["id"]) for im in data["images"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot read image ids from this COCO file ({exc.__class__.__name__}: {exc})") from None


def run_predict_cli(args) -> int:
    import time

    import torch

    from densepose.api import load
    from densepose.predict.cpu import default_threads
    from densepose.predict.runner import run_predict, unique_out_dir

    t0 = time.perf_counter()
    out_dir = unique_out_dir(args.out, args.exist_ok)
    opts = _options(args, out_dir)
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    predictor = load(args.model, device=args.device, min_score=args.min_score, min_size=args.size, max_size=args.max_size,
                     precision=args.precision, flip=args.flip, symmetry_file=args.flip_tables, zoom=args.zoom)
    log = (lambda msg: None) if args.quiet else print
    log(f"model: {args.model or 'bundled light model'}; people from score {predictor.min_score:g}; {predictor.precision}; "
        f"{'flip test; ' if args.flip else ''}{f'small people read at {args.zoom}; ' if args.zoom else ''}"
        f"{threads} thread(s); output folder {out_dir}")
    summary = run_predict(args.inputs, predictor, opts, batch_size=args.batch_size, progress=not args.quiet, log=log)
    for line in summary.lines(out_dir, time.perf_counter() - t0):
        print(line)
    return 1 if summary.failed else 0
