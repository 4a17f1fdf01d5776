"""Benchmark `densepose predict` inference on CPU: ms per image and peak RSS.

    python benchmarks/bench_predict.py [--model PATH] [--threads 2] [--size 512] [--images A.jpg ...]

Defaults: the bundled light model (densepose/assets/model_light.pt); when it is missing, a
randomly initialised ``light_config()`` model is used and said so (random weights produce many
low-confidence boxes, so the DensePose post-processing then runs on far more people than a
trained model keeps; the forward time is representative, the per-person part is not).
Images: --images, else /work/shared/data/photos/*, else densepose/assets/*.jpg|png, else random.
Target for the light model: <= 150 ms/image at shorter side 512 with 2 threads.
``--precision auto`` (default) is what ``densepose predict`` uses: bf16 on CPUs with AVX512-BF16/AMX.
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from densepose.api import ASSETS_DIR, PRECISIONS, Predictor, bundled_model_path, build_model_from_checkpoint  # noqa: E402
from densepose.io.images import load_image  # noqa: E402


def _images(paths: list[str]) -> list[np.ndarray]:
    if not paths:
        paths = sorted(glob.glob("/work/shared/data/photos/*"))
        paths = paths or sorted(str(p) for p in ASSETS_DIR.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
    return [load_image(p)[0] for p in paths]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--min-score", type=float, default=0.5)
    ap.add_argument("--precision", choices=PRECISIONS, default="auto")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes over the images (after one warm-up)")
    ap.add_argument("--images", nargs="*", default=[])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    path = Path(args.model) if args.model else bundled_model_path()
    if path.is_file():
        model, what = build_model_from_checkpoint(path), str(path)
    else:
        from densepose.modeling import DensePoseRCNN, light_config

        torch.manual_seed(0)
        model, what = DensePoseRCNN(light_config()).eval(), "RANDOM light_config() weights (bundled weights missing)"
    predictor = Predictor(model, "cpu", args.min_score, min_size=args.size, precision=args.precision)
    args.precision = predictor.precision  # auto -> what this CPU gets
    images = _images(args.images)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: {what} ({n_params:.1f} M parameters); {args.precision}; threads {args.threads}; shorter side {args.size}; "
          f"min score {args.min_score}; {len(images)} image(s): {[im.shape[:2] for im in images]}")

    # Split the time: model forward alone, then the whole call (forward + per-person post-processing).
    forward_ms, total_ms, people = [], [], []
    for rep in range(args.repeats + 1):
        for im in images:
            with torch.inference_mode():
                x, _ = predictor._prepare(im)
            t0 = time.perf_counter()
            predictor.forward([x])
            t1 = time.perf_counter()
            res = predictor(im)
            t2 = time.perf_counter()
            if rep:  # the first pass warms up allocators and caches
                forward_ms.append((t1 - t0) * 1e3)
                total_ms.append((t2 - t1) * 1e3)
                people.append(len(res))
    # The floor: no box passes, so the DensePose head never runs (backbone + RPN + box head only).
    floor = Predictor(model, "cpu", 1.01, min_size=args.size, precision=args.precision)
    floor_ms = []
    for im in images:
        t0 = time.perf_counter()
        floor(im)
        floor_ms.append((time.perf_counter() - t0) * 1e3)
    predictor = Predictor(model, "cpu", args.min_score, min_size=args.size, precision=args.precision)  # restore the model's thresholds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model forward: {np.median(forward_ms):.0f} ms/image (median; mean {np.mean(forward_ms):.0f})")
    print(f"predict (forward + post-processing): {np.median(total_ms):.0f} ms/image (median; mean {np.mean(total_ms):.0f}); "
          f"{np.mean(people):.1f} people/image kept")
    print(f"detector only (no person kept, DensePose head skipped): {np.median(floor_ms):.0f} ms/image (median)")
    print(f"peak RSS: {peak_mb:.0f} MB; load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"target <= 150 ms/image: {'met' if np.median(total_ms) <= 150 else 'NOT met'}")


if __name__ == "__main__":
    main()
