"""Benchmark DensePose-RCNN: eval forward time, training step time, peak memory.

    python benchmarks/bench_model.py                         # light model, CPU, shorter side 512
    python benchmarks/bench_model.py --device cuda --config r50 --size 800
    python benchmarks/bench_model.py --cascade --mask --keypoint

Inputs are random 4:3 images with two synthetic people (boxes + 100 DP points each). Weights are
random, so eval produces up to ``detections_per_image`` boxes and the DP head runs on all of
them (worst case for inference). Prints mean/median seconds per iteration after warm-up.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from densepose.modeling import DensePoseRCNN, light_config, r50_fpn_config  # noqa: E402


def _inputs(n: int, size: int, device: str, g: torch.Generator):
    h, w = size, size * 4 // 3
    images = [(torch.rand(3, h, w, generator=g) * 255).to(device) for _ in range(n)]
    targets = []
    for _ in range(n):
        boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.4 * w, 0.9 * h], [0.5 * w, 0.2 * h, 0.8 * w, 0.95 * h]])
        dps = [{"x": torch.rand(100, generator=g) * 256, "y": torch.rand(100, generator=g) * 256,
                "I": torch.randint(1, 25, (100,), generator=g), "U": torch.rand(100, generator=g),
                "V": torch.rand(100, generator=g),
                "mask": torch.randint(0, 15, (256, 256), generator=g).to(torch.uint8)} for _ in range(2)]
        kps = torch.rand(2, 17, 3, generator=g) * torch.tensor([w, h, 2.0])
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        for j, b in enumerate(boxes.long().tolist()):
            masks[j, b[1]:b[3], b[0]:b[2]] = 1
        targets.append({"boxes": boxes.to(device), "dp": dps, "keypoints": kps.to(device), "masks": masks.to(device)})
    return images, targets


def _time(fn, iters: int, warmup: int, device: str) -> list[float]:
    out = []
    for i in range(warmup + iters):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["light", "r50"], default="light")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=None, help="shorter side (default: 512 light, 800 r50)")
    ap.add_argument("--batch", type=int, default=2, help="images per training step")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mask", action="store_true")
    ap.add_argument("--keypoint", action="store_true")
    ap.add_argument("--cascade", action="store_true")
    ap.add_argument("--detections", type=int, default=100, help="detections_per_image (evaluator keeps 20)")
    ap.add_argument("--weights", default=None, help="backbone weights file (torchvision/d2 ResNet)")
    ap.add_argument("--norm", default=None,
                    help="backbone norm; default gn without --weights (a random FrozenBN R-50 overflows)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = args.size or (512 if args.config == "light" else 800)
    make = light_config if args.config == "light" else r50_fpn_config
    cfg = make(min_size_train=(size,), min_size_test=size, mask_on=args.mask, keypoint_on=args.keypoint,
               cascade=args.cascade, detections_per_image=args.detections, backbone_weights=args.weights,
               norm=args.norm or ("gn" if args.weights is None else "frozen_bn"),
               freeze_at=0 if args.weights is None else 2)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = DensePoseRCNN(cfg).to(args.device)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"config={args.config} norm={cfg.norm} device={args.device} size={size} threads={torch.get_num_threads()} "
          f"params={nparam / 1e6:.1f}M mask={args.mask} keypoint={args.keypoint} cascade={args.cascade}")
    images, targets = _inputs(args.batch, size, args.device, g)

    model.eval()
    ndet = []

    def infer():
        with torch.no_grad():
            out = model(images[:1])
        ndet.append(out[0]["boxes"].shape[0])

    t = _time(infer, args.iters, args.warmup, args.device)
    print(f"eval forward (1 image):   mean {statistics.mean(t):.3f} s  median {statistics.median(t):.3f} s  "
          f"({ndet[-1]} detections)")

    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def step():
        losses = model(images, targets)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()

    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = _time(step, args.iters, args.warmup, args.device)
    print(f"train step ({args.batch} images): mean {statistics.mean(t):.3f} s  median {statistics.median(t):.3f} s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS {rss:.0f} MiB")
    if args.device == "cuda":
        print(f"peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
