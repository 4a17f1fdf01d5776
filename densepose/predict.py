"""`densepose predict`: run a model over images, folders, globs and videos and write the chosen outputs.

Output formats (``<stem>`` is the input file name without extension; written atomically):

``<stem>_IUV.png``
    RGB PNG, 3 x uint8 per pixel: **R = I** (chart 0..24, 0 = background), **G = round(U * 255)**,
    **B = round(V * 255)**. Read it back with `read_iuv_png`. The original Caffe2
    ``infer_simple.py`` wrote the same [I, U, V] array with ``cv2.imwrite``, which stores it as
    BGR: its files have I in the *blue* channel when opened as RGB. Ours opens in any RGB reader
    (Pillow, imageio, browsers) with I in the first channel; read a Caffe2 file with
    ``read_iuv_png(path, caffe2_bgr=True)``.
``<stem>_INDS.png``
    8-bit grayscale PNG: 0 background, k = the k-th person by descending score (1 = best). Where
    people overlap, the higher-scoring person's body is on top (also in the IUV picture). Unlike
    Caffe2's INDS, no person gets index 0.
``<stem>.npz``
    ``boxes`` (N, 4) float32 xyxy, ``scores`` (N,) float32, ``origins`` (N, 2) int32 pixel of each
    person map's top-left corner, ``image_size`` [H, W], ``file_name``, and per person k (0-based,
    by descending score) ``labels_k`` (h, w) uint8, ``u_k``, ``v_k`` (h, w) float32 at integer box
    size. Video frames add ``frame_index`` and ``track_ids``. No pickles: ``np.load`` works with
    the default ``allow_pickle=False``. Read back with `read_npz`.
``results.json`` (``--json``)
    COCO results in the official DensePose encoding (``bbox`` xywh, ``score``, ``uv_shape``,
    ``uv_data`` from `densepose.data.uv_encoding`), plus ``file_name``; ``image_id`` comes from
    ``--coco-json`` (matched by file name), else from the trailing digits of the file name (COCO
    style ``000000000785.jpg`` -> 785), else a running number. Videos get ``<stem>_results.json``
    with ``image_id`` = frame index + 1.
``<stem>_<kind>.jpg``
    Visualisations, see `densepose.vis.render.VIS_KINDS`.
Videos: ``<stem>_<kind>.mp4`` (annotated, H.264) and per-frame outputs in ``<stem>_frames/``
named ``<stem>_f000000_IUV.png`` etc. With ``--smooth W`` (0 <= W < 1) detections are tracked
across frames (greedy IoU >= 0.3 matching) and, per pixel, U and V become
``(1 - W) * current + W * previous`` where the pixel has the same chart and the same track as in
the previous (smoothed) frame; labels and boxes are not smoothed (no lag on silhouettes).
Smoothing changes the full-frame IUV/INDS PNGs, visualisations and MP4; the NPZ and JSON keep the
raw per-frame results.
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from densepose.api import PersonResult, Predictor, compose
from densepose.cache import atomic_write_bytes
from densepose.data.uv_encoding import encode_uv_data, quantize_iuv
from densepose.errors import UserError
from densepose.io.images import encode_jpeg, encode_png, expand_inputs, is_video_path, load_image
from densepose.vis.render import visualize


# ---------------------------------------------------------------------------------------------- readers
def read_iuv_png(path: str | os.PathLike, caffe2_bgr: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``*_IUV.png`` -> (labels (H, W) uint8, u, v (H, W) float32 in [0, 1]).

    ``caffe2_bgr=True`` reads files written by the original Caffe2 tool (I in the blue channel).
    """
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    if caffe2_bgr:
        arr = arr[..., ::-1]
    return arr[..., 0].copy(), arr[..., 1].astype(np.float32) / 255.0, arr[..., 2].astype(np.float32) / 255.0


