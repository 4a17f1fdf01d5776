"""``densepose demo``: the bundled model on the bundled images, one contact sheet per image."""
from __future__ import annotations

import sys
from pathlib import Path

from densepose.errors import UserError


def register(subparsers) -> None:
    from densepose.cli.predict import FLIP_HELP, PRECISION_HELP, PRECISIONS

    d = subparsers.add_parser(
        "demo",
        help="run the bundled model on the bundled images and write a picture",
        description="Run the bundled light model on the images shipped in densepose/assets and write "
        "one contact sheet per image (input, parts, contours, texture).",
    )
    d.add_argument("--out", default="densepose_demo", help="output folder (default: %(default)s)")
    d.add_argument("--model", default=None, help="model file (default: the bundled light model)")
    d.add_argument("--image", action="append", default=None, help="use this image instead of the bundled ones (repeatable)")
    d.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    d.add_argument("--min-score", type=float, default=None,
                   help="keep detections scoring at least this (default: the model file's default_min_score, else 0.5)")
    d.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    d.add_argument("--flip", action="store_true", help=FLIP_HELP)
    d.set_defaults(func=run_demo_cli)


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
    from densepose.api import load
    from densepose.io.images import load_image, write_png
    from densepose.vis import make_grid
    from densepose.vis.legend import draw_legend, isoline_entries, part_entries

    predictor = load(args.model, device=args.device, min_score=args.min_score, precision=args.precision, flip=args.flip)
    images = [Path(p) for p in args.image] if args.image else bundled_images()
    if not images:
        raise UserError("no demo image found in densepose/assets; pass one with --image PATH")
    out_dir = Path(args.out)
    failed = 0
    for path in images:
        try:
            image, _ = load_image(path)
            people = predictor(image)
            panels = [image] + [people.plot(k, legend=False) for k in ("parts,boxes", "contours", "texture")]
            sheet = make_grid(panels, ncols=4, titles=["input", f"parts ({len(people)} people)", "U/V isolines", "texture"])
            sheet = draw_legend(sheet, part_entries(people.maps()[0]) + isoline_entries())
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
