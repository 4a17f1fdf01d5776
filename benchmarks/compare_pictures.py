"""Tile the parts panels of several models' real-photo pictures side by side.

    python benchmarks/compare_pictures.py OUT.png DIR [DIR ...]

Each ``DIR`` is a ``benchmarks/real_photos.py --pictures`` folder (photo | parts | U,V per photo);
each row of ``OUT.png`` is one photo: the photo, then the parts panel of each folder in order.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from real_photos import PICTURE_GAP as GAP  # benchmarks/ is on the path when this script runs

PHOTOS = ("grace_hopper", "coco_000000000785", "basketball1", "camera", "astronaut", "vtest_0084")
ROW_HEIGHT = 170


def panels(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(photo, parts) panels of one real_photos.py picture, each (H, W, 3) uint8."""
    strip = np.asarray(Image.open(path).convert("RGB"))
    width = (strip.shape[1] - 2 * GAP) // 3
    return strip[:, :width], strip[:, width + GAP: 2 * width + GAP]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args(argv)
    rows = []
    for name in PHOTOS:
        pairs = [panels(f"{d}/real_{name}.png") for d in args.dirs]
        row = [pairs[0][0]] + [parts for _, parts in pairs]
        gap = np.full((row[0].shape[0], GAP, 3), 255, np.uint8)
        strip = np.concatenate([p for panel in row for p in (panel, gap)][:-1], axis=1)
        width = round(strip.shape[1] * ROW_HEIGHT / strip.shape[0])
        rows.append(np.asarray(Image.fromarray(strip).resize((width, ROW_HEIGHT), Image.BILINEAR)))
    sheet = np.full((len(rows) * (ROW_HEIGHT + GAP), max(r.shape[1] for r in rows), 3), 255, np.uint8)
    for i, row in enumerate(rows):
        sheet[i * (ROW_HEIGHT + GAP): i * (ROW_HEIGHT + GAP) + ROW_HEIGHT, : row.shape[1]] = row
    Image.fromarray(sheet).quantize(96).save(args.out, optimize=True)  # a palette keeps docs pictures small
    print(f"wrote {args.out}: {len(rows)} photos x {len(args.dirs)} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
