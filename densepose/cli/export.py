"""``densepose export``: a training checkpoint (or run folder) -> a model file for predict/load.

    densepose export runs/light_synth --out model.pt [--test-sizes 384 256] [--set drop_group_boxes=true]
    densepose export runs/dp_only --densepose-onto densepose/assets/model_light.pt --out model.pt
    densepose export runs/tuned --onto densepose/assets/model_light.pt --out model.pt
    densepose export model_final_162be9.pkl --format onnx --out densepose_r50.onnx   # or a model file; torchscript
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="training checkpoint -> model file",
                              description="Write the model file (config + weights) of a training checkpoint or "
                              "of the newest checkpoint of a run folder; `densepose predict --model` reads it.")
    p.add_argument("checkpoint", help="model_XXXXXXX.pt of a run, the run folder, or a model file (to set its "
                   "--test-sizes); with --format torchscript|onnx: a model file or a detectron2 model-zoo .pkl/.pth")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--format", choices=("model", "torchscript", "onnx"), default="model",
                   help="model: a model file (default); torchscript / onnx: the whole detector as one graph, "
                   "RGB image of any size -> boxes, scores, per-person labels/U/V (docs/DETECTRON2.md)")
    p.add_argument("--test-sizes", type=int, nargs="+", metavar="SIDE",
                   help="shorter sides the model file tests at; detections of all sizes are merged "
                   "(default: the run's min_size_test and extra_test_sizes)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                   help="model settings to write into the model file, e.g. drop_group_boxes=true "
                   "multisize_max_height=192 (fields of densepose.modeling.config.ModelConfig)")
    p.add_argument("--half", action="store_true",
                   help="store every weight as float16: half the file, each weight within 2^-11 of its value "
                   "(weights that float16 holds exactly are always stored so)")
    onto = p.add_mutually_exclusive_group()
    onto.add_argument("--onto", metavar="MODEL_FILE",
                      help="write MODEL_FILE again with every weight of the checkpoint (a run started from it "
                      "with --weights); its config and settings (test sizes, thresholds, box rules) stay")
    onto.add_argument("--densepose-onto", metavar="MODEL_FILE",
                      help="write MODEL_FILE again with the DensePose branch of the checkpoint (e.g. a "
                      "train_only_densepose run started from it); its settings and other weights stay")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from densepose.engine.export import export_model
    from densepose.errors import UserError

    if args.format != "model":
        if args.test_sizes or args.settings or args.onto or args.densepose_onto or args.half:
            raise UserError("--test-sizes, --set, --half, --onto and --densepose-onto write a model file "
                            "(--format model); a graph tests at one size")
        from densepose.engine.export_graph import export_model_graph

        names = export_model_graph(args.checkpoint, args.out, args.format)
        size = Path(args.out).stat().st_size / 2**20
        print(f"wrote {args.out} ({args.format}, {size:.1f} MiB): image (3, H, W) RGB 0..255 -> {', '.join(names)}")
        return 0
    onto = args.onto or args.densepose_onto
    if onto:
        flag = "--onto" if args.onto else "--densepose-onto"
        if args.test_sizes or args.settings or args.half:
            raise UserError(f"{flag} keeps the model file's settings: write them with a second "
                            "`densepose export MODEL --set ...` (or --half)")
        from densepose.engine.export import export_onto

        meta = export_onto(args.checkpoint, onto, args.out, densepose_only=bool(args.densepose_onto))
        taken = meta["densepose_branch" if args.densepose_onto else "weights_from"]
        what = "the DensePose branch" if args.densepose_onto else "the weights"
        print(f"wrote {args.out}: {onto} with {what} of {taken['source']} (iteration {taken['iteration']})")
        return 0
    meta = export_model(args.checkpoint, args.out, args.test_sizes, args.settings, half=args.half)
    size = Path(args.out).stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB, {meta['parameters'] / 1e6:.2f} M parameters, "
          f"iteration {meta['iteration']} of {meta['source']})")
    return 0
