"""``densepose export``: a training checkpoint (or run folder) -> a model file for predict/load.

    densepose export runs/light_synth --out model.pt
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="training checkpoint -> model file",
                              description="Write the model file (config + weights) of a training checkpoint or "
                              "of the newest checkpoint of a run folder; `densepose predict --model` reads it.")
    p.add_argument("checkpoint", help="model_XXXXXXX.pt of a run, or the run folder")
    p.add_argument("--out", required=True, help="model file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine.export import export_model

    meta = export_model(args.checkpoint, args.out)
    size = Path(args.out).stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB, {meta['parameters'] / 1e6:.2f} M parameters, "
          f"iteration {meta['iteration']} of {meta['source']})")
    return 0