def read_inds_png(path: str | os.PathLike) -> np.ndarray:
    """``*_INDS.png`` -> (H, W) uint8 instance index (0 background, 1 = best score)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")).copy()


def read_npz(path: str | os.PathLike) -> tuple[list[PersonResult], dict]:
    """``<stem>.npz`` -> (people sorted by descending score, metadata dict of the other arrays)."""
    with np.load(path, allow_pickle=False) as data:
        n = len(data["scores"])
        people = [
            PersonResult(
                data["boxes"][k], float(data["scores"][k]), data[f"labels_{k}"], data[f"u_{k}"], data[f"v_{k}"],
                (int(data["origins"][k][0]), int(data["origins"][k][1])),
            )
            for k in range(n)
        ]
        meta = {key: data[key] for key in data.files if not re.match(r"(labels|u|v)_\d+$", key)}
    return people, meta


# ---------------------------------------------------------------------------------------------- writers
def npz_bytes(results: list[PersonResult], height: int, width: int, file_name: str, **extra) -> bytes:
    import io

    arrays = {
        "boxes": np.array([r.box for r in results], np.float32).reshape(-1, 4),
        "scores": np.array([r.score for r in results], np.float32),
        "origins": np.array([r.origin for r in results], np.int32).reshape(-1, 2),
        "image_size": np.array([height, width], np.int32),
        "file_name": np.array(file_name),
    }
    for k, r in enumerate(results):
        arrays[f"labels_{k}"] = r.labels
        arrays[f"u_{k}"] = r.u.astype(np.float32)
        arrays[f"v_{k}"] = r.v.astype(np.float32)
    arrays.update({key: np.asarray(val) for key, val in extra.items()})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def coco_records(results: list[PersonResult], image_id: int, file_name: str | None = None) -> list[dict]:
    """COCO DensePose results (official ``uv_shape``/``uv_data`` encoding) for one image."""
    records = []
    for r in results:
        x0, y0, x1, y1 = (float(b) for b in r.box)
        uv_shape, uv_data = encode_uv_data(r.iuv)
        rec = {
            "image_id": int(image_id),
            "category_id": 1,
            # Unrounded: the evaluator requires uv_shape == (int(h), int(w)) of exactly this bbox.
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": round(float(r.score), 5),
            "uv_shape": uv_shape,
            "uv_data": uv_data,
        }
        if file_name is not None:
            rec["file_name"] = file_name
        records.append(rec)
    return records


def iuv_png_array(labels: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Full-image maps -> uint8 (H, W, 3) RGB = [I, U*255, V*255] (the ``*_IUV.png`` content)."""
    return quantize_iuv(labels, u, v).transpose(1, 2, 0)


# ---------------------------------------------------------------------------------------------- options
@dataclass
class OutputOptions:
    out_dir: Path
    iuv: bool = True
    inds: bool = True
    npz: bool = False
    json: Path | None = None
    vis: tuple[str, ...] = ("parts",)
    atlas: np.ndarray | None = None
    video_vis: str | None = "parts"  # visualisation used for the annotated MP4; None: no MP4
    frame_outputs: bool = True  # per-frame PNG/NPZ/vis for videos
    smooth: float = 0.0
    every: int = 1
    max_frames: int | None = None
    image_ids: dict[str, int] | None = None  # file name -> COCO image id


@dataclass
class RunSummary:
    ok: int = 0
    failed: list[str] = field(default_factory=list)  # one message per failed input
    written: list[Path] = field(default_factory=list)


def _write(path: Path, data: bytes) -> Path:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or exc.__class__.__name__})") from None
    return path


def write_frame_outputs(
    stem: str,
    out_dir: Path,
    image: np.ndarray,
    results: list[PersonResult],
    maps: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    opts: OutputOptions,
    file_name: str,
    npz_extra: dict | None = None,
) -> list[Path]:
    """Write IUV/INDS/NPZ/visualisations of one image or frame; returns the written paths."""
    labels, u, v, inds = maps
    h, w = image.shape[:2]
    written = []
    if opts.iuv:
        written.append(_write(out_dir / f"{stem}_IUV.png", encode_png(iuv_png_array(labels, u, v))))
    if opts.inds:
        written.append(_write(out_dir / f"{stem}_INDS.png", encode_png(inds)))
    if opts.npz:
        written.append(_write(out_dir / f"{stem}.npz", npz_bytes(results, h, w, file_name, **(npz_extra or {}))))
    if opts.vis:
        boxes = np.array([r.box for r in results], np.float32).reshape(-1, 4)
        scores = [r.score for r in results]
        for kind in opts.vis:
            pic = visualize(image, labels, u, v, kind, boxes=boxes, scores=scores, atlas=opts.atlas)
            written.append(_write(out_dir / f"{stem}_{kind}.jpg", encode_jpeg(pic)))
    return written


