"""``densepose synth``: render synthetic people with exact DensePose ground truth."""
from __future__ import annotations

import argparse
from pathlib import Path

from densepose.errors import UserError

_REPO = Path(__file__).resolve().parents[2]

DESCRIPTION = """\
Render synthetic people on the Anny body with exact DensePose ground truth (I, U, V per pixel)
and write a DensePose-COCO dataset.

By default the renders are realistic: dressed people with hair and faces, among props and
occluders, lit by HDR environment maps with soft shadows, with camera effects; 10 % of the
images have no person (hard negatives), 8 % show a crowd. --plain renders bare bodies with
painted clothes on photo or procedural backgrounds (the first generator: fastest, simplest).

examples:
  densepose synth --out DIR --num N [--size 512] [--seed S] [--workers K] [--shard i/N]
  densepose synth merge DIR... --out DIR
  densepose synth assemble DIR      # annotations.json of the images a stopped run finished
  densepose synth preview DIR --out sheet.png [--num 6]

Asset folders default to data/{backgrounds,hdri,makehuman} in the repository, else to
../shared/data/{backgrounds,hdri,makehuman} beside it, when they exist; without them the renderer
uses procedural backgrounds, skies and garments ('' switches a folder off).
"""


def shared_data(name: str) -> str | None:
    """The repository's own ``data/<name>`` if shipped, else ``../shared/data/<name>`` when present."""
    for cand in (_REPO / "data" / name, _REPO.parent / "shared" / "data" / name):
        if cand.is_dir():
            return str(cand)
    return None


def default_backgrounds() -> str | None:
    return shared_data("backgrounds")


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
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="output directory")
    p.add_argument("--num", type=int, help="number of images of the whole run (all shards)")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the run; image k depends only on (seed, k), so shards and "
                        "resumed runs give identical files (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="render only indices with index %% N == i")
    p.add_argument("--max-people", type=int, default=4,
                   help="most people in an ordinary image (default 4; crowd images have 10-16)")
    p.add_argument("--min-people", type=int, default=1,
                   help="fewest people in an image that is not a hard negative (default 1)")
    p.add_argument("--split", type=float, default=None, help="train fraction: write train/ and val/ subfolders")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg",
                   help="image file format: jpg (small, default) or png (lossless)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.add_argument("--min-dp-pixels", type=int, default=None,
                   help="visible pixels a person needs for dp points (default 300 at 512 px, scaled by image area)")
    p.add_argument("--plain", action="store_true",
                   help="plain mode: bare bodies with painted clothes, Lambert light, no props or camera effects")
    p.add_argument("--negatives", type=float, default=0.1,
                   help="fraction of images with no person and no annotation (default 0.1; realistic mode)")
    p.add_argument("--crowds", type=float, default=0.08,
                   help="fraction of images with a crowd of 10-16 small people (default 0.08; realistic mode)")
    p.add_argument("--portraits", type=float, default=0.0,
                   help="fraction of the images with people framed as head-and-shoulders portraits, cut at "
                        "the chest (default 0; realistic mode)")
    p.add_argument("--max-props", type=int, default=6,
                   help="most distractor objects per image (default 6; realistic mode)")
    p.add_argument("--backgrounds", default=default_backgrounds(), help="folder of background photos ('' for none)")
    p.add_argument("--hdri", default=shared_data("hdri"),
                   help="folder of OpenEXR environment maps for lighting and backgrounds ('' for procedural skies)")
    p.add_argument("--assets", default=shared_data("makehuman"),
                   help="MakeHuman clothes/hair folder (.obj + .mhclo; '' for procedural garments only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_generate)
    sub = p.add_subparsers(dest="synth_command", required=False, metavar="{merge,assemble,preview}")

    m = sub.add_parser("merge", help="join shard directories")
    m.add_argument("inputs", nargs="+", help="shard directories")
    m.add_argument("--out", required=True, help="output directory")
    m.set_defaults(func=run_merge)

    a = sub.add_parser("assemble", help="write annotations.json of the images finished so far (a run stopped "
                       "early, e.g. by a time limit); a later run with the same options renders the rest")
    a.add_argument("dir", help="a `densepose synth` output directory")
    a.set_defaults(func=run_assemble)

    v = sub.add_parser("preview", help="contact sheet of a few samples: RGB | parts | U | V")
    v.add_argument("dir", help="a `densepose synth` output directory")
    v.add_argument("--out", required=True, help="PNG file")
    v.add_argument("--num", type=int, default=6, help="number of images (rows) on the sheet (default 6)")
    v.set_defaults(func=run_preview)


def _folder(value: str | None, flag: str) -> str | None:
    if value and not Path(value).is_dir():
        raise UserError(f"{value}: {flag} folder not found")
    return value or None


def run_generate(args) -> int:
    from densepose.synth.appearance import list_backgrounds
    from densepose.synth.hdri import list_hdris
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
    for flag in ("negatives", "crowds", "portraits"):
        if not 0.0 <= getattr(args, flag) <= 1.0:
            raise UserError(f"--{flag} must be a fraction in [0, 1], got {getattr(args, flag)}")
    if args.max_props < 0:
        raise UserError(f"--max-props must be >= 0, got {args.max_props}")
    photos = list_backgrounds(_folder(args.backgrounds, "--backgrounds"))
    hdris = list_hdris(_folder(args.hdri, "--hdri"))
    assets = _folder(args.assets, "--assets")
    min_dp = args.min_dp_pixels if args.min_dp_pixels is not None else max(20, round(300 * (args.size / 512) ** 2))
    settings = RunSettings(num=args.num, size=args.size, seed=args.seed, max_people=args.max_people,
                           min_people=args.min_people, image_format=args.format, quality=args.quality,
                           split=args.split, min_dp_pixels=min_dp, plain=args.plain, negatives=args.negatives,
                           crowds=args.crowds, max_props=args.max_props, portraits=args.portraits)
    n = generate(args.out, settings, photos, shard=args.shard, workers=args.workers, progress=not args.no_progress,
                 hdris=hdris, assets=None if args.plain else assets)
    print(f"rendered {n} images into {args.out}")
    return 0


def run_merge(args) -> int:
    from densepose.synth.writer import merge

    n = merge(args.inputs, args.out)
    print(f"merged {n} images into {args.out}")
    return 0


def run_assemble(args) -> int:
    from densepose.synth.writer import assemble

    if not (Path(args.dir) / "synth.json").is_file():
        raise UserError(f"{args.dir}: not a `densepose synth` output (no synth.json)")
    n = assemble(Path(args.dir))
    print(f"{args.dir}: {n} finished images in annotations.json")
    return 0


def run_preview(args) -> int:
    from densepose.synth.preview import contact_sheet

    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir}: not a directory")
    contact_sheet(args.dir, num=args.num).save(args.out)
    print(f"wrote {args.out}")
    return 0
