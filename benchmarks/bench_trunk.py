"""Benchmark the light models' trunks on the CPU: ms per forward pass of the bottom-up network.

    python benchmarks/bench_trunk.py [--size 512 704] [--threads 2] [--repeats 7] [--movenet JSON ...]

Rows: the half-width ResNet-18 (``light_config``), the EfficientNet-Lite0 trunk of the bundled
model with its frozen batch norms folded into the convolutions (what ``ConvBN`` does), the same
trunk with the norms run as separate layers (eval-mode ``nn.BatchNorm2d``, never folded: the cost
before the folding), and the folded trunk under bf16 autocast. The Lite0 trunks carry the bundled
model's trained weights (random weights can drive activations into slow denormal numbers); the
ResNet-18 is randomly initialised. ``--movenet`` adds a row for the MobileNetV2 trunk of each MoveNet
graph model given (``densepose.modeling.mobilenet_v2``; its width read from the file), with the
file's weights. The median of ``--repeats`` timed passes after two warm-ups.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from densepose.api import build_model_from_checkpoint, bundled_model_path  # noqa: E402
from densepose.modeling.backbone import FrozenBatchNorm2d, ResNet  # noqa: E402
from densepose.io.tfjs_graph import read_tfjs_graph  # noqa: E402
from densepose.modeling import mobilenet_v2  # noqa: E402
from densepose.modeling.efficientnet_lite import BN_EPS, EfficientNetLite  # noqa: E402


def movenet_trunk(path: str) -> torch.nn.Module:
    """The MobileNetV2 of a MoveNet graph model, at the width of the file's stem."""
    state = mobilenet_v2.convert_movenet_weights(read_tfjs_graph(path))
    stem = state["stem.conv.weight"].shape[0]
    alpha = next(a for a in mobilenet_v2.WIDTHS.values() if mobilenet_v2.scaled_channels(32, a) == stem)
    trunk = mobilenet_v2.MobileNetV2(alpha, lambda c: FrozenBatchNorm2d(c, mobilenet_v2.BN_EPS))
    trunk.load_state_dict(state)
    return trunk


def median_ms(fn, repeats: int) -> float:
    fn(), fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=[512, 704], metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--movenet", nargs="*", default=[], help="MoveNet TF.js model.json files")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(1, 3, *args.size)
    trained = build_model_from_checkpoint(bundled_model_path()).backbone.bottom_up.state_dict()
    folded = EfficientNetLite(lambda c: FrozenBatchNorm2d(c, BN_EPS))
    separate = EfficientNetLite(lambda c: torch.nn.BatchNorm2d(c, eps=BN_EPS))
    folded.load_state_dict(trained)
    separate.load_state_dict(trained, strict=False)  # only BatchNorm2d's num_batches_tracked is missing
    trunks = {
        "ResNet-18 half width (GN), previous bundled model": ResNet("resnet18", "gn", 0, 32),
        "EfficientNet-Lite0, frozen BN folded (bundled model)": folded,
        "EfficientNet-Lite0, BN as separate layers": separate,
    }
    for path in args.movenet:
        trunks[f"MobileNetV2 of {Path(path).name}, frozen BN folded"] = movenet_trunk(path)
    print(f"input {args.size[0]}x{args.size[1]}, {args.threads} threads, median of {args.repeats}")
    with torch.inference_mode():
        for name, trunk in trunks.items():
            trunk.eval()
            print(f"  {name}: {median_ms(lambda: trunk(x), args.repeats):.0f} ms")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            print(f"  EfficientNet-Lite0, folded, bf16 autocast: {median_ms(lambda: folded(x), args.repeats):.0f} ms")


if __name__ == "__main__":
    main()
