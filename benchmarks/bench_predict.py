"""Benchmark `densepose predict` inference on CPU: ms per image and peak RSS.

    python benchmarks/bench_predict.py [--model PATH] [--threads 1 2] [--size 512 [384 ...]] [--flip] [--zoom 768] [--images A.jpg ...]

Defaults: the bundled light model (densepose/assets/model_light.pt); when it is missing, a
randomly initialised ``light_config()`` model is used and said so (random weights produce many
low-confidence boxes, so the DensePose post-processing then runs on far more people than a
trained model keeps; the forward time is representative, the per-person part is not).
Images: --images, else the shared photos (``$DENSEPOSE_SHARED/data/photos``, default ``../shared``
next to the repository), else densepose/assets/*.jpg|png, else random.
Target for the light model: <= 150 ms/image at shorter side 512 with 2 threads. ``--threads 1 2``
compares thread counts on this machine as it is (other processes included): the default of
``densepose predict --threads`` is half the usable CPUs (`densepose.predict.cpu.default_threads`).
``--precision auto`` (default) is what ``densepose predict`` uses: bf16 on CPUs with AVX512-BF16/AMX.
Lines: the model forward; the whole call (forward + per-person post-processing); the detector
alone; the labelling of one person (`densepose.modeling.postprocess.densepose_to_labels_uv`) and
the moving of their silhouette onto the image's edges (`densepose.modeling.guided_silhouette`).
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
from densepose.predict.cpu import default_threads  # noqa: E402
from densepose.io.images import load_image  # noqa: E402


def _images(paths: list[str]) -> list[np.ndarray]:
    if not paths:
        shared = Path(os.environ.get("DENSEPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
        paths = sorted(glob.glob(str(shared / "data" / "photos" / "*")))
        paths = paths or sorted(str(p) for p in ASSETS_DIR.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
    return [load_image(p)[0] for p in paths]


def _per_person_ms(out: dict[str, torch.Tensor], min_score: float, cfg, image: np.ndarray
                   ) -> tuple[list[float], list[float]]:
    """ms of `chart_outputs_to_result` (maps -> labels, U, V at box size) and of `snap_with_settings`
    (the silhouette moved onto the image's edges) for each person of one image's raw outputs kept
    at ``min_score``; no silhouette times when the model has that step off."""
    from densepose.modeling.guided_silhouette import snap_with_settings
    from densepose.predict.results import chart_outputs_to_result

    labelling: list[float] = []
    snapping: list[float] = []
    if "fine_segm" not in out:  # a model without a DensePose head
        return labelling, snapping
    boxes = out.get("dp_boxes", out["boxes"])
    for k in torch.nonzero(out["scores"] >= min_score)[:, 0].tolist():
        t0 = time.perf_counter()
        labels, u, v, origin = chart_outputs_to_result(boxes[k], out["coarse_segm"][k], out["fine_segm"][k],
                                                       out["u"][k], out["v"][k])
        t1 = time.perf_counter()
        snap_with_settings(cfg, image, image.shape[:2], labels, (u, v), origin)
        labelling.append((t1 - t0) * 1e3)
        if getattr(cfg, "guided_radius", 0):
            snapping.append((time.perf_counter() - t1) * 1e3)
    return labelling, snapping


def _run(model, what: str, images: list[np.ndarray], args, threads: int) -> None:
    torch.set_num_threads(threads)
    predictor = Predictor(model, "cpu", args.min_score, min_size=args.size, precision=args.precision, flip=args.flip,
                          zoom=args.zoom)
    print(f"model: {what}; {predictor.precision}; {'flip test; ' if args.flip else ''}"
          f"{f'small people read at {args.zoom}; ' if args.zoom else ''}threads {threads}; shorter side {args.size or 'model default'}; "
          f"min score {predictor.min_score}; {len(images)} image(s): {[im.shape[:2] for im in images]}")
    # Split the time: model forward alone, then the whole call (forward + per-person post-processing).
    forward_ms, total_ms, people, person_ms, snap_ms = [], [], [], [], []
    for rep in range(args.repeats + 1):
        for im in images:
            x = predictor.to_tensor(im)
            t0 = time.perf_counter()
            out = predictor.forward([x])[0]
            t1 = time.perf_counter()
            res = predictor(im)
            t2 = time.perf_counter()
            if rep:  # the first pass warms up allocators and caches
                forward_ms.append((t1 - t0) * 1e3)
                total_ms.append((t2 - t1) * 1e3)
                people.append(len(res))
                labelling, snapping = _per_person_ms(out, predictor.min_score, getattr(model, "cfg", None), im)
                person_ms += labelling
                snap_ms += snapping
    # The floor: no box passes, so the DensePose head never runs (backbone + RPN + box head only).
    floor = Predictor(model, "cpu", 1.01, min_size=args.size, precision=args.precision)
    floor_ms = []
    for im in images:
        t0 = time.perf_counter()
        floor(im)
        floor_ms.append((time.perf_counter() - t0) * 1e3)
    print(f"  model forward: {np.median(forward_ms):.0f} ms/image (median; mean {np.mean(forward_ms):.0f})")
    print(f"  predict (forward + post-processing): {np.median(total_ms):.0f} ms/image (median; mean "
          f"{np.mean(total_ms):.0f}); {np.mean(people):.1f} people/image kept")
    print(f"  detector only (no person kept, DensePose head skipped): {np.median(floor_ms):.0f} ms/image (median)")
    if person_ms:
        print(f"  labelling one person (maps -> labels, U, V at box size): {np.median(person_ms):.1f} ms (median; "
              f"mean {np.mean(person_ms):.1f}; {len(person_ms)} people)")
    if snap_ms:
        print(f"  silhouette of one person onto the image's edges: {np.median(snap_ms):.1f} ms (median; "
              f"mean {np.mean(snap_ms):.1f}; {len(snap_ms)} people)")
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=[default_threads()],
                    help="thread counts to compare, e.g. --threads 1 2 (default: what densepose predict uses)")
    ap.add_argument("--size", type=int, nargs="+", default=None, help="shorter side(s); several are merged (default: the model's)")
    ap.add_argument("--min-score", type=float, default=None, help="default: the model file's default_min_score")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto")
    ap.add_argument("--flip", action="store_true", help="time the flip test (`densepose predict --flip`)")
    ap.add_argument("--zoom", type=int, default=None, metavar="SIZE",
                    help="time small people read at this larger size (`densepose predict --zoom`)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes over the images (after one warm-up)")
    ap.add_argument("--images", nargs="*", default=[])
    args = ap.parse_args()

    path = Path(args.model) if args.model else bundled_model_path()
    if path.is_file():
        model, what = build_model_from_checkpoint(path), str(path)
    else:
        from densepose.modeling import DensePoseRCNN, light_config

        torch.manual_seed(0)
        model, what = DensePoseRCNN(light_config()).eval(), "RANDOM light_config() weights (bundled weights missing)"
    images = _images(args.images)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    what = f"{what} ({n_params:.1f} M parameters)"
    for threads in args.threads:
        _run(model, what, images, args, threads)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
