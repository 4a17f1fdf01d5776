"""Output files of `densepose predict`: IUV/INDS PNGs, NPZ, COCO results records, pictures.

See the package docstring (`densepose.predict`) for the formats.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densepose.cache import atomic_write_bytes
from densepose.data.uv_encoding import encode_uv_data, quantize_iuv
from densepose.errors import UserError
from densepose.io.images import encode_jpeg, encode_png
from densepose.predict.results import PersonResult, boxes_in_picture, sample_maps
from densepose.vis.render import render_layers


@dataclass
class OutputOptions:
    """What `densepose predict` writes, and where.

    ``vis`` holds one tuple of kinds per picture (each tuple layered in one image, see
    `densepose.vis.render.render_layers`); ``video_vis`` the kinds of the annotated MP4 (None: no MP4).
    """

    out_dir: Path
    iuv: bool = True
    inds: bool = True
    npz: bool = False
    json: Path | None = None
    vis: tuple[tuple[str, ...], ...] = (("parts", "boxes"),)
    legend: bool = True
    iuv_layout: str = "detectron"
    atlas: np.ndarray | None = None
    video_vis: tuple[str, ...] | None = ("parts", "boxes")
    frame_outputs: bool = False  # per-frame PNG/NPZ/pictures for videos (opt-in)
    smooth: float = 0.0
    every: int = 1
    max_frames: int | None = None
    image_ids: dict[str, int] | None = None  # file name -> COCO image id (--coco-json)


def vis_name(kinds: tuple[str, ...]) -> str:
    """File-name part of a picture: ``parts`` or ``parts_contours_boxes``."""
    return "_".join(kinds)


def npz_bytes(results: list[PersonResult], height: int, width: int, file_name: str, **extra) -> bytes:
    """The ``<stem>.npz`` content (see the package docstring)."""
    arrays = {
        "boxes": np.array([r.box for r in results], np.float32).reshape(-1, 4),
        "scores": np.array([r.score for r in results], np.float32),
        # NaN for people without one (a model without ModelConfig.dense_score_on)
        "dense_scores": np.array([np.nan if r.dense_score is None else r.dense_score for r in results], np.float32),
        "origins": np.array([r.origin for r in results], np.int32).reshape(-1, 2),
        # The box each person's maps cover (the detection box unless the model grows it).
        "map_boxes": np.array([r.maps_box for r in results], np.float32).reshape(-1, 4),
        "image_size": np.array([height, width], np.int32),
        "file_name": np.array(file_name),
    }
    for k, r in enumerate(results):
        arrays[f"labels_{k}"] = r.labels
        arrays[f"u_{k}"] = r.u.astype(np.float32)
        arrays[f"v_{k}"] = r.v.astype(np.float32)
        for name, conf in r.confidences.items():
            arrays[f"{name}_{k}"] = np.asarray(conf, np.float32)
    arrays.update({key: np.asarray(val) for key, val in extra.items()})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _xywh(box: np.ndarray) -> list[float]:
    """(4,) xyxy -> COCO [x, y, w, h] floats."""
    x0, y0, x1, y1 = (float(b) for b in box)
    return [x0, y0, x1 - x0, y1 - y0]


def written_score(score: float) -> float:
    """A score as the COCO results hold it: five decimals. Two people whose scores round alike tie,
    and the evaluator then keeps their order, so `evaluate_model` rounds as well to score a model
    exactly on what ``predict --json`` writes."""
    return round(float(score), 5)


def coco_records(results: list[PersonResult], image_id: int, file_name: str | None = None) -> list[dict]:
    """COCO DensePose results (official ``uv_shape``/``uv_data`` encoding) for one image."""
    records = []
    for r in results:
        uv_shape, uv_data = encode_uv_data(r.iuv)
        rec = {
            "image_id": int(image_id),
            "category_id": 1,
            # The region the IUV covers (the box the DensePose head read). Unrounded: the evaluator
            # requires uv_shape == (int(h), int(w)) of exactly this bbox.
            "bbox": _xywh(r.maps_box),
            # The dense score ranks people by their maps for DensePose AP; box AP reads detection_score.
            "score": written_score(r.ranking_score),
            "uv_shape": uv_shape,
            "uv_data": uv_data,
        }
        if r.facing is not None:  # an extra key: COCO tools ignore it
            rec["facing"] = round(float(r.facing), 4)
        if r.map_box is not None:  # the detector's own box (an extra key)
            rec["detection_bbox"] = _xywh(r.box)
        if r.dense_score is not None:  # the detector's own score (an extra key)
            rec["detection_score"] = written_score(r.score)
        if file_name is not None:
            rec["file_name"] = file_name
        records.append(rec)
    return records


def iuv_png_array(labels: np.ndarray, u: np.ndarray, v: np.ndarray, layout: str = "detectron") -> np.ndarray:
    """Full-image maps -> uint8 (H, W, 3) RGB pixels of ``*_IUV.png``.

    ``detectron``: [V*255, U*255, I] (what OpenCV stores for the array [I, U*255, V*255], so
    ``cv2.imread`` gives [I, U, V]); ``rgb``: [I, U*255, V*255].
    """
    rgb = quantize_iuv(labels, u, v).transpose(1, 2, 0)
    if layout == "detectron":
        return np.ascontiguousarray(rgb[..., ::-1])
    if layout == "rgb":
        return rgb
    raise UserError(f"IUV layout must be detectron or rgb, not {layout!r}")


def write_file(path: Path, data: bytes) -> Path:
    """Atomic write; an OSError becomes a one-line `UserError` naming the file."""
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
    """Write IUV/INDS/NPZ/pictures of one image or frame; returns the written paths.

    ``maps`` (labels, u, v, inds) are in the results' pixels (the file's size); ``image`` may be a
    smaller decode of it, then the pictures are drawn at the image's size.
    """
    labels, u, v, inds = maps
    h, w = labels.shape
    written = []
    if opts.iuv:
        written.append(write_file(out_dir / f"{stem}_IUV.png", encode_png(iuv_png_array(labels, u, v, opts.iuv_layout))))
    if opts.inds:
        written.append(write_file(out_dir / f"{stem}_INDS.png", encode_png(inds)))
    if opts.npz:
        written.append(write_file(out_dir / f"{stem}.npz", npz_bytes(results, h, w, file_name, **(npz_extra or {}))))
    if opts.vis:
        labels, u, v = sample_maps((labels, u, v), image.shape[:2])
        boxes = boxes_in_picture(results, (h, w), image.shape[:2])
        scores = [r.score for r in results]
        for kinds in opts.vis:
            pic = render_layers(image, labels, u, v, kinds, boxes=boxes, scores=scores, atlas=opts.atlas,
                                legend="present" if opts.legend else None)
            written.append(write_file(out_dir / f"{stem}_{vis_name(kinds)}.jpg", encode_jpeg(pic)))
    return written
