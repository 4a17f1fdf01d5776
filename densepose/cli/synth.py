"""``densepose synth``: render synthetic people with exact DensePose ground truth.

    densepose synth --out DIR --num N [--size 512] [--seed S] [--workers K] [--shard i/N]
                    [--max-people 4] [--split 0.9] [--format jpg|png] [--backgrounds DIR]
    densepose synth merge DIR... --out DIR
    densepose synth preview DIR --out sheet.png [--num 6]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from densepose.errors import UserError

_REPO = Path(__file__).resolve().parents[2]


def default_backgrounds() -> str | None:
    """The repo's own background photos if shipped, else ../shared/data/backgrounds when present."""
    for cand in (_REPO / "data" / "backgrounds", _REPO.parent / "shared" / "data" / "backgrounds"):
        if cand.is_dir():
            return str(cand)
    return None


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= i < N")
    return i, n


def register(subparsers) -> None:
    p = subparsers.add_parser("synth", help="render synthetic DensePose-COCO data with Anny",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="output directory")
    p.add_argument("--num", type=int, help="number of images of the whole run (all shards)")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="render only indices with index %% N == i")
    p.add_argument("--max-people", type=int, default=4)
    p.add_argument("--min-people", type=int, default=1)
    p.add_argument("--split", type=float, default=None, help="train fraction: write train/ and val/ subfolders")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality")
    p.add_argument("--min-dp-pixels", type=int, default=None,
                   help="visible pixels a person needs for dp points (default 300 at 512 px, scaled by image area)")
    p.add_argument("--backgrounds", default=default_backgrounds(), help="folder of background photos ('' for none)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_generate)
    sub = p.add_subparsers(dest="synth_command", required=False, metavar="{merge,preview}")

    m = sub.add_parser("merge", help="join shard directories")
    m.add_argument("inputs", nargs="+", help="shard directories")
    m.add_argument("--out", required=True)
    m.set_defaults(func=run_merge)

    v = sub.add_parser("preview", help="contact sheet of a few samples")
    v.add_argument("dir")
    v.add_argument("--out", required=True, help="PNG file")
    v.add_argument("--num", type=int, default=6)
    v.set_defaults(func=run_preview)


def run_generate(args) -> int:
    from densepose.synth.appearance import list_backgrounds
    from densepose.synth.writer import RunSettings, generate

    if not args.out or args.num is None:
        raise UserError("densepose synth needs --out DIR and --num N")
    if args.num < 1 or args.size < 32 or args.min_people < 1 or args.workers < 1:
        raise UserError("--num, --min-people and --workers must be >= 1 and --size >= 32")
    if args.max_people > 255:
        raise UserError("--max-people must be <= 255 (the instance map is uint8)")
    if args.max_people < args.min_people:
        raise UserError(f"--max-people {args.max_people} is below --min-people {args.min_people}")
    if args.split is not None and not 0.0 < args.split < 1.0:
        raise UserError(f"--split must be a fraction in (0, 1), got {args.split}")
    if args.backgrounds and not Path(args.backgrounds).is_dir():
        raise UserError(f"{args.backgrounds}: background folder not found")
    photos = list_backgrounds(args.backgrounds or None)
    min_dp = args.min_dp_pixels if args.min_dp_pixels is not None else max(20, round(300 * (args.size / 512) ** 2))
    settings = RunSettings(num=args.num, size=args.size, seed=args.seed, max_people=args.max_people,
                           min_people=args.min_people,
                           image_format=args.format, quality=args.quality, split=args.split,
                           min_dp_pixels=min_dp)
    n = generate(args.out, settings, photos, shard=args.shard, workers=args.workers, progress=not args.no_progress)
    print(f"rendered {n} images into {args.out}")
    return 0


def run_merge(args) -> int:
    from densepose.synth.writer import merge

    n = merge(args.inputs, args.out)
    print(f"merged {n} images into {args.out}")
    return 0


def run_preview(args) -> int:
    from densepose.synth.preview import contact_sheet

    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir}: not a directory")
    contact_sheet(args.dir, num=args.num).save(args.out)
    print(f"wrote {args.out}")
    return 0
