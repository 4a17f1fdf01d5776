"""Synthetic data generation speed: per-stage CPU times (1 process) and end-to-end images/s (K workers).

    python benchmarks/bench_synth.py [--size 512] [--people 2] [--num 100] [--workers 2]

End to end runs ``densepose synth``'s own path (render, JPEG + npz encoding, atomic writes) in
K worker processes. Besides wall-clock throughput it prints the CPU seconds per image measured
inside the workers, the figure to trust on a machine shared with other jobs: K dedicated cores
give K / (CPU s per image) images/s.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from densepose.cli.synth import default_backgrounds
from densepose.synth import writer
from densepose.synth.appearance import list_backgrounds
from densepose.synth.writer import RunSettings, write_image


def _timed_work(job) -> tuple[float, float]:
    c, t = time.process_time(), time.perf_counter()
    writer._work(job)
    return time.process_time() - c, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--people", type=int, default=2, help="people per image (exactly)")
    ap.add_argument("--num", type=int, default=100, help="images for the end-to-end run")
    ap.add_argument("--stages", type=int, default=20, help="images for the per-stage breakdown")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    photos = list_backgrounds(default_backgrounds())
    settings = RunSettings(num=args.num, size=args.size, seed=1234, max_people=args.people, min_people=args.people)

    import torch

    from densepose.synth.scene import SynthConfig, Synthesizer

    torch.set_num_threads(1)  # as in the writer's workers
    synth = Synthesizer(SynthConfig(height=args.size, width=args.size, max_people=args.people,
                                    min_people=args.people, photos=photos))
    synth.render(0, 0)  # warm caches
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.stages):
            sample = synth.render(99, i, timings)
            c = time.process_time()
            write_image(Path(tmp), settings, i, sample)
            timings["encode + write"] = timings.get("encode + write", 0.0) + time.process_time() - c
    total = sum(timings.values())
    print(f"per-stage CPU time, 1 process, {args.size}px, {args.people} people/image ({args.stages} images):")
    for k, v in timings.items():
        print(f"  {k:26s} {1000 * v / args.stages:7.1f} ms")
    print(f"  {'total':26s} {1000 * total / args.stages:7.1f} ms  -> {args.stages / total:.1f} img/s per core")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        writer.check_settings(out, settings)
        jobs = [(out, settings, k) for k in range(args.num)]
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers, initializer=writer._init_worker, initargs=(settings, photos)) as pool:
            pool.map(_timed_work, jobs[: args.workers], chunksize=1)  # start-up and warm-up excluded
            t = time.perf_counter()
            res = pool.map(_timed_work, jobs, chunksize=4)
            wall = time.perf_counter() - t
    cpu = sum(r[0] for r in res) / args.num
    print(f"end to end, {args.workers} worker processes, {args.num} images: {args.num / wall:.1f} img/s wall-clock; "
          f"{1000 * cpu:.0f} CPU-ms/image -> {args.workers / cpu:.1f} img/s on {args.workers} dedicated cores")


if __name__ == "__main__":
    main()
