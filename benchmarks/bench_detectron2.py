"""CPU speed of a detectron2 DensePose model: PyTorch eager vs ONNX Runtime, ms/image and peak memory.

    python benchmarks/bench_detectron2.py                       # R_50_FPN_s1x, random weights, 2 threads
    python benchmarks/bench_detectron2.py --model model_final_162be9.pkl --image photo.jpg
    python benchmarks/bench_detectron2.py --runtime torch --flip-tables UV_symmetry_transforms.mat   # flip test

Both runtimes get the same (3, H, W) photo and resize it themselves to shorter side 800 (longer <=
1333), the exported graph inside the graph. Each runtime runs in its own process (peak RSS =
``ru_maxrss`` of that process, model and export included). With random weights (no ``--model``)
every proposal scores about the same, so the number of people is fixed with ``--persons`` (the box
head keeps that many) to mimic a photo of a few people: the DensePose head's cost grows per person.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _model(args):
    from densepose.modeling.detectron2 import Detectron2DensePoseRCNN, Variant, load_detectron2_model

    model = load_detectron2_model(args.model) if args.model else Detectron2DensePoseRCNN(Variant()).eval()
    if not args.model:
        model.cfg.score_thresh_test = 0.0
        model.cfg.detections_per_image = args.persons
    return model


def _image(args) -> torch.Tensor:
    from densepose.io.images import image_to_array
    if args.image:
        arr = image_to_array(args.image)
    else:
        arr = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).float()


def _time(fn, repeats: int) -> tuple[float, float, float, int]:
    """(median wall ms, min wall ms, median process CPU ms, people). CPU time (all threads) is the
    figure to trust on a busy machine: other processes stretch wall time, not CPU time."""
    out = fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu), int(out)


def run_one(args) -> dict:
    torch.set_num_threads(args.threads)
    model = _model(args)
    image = _image(args)
    h, w = image.shape[1:]
    if args.runtime == "torch":
        flip_uv = None
        if args.flip_tables:
            from densepose.modeling.flip_test import flip_tables

            flip_uv = flip_tables(model.chart, args.flip_tables)

        def fn():
            with torch.inference_mode():
                return model([image], flip_uv=flip_uv)[0]["boxes"].shape[0]
    else:
        import onnxruntime as ort

        from densepose.engine.export_graph import export_graph

        path = Path(tempfile.mkdtemp()) / "model.onnx"
        t0 = time.perf_counter()
        export_graph(model, path, "onnx", example=image)
        export_s = time.perf_counter() - t0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {"image": image.numpy()}

        def fn():
            return session.run(["boxes"], feed)[0].shape[0]
    median, best, cpu, people = _time(fn, args.repeats)
    result = {"runtime": args.runtime, "flip": bool(args.flip_tables), "image": [h, w], "people": people, "ms_median": round(median, 1),
              "ms_min": round(best, 1), "cpu_ms_median": round(cpu, 1), "load_avg_1min": os.getloadavg()[0],
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "threads": args.threads}
    if args.runtime == "onnx":
        result["export_s"] = round(export_s, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="detectron2 .pkl/.pth (default: R_50_FPN_s1x with random weights)")
    p.add_argument("--image", help="photo (default: random 640x480)")
    p.add_argument("--persons", type=int, default=3, help="people kept with random weights")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--runtime", choices=("torch", "onnx", "both"), default="both")
    p.add_argument("--flip-tables", help="UV_symmetry_transforms.mat: time the flip test (PyTorch only)")
    args = p.parse_args()
    if args.flip_tables and args.runtime != "torch":
        p.error("--flip-tables times the flip test, which the exported graph does not have: add --runtime torch")
    if args.runtime != "both":
        print(json.dumps(run_one(args)), flush=True)
        return
    for runtime in ("torch", "onnx"):  # separate processes: separate peak memory
        cmd = [sys.executable, __file__, *sys.argv[1:], "--runtime", runtime]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
