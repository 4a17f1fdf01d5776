"""Count the torch calls and host syncs of one training forward pass, by the function that makes them.

    python benchmarks/count_step_ops.py --data DIR [--batch 16] [--config configs/light_effnet_real.yaml]
        [--weights densepose/assets/model_light.pt] [--densepose-only] [--gpu-path] [--top 20]

On a GPU each torch call is a kernel launch of some microseconds and each sync (a ``nonzero``, a
tensor read as a Python bool or number) stalls the pipeline, so for a small model these counts,
not the arithmetic, set the time of a step. They are device-independent, so a CPU measures them
for a GPU run. ``DIR`` is a `densepose synth` folder; the batch is the first of its loader (the
config's augmentation, seed 0). Counts come from a ``TorchFunctionMode`` (forward only: autograd's
backward ops are not torch-function calls), keyed by the innermost ``densepose`` function on the
Python stack. ``--gpu-path`` counts the path a GPU takes where it differs from the CPU's (the
RPN's NMS of every image at once, `densepose.modeling.ops.nms_images`).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import sys
import time
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from densepose.data.dataset import build_train_loader  # noqa: E402
from densepose.engine.config import load_config  # noqa: E402
from densepose.engine.start_weights import load_start_weights, with_start_settings  # noqa: E402
from densepose.engine.train import build_train_dataset, freeze_all_but_densepose  # noqa: E402
from densepose.modeling import DensePoseRCNN  # noqa: E402
from densepose.modeling.model_file import read_model_file  # noqa: E402

#: Calls that read a tensor's value on the host (a GPU waits for its queue to drain).
SYNCING = frozenset({"nonzero", "item", "tolist", "cpu", "numpy", "__bool__", "equal", "__int__", "__float__", "__index__",
                     "unique", "bincount", "argwhere", "masked_select"})


class CallCounter(TorchFunctionMode):
    """Counts torch calls and syncing calls per innermost ``densepose/...:function`` frame."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: collections.Counter = collections.Counter()
        self.syncs: collections.Counter = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        frame = sys._getframe(1)
        while frame is not None and "/densepose/" not in frame.f_code.co_filename:
            frame = frame.f_back
        where = (f"{frame.f_code.co_filename.split('/densepose/')[-1]}:{frame.f_code.co_name}"
                 if frame is not None else "(outside densepose)")
        self.calls[where] += 1
        name = getattr(func, "__name__", "")
        boolean_index = (name == "__getitem__" and len(args) > 1 and isinstance(args[1], torch.Tensor)
                         and args[1].dtype == torch.bool)
        if name in SYNCING or boolean_index:
            self.syncs[where] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a `densepose synth` folder")
    ap.add_argument("--config", default="configs/light_effnet_real.yaml")
    ap.add_argument("--weights", default="densepose/assets/model_light.pt", help="model file to start from")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--densepose-only", action="store_true", help="train_only_densepose (the GPU run's setting)")
    ap.add_argument("--gpu-path", action="store_true", help="count the calls of the path taken off the CPU")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    if args.gpu_path:
        from densepose.modeling import rpn

        rpn._nms_images_together = lambda device: True

    cfg = load_config(args.config, [f"data.root={args.data}", "data.num_workers=0", "data.zoom_prob=0.4",
                                    f"solver.ims_per_batch={args.batch}", "model.dp_max_rois_per_image=16"])
    start = read_model_file(args.weights)
    cfg = dataclasses.replace(cfg, model=with_start_settings(dataclasses.replace(cfg.model, backbone_weights=None), start))
    model = DensePoseRCNN(cfg.model)
    load_start_weights(model, start, args.weights)
    if args.densepose_only:
        freeze_all_but_densepose(model)
    model.train()
    loader, _ = build_train_loader(build_train_dataset(cfg), args.batch, 0, 0)
    images, targets = next(iter(loader))

    counter = CallCounter()
    # The training size and the proposal and RoI samples are drawn at random: the same draws, the same counts.
    random.seed(0)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with counter:
        model(images, targets)
    seconds = time.perf_counter() - t0
    total, syncs = sum(counter.calls.values()), sum(counter.syncs.values())
    print(f"{args.batch} images, one training forward pass: {total} torch calls, {syncs} syncing "
          f"({seconds:.1f} s on this CPU)")
    print(f"{'calls':>7} {'syncs':>6}  where")
    for where, n in counter.calls.most_common(args.top):
        print(f"{n:7d} {counter.syncs[where]:6d}  {where}")


if __name__ == "__main__":
    main()
