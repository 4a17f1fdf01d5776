"""The `densepose predict` runner: inputs -> predictor -> output files, one console line per input."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from densepose.errors import UserError
from densepose.io.images import expand_inputs, is_video_path, read_image
from densepose.predict.image_ids import assign_image_ids
from densepose.predict.predictor import Predictor
from densepose.predict.results import compose
from densepose.predict.tracking import Tracker, UVSmoother
from densepose.predict.writers import OutputOptions, coco_records, vis_name, write_file, write_frame_outputs
from densepose.progress import Progress
from densepose.vis.render import render_layers


@dataclass
class RunSummary:
    ok: int = 0
    failed: list[str] = field(default_factory=list)  # one message per failed input
    written: list[Path] = field(default_factory=list)
    images: int = 0  # images and video frames run through the model
    people: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "inference": 0.0, "write": 0.0})

    def lines(self, out_dir: Path, wall: float) -> list[str]:
        """The closing summary: counts, time per image by stage, where the files went."""
        n = max(self.images, 1)
        per = ", ".join(f"{1e3 * s / n:.0f} ms {k}" for k, s in self.seconds.items())
        return [
            f"{self.ok} input(s) done, {len(self.failed)} failed; {self.images} image(s)/frame(s), {self.people} people found",
            f"time: {wall:.1f} s in all; per image or frame {per}",
            f"{len(self.written)} file(s) written to {out_dir}",
        ]


def unique_out_dir(path: str | Path, exist_ok: bool = False) -> Path:
    """``path`` itself when it is new, empty or ``exist_ok``; else the first free ``path2``, ``path3``, ..."""
    path = Path(path)
    if exist_ok or not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}{n}")).exists():
        n += 1
    return candidate


def _unique_stems(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        stem = p.stem or p.name
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}_{n}")
    return stems


def _people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


def run_video(path: Path, stem: str, predictor: Predictor, opts: OutputOptions, batch_size: int, summary: RunSummary,
              progress: bool = True) -> str:
    """Predict every ``opts.every``-th frame of a video; returns its console line. Raises UserError
    (after writing what decoded) when the video breaks midway."""
    from densepose.io.video import Mp4Writer, VideoDecodeError, iter_frames, probe_video

    info = probe_video(path)
    frames_dir = opts.out_dir / f"{stem}_frames"
    writer = None
    if opts.video_vis:
        target = opts.out_dir / f"{stem}_{vis_name(opts.video_vis)}.mp4"
        try:
            writer = Mp4Writer(target, fps=info.fps / max(opts.every, 1))
        except OSError as exc:
            raise UserError(f"cannot write {target} ({exc.strerror or exc})") from None
    tracker = Tracker() if opts.smooth > 0 else None
    smoother = UVSmoother(opts.smooth) if opts.smooth > 0 else None
    records: list[dict] = []
    total = info.num_frames // max(opts.every, 1) if info.num_frames else None
    if opts.max_frames is not None:
        total = min(total or opts.max_frames, opts.max_frames)
    bar = Progress(total, stem, "frame", enabled=progress, leave=False)
    done = people = 0
    t_infer = 0.0
    decode_error: UserError | None = None

    def flush(batch: list[tuple[int, np.ndarray]]) -> None:
        nonlocal done, people, t_infer
        t0 = time.perf_counter()
        all_results = predictor.predict_batch([f for _, f in batch])
        t1 = time.perf_counter()
        t_infer += t1 - t0
        summary.seconds["inference"] += t1 - t0
        for (index, frame), results in zip(batch, all_results):
            h, w = frame.shape[:2]
            labels, u, v, inds = compose(results, h, w)
            extra = {"frame_index": index}
            if tracker is not None:
                ids = tracker.update(np.array([r.box for r in results], np.float32))
                extra["track_ids"] = np.array(ids, np.int32)
                track_map = np.concatenate([[0], np.array(ids, np.int32)])[inds]
                u, v = smoother(labels, u, v, track_map)
            fstem = f"{stem}_f{index:06d}"
            if opts.frame_outputs:
                summary.written += write_frame_outputs(fstem, frames_dir, frame, results, (labels, u, v, inds), opts,
                                                       f"{path.name}#{index}", extra)
            if opts.json is not None:
                records.extend(coco_records(results, index + 1, f"{path.name}#{index}"))
            if writer is not None:
                boxes = np.array([r.box for r in results], np.float32).reshape(-1, 4)
                writer.write(render_layers(frame, labels, u, v, opts.video_vis, boxes=boxes, scores=[r.score for r in results],
                                           atlas=opts.atlas, legend="all" if opts.legend else None))
            done += 1
            people += len(results)
            bar.update(1)
        summary.seconds["write"] += time.perf_counter() - t1

    try:
        batch: list[tuple[int, np.ndarray]] = []
        try:
            t_read = time.perf_counter()
            for index, frame in enumerate(iter_frames(path)):
                if opts.max_frames is not None and done + len(batch) >= opts.max_frames:
                    break
                if index % max(opts.every, 1):
                    continue
                batch.append((index, frame))
                if len(batch) >= batch_size:
                    summary.seconds["read"] += time.perf_counter() - t_read
                    flush(batch)
                    batch = []
                    t_read = time.perf_counter()
        except VideoDecodeError as exc:
            decode_error = exc
        if batch:
            flush(batch)
        if writer is not None:
            writer.close()
            if writer.frames:
                summary.written.append(writer.path)
            writer = None
        if opts.json is not None:
            summary.written.append(write_file(opts.out_dir / f"{stem}_results.json", json.dumps(records).encode()))
    finally:
        bar.close()
        if writer is not None:
            writer.abort()
        summary.images += done
        summary.people += people
    if decode_error is not None:
        raise UserError(f"{decode_error} ({done} frame(s) processed and written)")
    return (f"{info.width}x{info.height}, {done} frame(s), {people / max(done, 1):.1f} people/frame, "
            f"{1e3 * t_infer / max(done, 1):.0f} ms/frame")


def _quiet(msg: str) -> None:
    pass


def run_predict(
    inputs: list[str],
    predictor: Predictor,
    opts: OutputOptions,
    batch_size: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Process every input; one failing input is reported and the run carries on.

    ``log`` receives one line per input (``image 2/6 path: 640x480, 2 people, 143 ms``) and notes;
    default: stderr when ``progress``, else nothing. Errors and warnings always go to stderr.
    """
    log = log or (_stderr if progress else _quiet)
    paths, notes = expand_inputs(inputs)
    summary = RunSummary()
    for note in notes:
        _stderr(f"warning: {note}")
    if not paths:
        raise UserError("no input files found: " + "; ".join(notes or inputs))
    stems = dict(zip(paths, _unique_stems(paths)))
    images = [p for p in paths if not is_video_path(p)]
    videos = [p for p in paths if is_video_path(p)]
    image_ids: dict[Path, int] = {}
    if opts.json is not None:
        image_ids, id_notes = assign_image_ids(images, opts.image_ids)
        for note in id_notes:
            log(f"note: {note}")
    records: list[dict] = []
    count = len(paths)
    position = {p: k + 1 for k, p in enumerate(images + videos)}

    def fail(path: Path, msg: str) -> None:
        text = msg if msg.startswith(str(path)) else f"{path}: {msg}"
        summary.failed.append(text)
        _stderr(f"error: {text}")

    step = max(batch_size, 1)
    for start in range(0, len(images), step):
        loaded = []
        t0 = time.perf_counter()
        for path in images[start: start + step]:
            try:
                decoded = read_image(path)
                for note in decoded.notes:
                    log(f"note: {path}: {note}")
                loaded.append((path, decoded))
            except UserError as exc:
                fail(path, str(exc))
        t1 = time.perf_counter()
        summary.seconds["read"] += t1 - t0
        if not loaded:
            continue
        try:
            batch_results = predictor.predict_batch([d.array for _, d in loaded], [d.original_size for _, d in loaded])
        except (RuntimeError, MemoryError, ValueError) as exc:
            for path, _ in loaded:
                fail(path, f"inference failed ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            continue
        t2 = time.perf_counter()
        summary.seconds["inference"] += t2 - t1
        per_image_ms = 1e3 * (t2 - t1) / len(loaded)
        for (path, decoded), results in zip(loaded, batch_results):
            tw = time.perf_counter()
            try:
                h, w = decoded.original_size
                summary.written += write_frame_outputs(stems[path], opts.out_dir, decoded.array, results,
                                                       compose(results, h, w), opts, path.name)
                if opts.json is not None:
                    records.extend(coco_records(results, image_ids[path], path.name))
                summary.ok += 1
                summary.images += 1
                summary.people += len(results)
                batch_note = f" (batch of {len(loaded)})" if len(loaded) > 1 else ""
                log(f"image {position[path]}/{count} {path}: {w}x{h}, {_people(len(results))}, {per_image_ms:.0f} ms{batch_note}")
            except UserError as exc:
                fail(path, str(exc))
            summary.seconds["write"] += time.perf_counter() - tw
    for path in videos:
        try:
            line = run_video(path, stems[path], predictor, opts, batch_size, summary, progress)
            summary.ok += 1
            log(f"video {position[path]}/{count} {path}: {line}")
        except UserError as exc:
            fail(path, str(exc))
    if opts.json is not None and images:
        try:
            summary.written.append(write_file(opts.json, json.dumps(records).encode()))
        except UserError as exc:
            summary.failed.append(str(exc))
            _stderr(f"error: {exc}")
    return summary


def _stderr(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)
