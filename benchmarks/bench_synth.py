"""Synthetic data generation speed: per-stage CPU times (1 process) and end-to-end images/s (K workers).

    python benchmarks/bench_synth.py [--size 512] [--people 2] [--num 100] [--workers 2] [--plain]

The realistic mode (default) renders with the shared asset folders when they exist (HDR maps,
MakeHuman clothes, background photos; see ``densepose synth --help``), as ``densepose synth``
does, with its default fractions of hard negatives and crowds; ``--people`` sets the people of
the ordinary images.

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

from threadpoolctl import threadpool_limits

from densepose.cli.synth import default_backgrounds, shared_data
from densepose.synth import writer
from densepose.synth.appearance import list_backgrounds
from densepose.synth.hdri import list_hdris
from densepose.synth.writer import RunSettings, synth_config, write_image


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
    ap.add_argument("--plain", action="store_true", help="the plain mode")
    args = ap.parse_args()
    photos = list_backgrounds(default_backgrounds())
    hdris = list_hdris(shared_data("hdri"))
    assets = None if args.plain else shared_data("makehuman")
    settings = RunSettings(num=args.num, size=args.size, seed=1234, max_people=args.people, min_people=args.people,
                           plain=args.plain)
    mode = "plain" if args.plain else f"realistic ({len(hdris)} HDR maps, assets: {assets or 'procedural only'})"

    import torch

    from densepose.synth.scene import Synthesizer

    torch.set_num_threads(1)  # as in the writer's workers
    threadpool_limits(1, user_api="blas")
    synth = Synthesizer(synth_config(settings, photos, hdris, assets))
    synth.render(0, 0)  # warm caches
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.stages):
            sample = synth.render(99, i, timings)
            c = time.process_time()
            write_image(Path(tmp), settings, i, sample)
            timings["encode + write"] = timings.get("encode + write", 0.0) + time.process_time() - c
    total = sum(timings.values())
    print(f"{mode}: per-stage CPU time, 1 process, {args.size}px, {args.people} people/image ({args.stages} images):")
    for k, v in timings.items():
        print(f"  {k:26s} {1000 * v / args.stages:7.1f} ms")
    print(f"  {'total':26s} {1000 * total / args.stages:7.1f} ms  -> {args.stages / total:.1f} img/s per core")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        writer.check_settings(out, settings)
        jobs = [(out, settings, k) for k in range(args.num)]
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers, initializer=writer._init_worker,
                         initargs=(settings, photos, hdris, assets)) as pool:
            pool.map(_timed_work, jobs[: args.workers], chunksize=1)  # start-up and warm-up excluded
            t = time.perf_counter()
            res = pool.map(_timed_work, jobs, chunksize=4)
            wall = time.perf_counter() - t
    cpu = sum(r[0] for r in res) / args.num
    print(f"end to end, {args.workers} worker processes, {args.num} images: {args.num / wall:.1f} img/s wall-clock; "
          f"{1000 * cpu:.0f} CPU-ms/image -> {args.workers / cpu:.1f} img/s on {args.workers} dedicated cores")


if __name__ == "__main__":
    main()