# ---------------------------------------------------------------------------------------------- video helpers
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) xyxy -> (N, M) IoU."""
    a = a.reshape(-1, 4)[:, None]
    b = b.reshape(-1, 4)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


class Tracker:
    """Greedy IoU tracker: each detection takes the best unclaimed track of the previous frame."""

    def __init__(self, min_iou: float = 0.3):
        self.min_iou = min_iou
        self.boxes = np.zeros((0, 4), np.float32)
        self.ids: list[int] = []
        self.next_id = 1

    def update(self, boxes: np.ndarray) -> list[int]:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ids = [0] * len(boxes)
        if len(boxes) and len(self.boxes):
            iou = box_iou(boxes, self.boxes)
            taken = set()
            for k in range(len(boxes)):  # detections come sorted by score
                for j in np.argsort(-iou[k]):
                    if iou[k, j] < self.min_iou:
                        break
                    if j not in taken:
                        taken.add(j)
                        ids[k] = self.ids[j]
                        break
        for k in range(len(boxes)):
            if not ids[k]:
                ids[k] = self.next_id
                self.next_id += 1
        self.boxes, self.ids = boxes, ids
        return ids


class UVSmoother:
    """Per-pixel EMA of U and V over frames, only where chart and track are unchanged."""

    def __init__(self, weight: float):
        if not 0.0 <= weight < 1.0:
            raise UserError(f"--smooth must be in [0, 1), got {weight}")
        self.weight = weight
        self.prev: tuple[np.ndarray, ...] | None = None

    def __call__(self, labels: np.ndarray, u: np.ndarray, v: np.ndarray, track_map: np.ndarray):
        if self.prev is not None and self.prev[0].shape == labels.shape:
            pl, pu, pv, pt = self.prev
            same = (labels > 0) & (labels == pl) & (track_map == pt)
            w = self.weight
            u = np.where(same, (1 - w) * u + w * pu, u).astype(np.float32)
            v = np.where(same, (1 - w) * v + w * pv, v).astype(np.float32)
        self.prev = (labels, u, v, track_map)
        return u, v


# ---------------------------------------------------------------------------------------------- runner
def _image_id(path: Path, opts: OutputOptions, counter: list[int]) -> int:
    if opts.image_ids is not None and path.name in opts.image_ids:
        return opts.image_ids[path.name]
    m = re.search(r"(\d+)$", path.stem)
    if m:
        return int(m.group(1))
    counter[0] += 1
    return counter[0]


def _unique_stems(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        stem = p.stem or p.name
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}_{n}")
    return stems


def _log(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def run_video(path: Path, stem: str, predictor: Predictor, opts: OutputOptions, batch_size: int, summary: RunSummary) -> None:
    """Predict every ``opts.every``-th frame of a video. Raises UserError (after writing what
    decoded) when the video breaks midway."""
    from densepose.io.video import Mp4Writer, VideoDecodeError, iter_frames, probe_video

    info = probe_video(path)
    frames_dir = opts.out_dir / f"{stem}_frames"
    writer = None
    if opts.video_vis:
        try:
            writer = Mp4Writer(opts.out_dir / f"{stem}_{opts.video_vis}.mp4", fps=info.fps / max(opts.every, 1))
        except OSError as exc:
            raise UserError(f"cannot write {opts.out_dir / stem}_{opts.video_vis}.mp4 ({exc.strerror or exc})") from None
    tracker = Tracker() if opts.smooth > 0 else None
    smoother = UVSmoother(opts.smooth) if opts.smooth > 0 else None
    records: list[dict] = []
    total = info.num_frames // max(opts.every, 1) if info.num_frames else None
    if opts.max_frames is not None:
        total = min(total or opts.max_frames, opts.max_frames)
    bar = tqdm(total=total, desc=stem, unit="frame", leave=False, file=sys.stderr)
    done = 0
    decode_error: UserError | None = None

    def flush(batch: list[tuple[int, np.ndarray]]) -> None:
        nonlocal done
        all_results = predictor.predict_batch([f for _, f in batch])
        for (index, frame), results in zip(batch, all_results):
            h, w = frame.shape[:2]
            labels, u, v, inds = compose(results, h, w)
            extra = {"frame_index": index}
            if tracker is not None:
                ids = tracker.update(np.array([r.box for r in results], np.float32))
                extra["track_ids"] = np.array(ids, np.int32)
                track_map = np.concatenate([[0], np.array(ids, np.int32)])[inds]
                u, v = smoother(labels, u, v, track_map)
            maps = (labels, u, v, inds)
            fstem = f"{stem}_f{index:06d}"
            if opts.frame_outputs:
                summary.written += write_frame_outputs(fstem, frames_dir, frame, results, maps, opts, f"{path.name}#{index}", extra)
            if opts.json is not None:
                records.extend(coco_records(results, index + 1, f"{path.name}#{index}"))
            if writer is not None:
                boxes = np.array([r.box for r in results], np.float32).reshape(-1, 4)
                writer.write(visualize(frame, labels, u, v, opts.video_vis, boxes=boxes,
                                       scores=[r.score for r in results], atlas=opts.atlas))
            done += 1
            bar.update(1)

    try:
        batch: list[tuple[int, np.ndarray]] = []
        try:
            for index, frame in enumerate(iter_frames(path)):
                if opts.max_frames is not None and done + len(batch) >= opts.max_frames:
                    break
                if index % max(opts.every, 1):
                    continue
                batch.append((index, frame))
                if len(batch) >= batch_size:
                    flush(batch)
                    batch = []
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
            summary.written.append(_write(opts.out_dir / f"{stem}_results.json", json.dumps(records).encode()))
    finally:
        bar.close()
        if writer is not None:
            writer.abort()
    if decode_error is not None:
        raise UserError(f"{decode_error} ({done} frame(s) processed and written)")


def run_predict(
    inputs: list[str], predictor: Predictor, opts: OutputOptions, batch_size: int = 1, progress: bool = True
) -> RunSummary:
    """Process every input; one failing input is reported and the run carries on."""
    paths, notes = expand_inputs(inputs)
    summary = RunSummary()
    for note in notes:
        _log(f"warning: {note}")
    if not paths:
        raise UserError("no input files found: " + "; ".join(notes or inputs))
    stems = dict(zip(paths, _unique_stems(paths)))
    images = [p for p in paths if not is_video_path(p)]
    videos = [p for p in paths if is_video_path(p)]
    records: list[dict] = []
    counter = [0]
    bar = tqdm(total=len(paths), desc="predict", unit="file", disable=not progress, file=sys.stderr)

    def fail(path: Path, msg: str) -> None:
        text = msg if msg.startswith(str(path)) else f"{path}: {msg}"
        summary.failed.append(text)
        _log(f"error: {text}")

    for start in range(0, len(images), max(batch_size, 1)):
        loaded = []
        for path in images[start : start + max(batch_size, 1)]:
            try:
                image, img_notes = load_image(path)
                for note in img_notes:
                    _log(f"note: {path}: {note}")
                loaded.append((path, image))
            except UserError as exc:
                fail(path, str(exc))
                bar.update(1)
        if not loaded:
            continue
        try:
            batch_results = predictor.predict_batch([im for _, im in loaded])
        except (RuntimeError, MemoryError, ValueError) as exc:
            for path, _ in loaded:
                fail(path, f"inference failed ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            bar.update(len(loaded))
            continue
        for (path, image), results in zip(loaded, batch_results):
            try:
                h, w = image.shape[:2]
                summary.written += write_frame_outputs(stems[path], opts.out_dir, image, results, compose(results, h, w), opts, path.name)
                if opts.json is not None:
                    records.extend(coco_records(results, _image_id(path, opts, counter), path.name))
                summary.ok += 1
            except UserError as exc:
                fail(path, str(exc))
            bar.update(1)
    for path in videos:
        try:
            run_video(path, stems[path], predictor, opts, batch_size, summary)
            summary.ok += 1
        except UserError as exc:
            fail(path, str(exc))
        bar.update(1)
    bar.close()
    if opts.json is not None and images:
        try:
            summary.written.append(_write(opts.json, json.dumps(records).encode()))
        except UserError as exc:
            summary.failed.append(str(exc))
            _log(f"error: {exc}")
    return summary
