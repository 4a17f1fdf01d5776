"""``densepose train``: train DensePose-RCNN from a YAML config.

    densepose train --config configs/light_synth.yaml --data DIR --out runs/light [--resume] [key.sub=value ...]
    densepose train --config configs/light_synth.yaml --data DIR --out runs/ft --weights densepose/assets/model_light.pt
    torchrun --nproc_per_node 8 -m densepose.cli.main train --config configs/r50_fpn_synth.yaml ...
"""
from __future__ import annotations

import argparse
import logging
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model",
        description="Train DensePose-RCNN. Settings come from --config, then from key.sub=value overrides "
        "(e.g. solver.base_lr=0.005 solver.max_iter=2000 data.num_workers=4).",
    )
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("--data", help="dataset folder with annotations.json and images/ (sets data.root)")
    p.add_argument("--out", help="run folder for checkpoints and metrics (sets out)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
    p.add_argument("--weights", metavar="MODEL_FILE",
                   help="start from the weights of a model file (fine-tuning; e.g. the bundled "
                   "densepose/assets/model_light.pt with model_preset light); sets weights")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine import load_config, train

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    if args.out:
        overrides.append(f"out={args.out}")
    if args.weights:
        overrides.append(f"weights={args.weights}")
    cfg = load_config(args.config, overrides)
    # Under torchrun only rank 0 talks; the others report warnings and errors.
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():  # the periodic loss lines print above the progress bar
        train(cfg, resume=args.resume)
    return 0
