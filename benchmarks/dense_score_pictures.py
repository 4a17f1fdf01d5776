"""What the dense score ranks: rendered people with the highest and the lowest, next to their truth.

    python benchmarks/dense_score_pictures.py [--model PATH] [--data DIR] [--num 60] [--seed 999]
        [--min-score 0.55] [--count 4] [--out docs/images/dense_score.png]

The model's people (detection score >= ``--min-score``, the people a user sees) on a rendered set
(``--data``: a `densepose synth` folder; without it ``--num`` images rendered with ``--seed``),
ranked by their dense score (`densepose.modeling.dense_score`). Each person's **part agreement**
is the share of pixels, among those the prediction or the truth calls this person's body inside
the maps' box, where both give the same chart (the truth: the render's dense ground truth, the
instance that most of the predicted body covers). Printed: the agreement by quarter of the dense
score and of the detection score, and the rank correlation of each score with the agreement.
``--out`` writes the ``--count`` people of highest (left) and of lowest (right) dense score, each
as the render, the true parts, the predicted parts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orientation import add_render_set_arguments, predicted_renders, rendered_set  # noqa: E402

from densepose.synth.writer import load_dense  # noqa: E402

TILE_HEIGHT = 160
GAP = 4


def person_crop(image: np.ndarray, truth: np.ndarray, instance: np.ndarray, person) -> dict | None:
    """The person's maps' box cut from the render, its truth (charts, the matched instance only) and
    the prediction -> {"photo", "truth", "pred"} (h, w) arrays and the part agreement; None when
    the box is outside the image or nobody is under the predicted body."""
    sl = person.paste_slices(*image.shape[:2])
    if sl is None:
        return None
    (ys, xs), (by, bx) = sl
    pred = person.labels[by, bx]
    under = instance[ys, xs][pred > 0]
    under = under[under > 0]
    if not len(under):
        return None
    who = np.bincount(under).argmax()
    true = np.where(instance[ys, xs] == who, truth[ys, xs], 0)
    body = (pred > 0) | (true > 0)
    return {"photo": image[ys, xs], "truth": true, "pred": pred, "agreement": float((pred == true)[body].mean())}


def tile(crop: dict, caption: str) -> np.ndarray:
    """Render | true parts | predicted parts at ``TILE_HEIGHT``, the caption above."""
    from densepose.vis.colors import colorize_parts
    from densepose.vis.draw import overlay

    panels = [crop["photo"]] + [overlay(crop["photo"], colorize_parts(crop[k]), 0.7) for k in ("truth", "pred")]
    h, w = crop["photo"].shape[:2]
    width = max(1, round(w * TILE_HEIGHT / h))
    panels = [np.asarray(Image.fromarray(p).resize((width, TILE_HEIGHT), Image.NEAREST)) for p in panels]
    gap = np.full((TILE_HEIGHT, GAP, 3), 255, np.uint8)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    width = max(strip.shape[1], 7 * len(caption))  # a narrow person's caption still fits
    strip = np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)), constant_values=255)
    head = Image.new("RGB", (width, 18), "white")
    ImageDraw.Draw(head).text((2, 3), caption, fill="black")
    return np.concatenate([np.asarray(head), strip], axis=0)


def column(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles stacked, left-aligned on white."""
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 3 * GAP), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    return np.concatenate(tiles, axis=0)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (no ties expected in float scores)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_render_set_arguments(ap)
    ap.add_argument("--min-score", type=float, default=0.55)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--out", default=None, help="PNG of the highest and lowest dense scores")
    args = ap.parse_args(argv)
    with rendered_set(args) as got:
        if got is None:
            print("rendering failed", file=sys.stderr)
            return 1
        data, predictor = got
        people = []
        for im, _, image, result, _ in predicted_renders(predictor, data, lambda a: True):
            dense = load_dense(data / "dense" / (Path(im["file_name"]).stem + ".npz"))
            for person in result:
                if person.score < args.min_score or person.dense_score is None:
                    continue
                crop = person_crop(image, dense["I"], dense["instance"], person)
                if crop is not None:
                    people.append((person.dense_score, person.score, crop))
    if not people:
        print("no person with a dense score (a model without dense_score_on?)", file=sys.stderr)
        return 1
    dense = np.array([p[0] for p in people])
    detection = np.array([p[1] for p in people])
    agreement = np.array([p[2]["agreement"] for p in people])
    print(f"{len(people)} people (detection score >= {args.min_score})")
    for name, score in (("dense score", dense), ("detection score", detection)):
        quarters = np.array_split(np.argsort(score), 4)
        means = " / ".join(f"{agreement[q].mean():.3f}" for q in quarters)
        print(f"part agreement by quarter of the {name}, lowest to highest: {means}; "
              f"rank correlation {rank_correlation(score, agreement):.3f}")
    if args.out:
        order = np.argsort(-dense, kind="stable")
        groups = (order[: args.count], order[::-1][: args.count])
        columns = [column([tile(people[k][2], f"dense {people[k][0]:.2f}  detection {people[k][1]:.2f}  "
                                              f"agreement {people[k][2]['agreement']:.2f}") for k in group])
                   for group in groups]
        height = max(c.shape[0] for c in columns)
        columns = [np.pad(c, ((0, height - c.shape[0]), (0, 6 * GAP), (0, 0)), constant_values=255) for c in columns]
        Image.fromarray(np.concatenate(columns, axis=1)).save(args.out)
        print(f"wrote {args.out}: the {args.count} highest dense scores (left) and the {args.count} lowest (right)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
