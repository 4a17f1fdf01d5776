"""Detection results: the official COCO results JSON, and our packed NPZ alternative.

COCO results JSON (the challenge / detectron2 format): a list with one record per detection,
``image_id``, ``category_id``, ``bbox`` (xywh), ``score``, ``uv_shape`` ([3, H, W]) and ``uv_data``
(``densepose.data.uv_encoding``), optionally ``segmentation`` and ``keypoints`` for mask and
keypoint AP, ``detection_bbox`` (xywh): the detector's box, which box AP then reads, when
``bbox`` is the larger region a model's DensePose maps cover, and ``detection_score``: the
detector's score, which box AP then reads, when ``score`` ranks people by their maps
(`densepose.modeling.dense_score`; ``densepose predict`` writes both).
The IUV array of a detection covers its box at integer size:
``H = max(int(h), 1)``, ``W = max(int(w), 1)`` (what detectron2's post-processing produces).

NPZ alternative (no PNG decoding, so evaluation is several times faster), arrays:

=============  ==============  ===============================================================
name           shape, dtype    meaning
=============  ==============  ===============================================================
image_id       (N,) int64      image of each detection
category_id    (N,) int64      optional, default 1
bbox           (N, 4) float64  xywh in pixels
score          (N,) float64    detection score
uv_shape       (N, 2) int64    (H, W) of each detection's IUV array
uv_offset      (N,) int64      start of detection k's IUV inside ``iuv``
iuv            (T,) uint8      all IUV arrays, each (3, H, W) C-order ([I, U*255, V*255]), packed
keypoints      (N, 17, 3)      optional, float64 (x, y, score) for keypoint AP
=============  ==============  ===============================================================

``write_results_npz`` writes it; the file is stored uncompressed so that it can be memory-mapped.
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densepose.cache import AtomicPath
from densepose.data.uv_encoding import decode_uv_data
from densepose.errors import UserError
from densepose.io.json_files import read_json
from densepose.surface.parts import NUM_CHARTS


@dataclass
class Detections:
    """Detections of a results file, as arrays; IUV decoded on demand (``iuv(k)``).

    Attributes:
        source: file name (or "<memory>") used in error messages.
        image_id, category_id: (N,) int64.
        bbox: (N, 4) float64 xywh.
        score: (N,) float64.
        uv_hw: (N, 2) int64 (H, W) of each IUV array; all -1 when the results carry no DensePose.
        uv_data: N base64 PNG strings (JSON input) or None.
        packed: (T,) uint8 packed IUV buffer (NPZ input) or None; ``offset`` (N,) its starts.
        extras: per detection, the fields for pycocotools (``segmentation``, ``keypoints``, and
            ``detection_bbox``, the box that box AP reads when ``bbox`` is a grown DensePose box, and
            ``detection_score``, the score it reads when ``score`` is a dense score) or None.
    """

    source: str
    image_id: np.ndarray
    category_id: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    uv_hw: np.ndarray
    uv_data: list[str] | None = None
    packed: np.ndarray | None = None
    offset: np.ndarray | None = None
    extras: list[dict] | None = None
    _checked: np.ndarray | None = field(default=None, repr=False)
    _flat: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.image_id)

    @property
    def has_densepose(self) -> bool:
        return self.uv_data is not None or self.packed is not None

    def where(self, k: int) -> str:
        return f"{self.source}: result #{k} (image_id {int(self.image_id[k])})"

    def iuv(self, k: int) -> np.ndarray:
        """Detection k's uint8 (3, H, W) [I, U*255, V*255]; raises UserError if it is corrupt."""
        return self.iuvs([k])[0]

    def iuvs(self, ks) -> list[np.ndarray]:
        """``iuv(k)`` for each k of ``ks`` (views into the buffer for NPZ results)."""
        if self._checked is None:
            self._checked = np.zeros(len(self), dtype=bool)
        ks = np.asarray(ks, dtype=np.int64).reshape(-1)
        if self.packed is None and self.uv_data is None and len(ks):
            raise UserError(f"{self.source}: the results carry no DensePose output (uv_data)")
        if self.packed is not None and self._flat is None:  # a plain ndarray view: slicing a np.memmap costs a Python call
            self._flat = self.packed.view(np.ndarray)
        out = []
        for k, (h, w), start, checked in zip(ks.tolist(), self.uv_hw[ks].tolist(),
                                             (self.offset[ks] if self.packed is not None else ks).tolist(),
                                             self._checked[ks].tolist()):
            if self.packed is not None:
                arr = self._flat[start : start + 3 * h * w].reshape(3, h, w)
            else:
                try:
                    arr = decode_uv_data(self.uv_data[k], (3, h, w))
                except ValueError as exc:
                    raise UserError(f"{self.where(k)}: {exc}") from None
            if not checked:
                top = int(arr[0].max()) if arr.size else 0
                if top > NUM_CHARTS:
                    raise UserError(f"{self.where(k)}: part index I = {top} in the IUV array, must be 0..{NUM_CHARTS}")
                self._checked[k] = True
            out.append(arr)
        return out

    def coco_records(self) -> list[dict]:
        """Records for pycocotools (no IUV payload), one per detection."""
        out = []
        for k in range(len(self)):
            rec = {
                "image_id": int(self.image_id[k]),
                "category_id": int(self.category_id[k]),
                "bbox": [float(v) for v in self.bbox[k]],
                "score": float(self.score[k]),
            }
            if self.extras is not None and self.extras[k]:
                rec.update(self.extras[k])
            out.append(rec)
        return out


def expected_uv_hw(bbox: np.ndarray) -> np.ndarray:
    """(N, 4) xywh -> (N, 2) int64 (H, W) = (max(int(h), 1), max(int(w), 1)), the IUV array size."""
    bbox = np.asarray(bbox, dtype=np.float64).reshape(-1, 4)
    return np.maximum(np.trunc(bbox[:, [3, 2]]), 1).astype(np.int64)


def load_results(results, source: str | None = None) -> Detections:
    """Results from a path (``.json`` or ``.npz``), a list of records, or ``Detections`` (returned as is).

    Raises:
        UserError: unreadable file, malformed record, inconsistent IUV shapes.
    """
    if isinstance(results, Detections):
        return results
    if isinstance(results, (str, os.PathLike)):
        path = Path(results)
        if path.suffix.lower() == ".npz" and path.is_file():
            return _load_npz(path)
        return parse_results(read_json(path, "results file"), str(path))
    return parse_results(results, source or "<memory>")


def _xywh_box(box, where: str, name: str) -> list:
    """A record's [x, y, w, h] (``name``), checked: 4 finite numbers, w and h >= 0."""
    if not (isinstance(box, list) and len(box) == 4 and all(_is_num(v) for v in box)):
        raise UserError(f"{where}: {name} must be 4 numbers [x, y, w, h], got {box!r}"[:300])
    if not all(math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0:
        raise UserError(f"{where}: {name} must be finite with w, h >= 0, got {box!r}")
    return box


def parse_results(records, source: str = "<memory>") -> Detections:
    """Validate a list of COCO result records (see the module docstring)."""
    if not isinstance(records, list):
        raise UserError(f"{source}: results must be a JSON list of detection records")
    n = len(records)
    image_id = np.zeros(n, dtype=np.int64)
    category_id = np.zeros(n, dtype=np.int64)
    bbox = np.zeros((n, 4), dtype=np.float64)
    score = np.zeros(n, dtype=np.float64)
    uv_hw = np.full((n, 2), -1, dtype=np.int64)
    with_uv = [isinstance(r, dict) and "uv_data" in r for r in records]
    dense = any(with_uv)
    uv_data: list[str] | None = [] if dense else None
    extras: list[dict] = []
    for k, rec in enumerate(records):
        where = f"{source}: result #{k}"
        if not isinstance(rec, dict):
            raise UserError(f"{where}: must be an object")
        where = f"{where} (image_id {rec.get('image_id')})"
        for name in ("image_id", "bbox", "score"):
            if name not in rec:
                raise UserError(f"{where}: missing '{name}'")
        image_id[k] = _int(rec["image_id"], where, "image_id")
        category_id[k] = _int(rec.get("category_id", 1), where, "category_id")
        bbox[k] = _xywh_box(rec["bbox"], where, "bbox")
        if not _is_num(rec["score"]) or not math.isfinite(rec["score"]):
            raise UserError(f"{where}: score must be a finite number, got {rec['score']!r}")
        score[k] = rec["score"]
        if dense:
            if not with_uv[k]:
                raise UserError(f"{where}: missing 'uv_data' (other records have it)")
            if not isinstance(rec["uv_data"], str):
                raise UserError(f"{where}: uv_data must be a base64 string")
            uv_data.append(rec["uv_data"])
            want = expected_uv_hw(bbox[k])[0]
            shape = rec.get("uv_shape")
            if shape is not None:
                if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(s) for s in shape)):
                    raise UserError(f"{where}: uv_shape must be [3, H, W], got {shape!r}")
                if shape[0] != 3 or shape[1] != want[0] or shape[2] != want[1]:
                    raise UserError(
                        f"{where}: uv_shape {shape} does not match the box: expected [3, {want[0]}, {want[1]}] "
                        "(the IUV array must cover the box at integer size)"
                    )
            uv_hw[k] = want
        extra = {}
        if "detection_bbox" in rec:  # the detector's box when bbox is the region of the IUV (grown)
            extra["detection_bbox"] = _xywh_box(rec["detection_bbox"], where, "detection_bbox")
        if "detection_score" in rec:  # the detector's score when score ranks people by their maps
            if not _is_num(rec["detection_score"]) or not math.isfinite(rec["detection_score"]):
                raise UserError(f"{where}: detection_score must be a finite number, got {rec['detection_score']!r}")
            extra["detection_score"] = float(rec["detection_score"])
        if rec.get("segmentation"):
            extra["segmentation"] = rec["segmentation"]
        if rec.get("keypoints"):
            kp = rec["keypoints"]
            if not (isinstance(kp, list) and len(kp) % 3 == 0 and all(_is_num(v) and math.isfinite(v) for v in kp)):
                raise UserError(f"{where}: keypoints must be a flat list of finite (x, y, score) numbers")
            extra["keypoints"] = kp
        extras.append(extra)
    return Detections(source, image_id, category_id, bbox, score, uv_hw, uv_data=uv_data,
                      extras=extras if any(extras) else None)


def write_results_npz(path: str | os.PathLike, image_id, bbox, score, iuvs: list[np.ndarray],
                      category_id=None, keypoints=None) -> None:
    """Write detections in the NPZ layout of this module (atomically, uncompressed).

    Args:
        image_id: (N,) ints; bbox: (N, 4) xywh; score: (N,);
        iuvs: N uint8 arrays (3, H, W), each at the box's integer size;
        category_id: (N,) or None (all 1); keypoints: (N, 17, 3) or None.
    """
    n = len(iuvs)
    shapes = np.array([a.shape[1:] for a in iuvs], dtype=np.int64).reshape(n, 2)
    sizes = 3 * shapes[:, 0] * shapes[:, 1]
    arrays = {
        "image_id": np.asarray(image_id, dtype=np.int64),
        "category_id": np.ones(n, dtype=np.int64) if category_id is None else np.asarray(category_id, dtype=np.int64),
        "bbox": np.asarray(bbox, dtype=np.float64).reshape(n, 4),
        "score": np.asarray(score, dtype=np.float64),
        "uv_shape": shapes,
        "uv_offset": np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64),
        "iuv": np.concatenate([np.ascontiguousarray(a, dtype=np.uint8).ravel() for a in iuvs]) if n else np.zeros(0, np.uint8),
    }
    if keypoints is not None:
        arrays["keypoints"] = np.asarray(keypoints, dtype=np.float64).reshape(n, -1, 3)
    with AtomicPath(path) as out, open(out.tmp, "wb") as f:
        np.savez(f, **arrays)


def _load_npz(path: Path) -> Detections:
    try:
        npz = np.load(path, allow_pickle=False)
        names = set(npz.files)
    except Exception as exc:  # zipfile / numpy raise many types for a corrupt file
        raise UserError(f"{path}: not a readable NPZ file ({exc.__class__.__name__}: {exc})") from None
    need = ("image_id", "bbox", "score", "uv_shape", "uv_offset", "iuv")
    missing = [k for k in need if k not in names]
    if missing:
        raise UserError(f"{path}: NPZ results lack array(s) {', '.join(missing)}")
    arr = {}
    for k in names - {"iuv"}:
        try:
            arr[k] = npz[k]
        except ValueError:  # object arrays need pickle, which is never allowed
            raise UserError(f"{path}: array '{k}' holds Python objects; NPZ results hold numeric arrays only") from None
    n = len(arr["image_id"]) if arr["image_id"].ndim else -1
    shapes = {"image_id": (n,), "bbox": (n, 4), "score": (n,), "uv_shape": (n, 2), "uv_offset": (n,)}
    if "category_id" in arr:
        shapes["category_id"] = (n,)
    for k, s in shapes.items():
        if arr[k].shape != s:
            raise UserError(f"{path}: array '{k}' has shape {arr[k].shape}, expected {s if n >= 0 else '(N,)'}")
    for k in ("image_id", "category_id", "uv_shape", "uv_offset"):
        a = arr.get(k)
        if a is not None and (a.dtype.kind not in "iu" or (a.dtype.kind == "u" and len(a) and a.max() >= 1 << 63)):
            raise UserError(f"{path}: array '{k}' must hold 64-bit integers, got {a.dtype}")
    for k in ("bbox", "score", "keypoints"):
        if k in arr and arr[k].dtype.kind not in "iuf":
            raise UserError(f"{path}: array '{k}' must hold numbers, got {arr[k].dtype}")
    packed = _mmap_member(path, "iuv") if _is_stored(path, "iuv") else npz["iuv"]
    if packed.dtype != np.uint8 or packed.ndim != 1:
        raise UserError(f"{path}: array 'iuv' must be 1-D uint8, got {packed.dtype} {packed.shape}")
    bbox = arr["bbox"].astype(np.float64)
    score = arr["score"].astype(np.float64)
    for k in range(n):
        if not np.isfinite(bbox[k]).all() or bbox[k, 2] < 0 or bbox[k, 3] < 0 or not np.isfinite(score[k]):
            raise UserError(f"{path}: result #{k}: bbox/score must be finite with w, h >= 0")
    uv_hw = arr["uv_shape"].astype(np.int64)
    bad = np.flatnonzero((uv_hw != expected_uv_hw(bbox)).any(axis=1))
    if len(bad):
        k = int(bad[0])
        raise UserError(f"{path}: result #{k}: uv_shape {uv_hw[k].tolist()} does not match the box "
                        f"(expected {expected_uv_hw(bbox[k])[0].tolist()})")
    off = arr["uv_offset"].astype(np.int64)
    end = off + 3 * uv_hw[:, 0] * uv_hw[:, 1]
    bad = np.flatnonzero((off < 0) | (end > len(packed)))
    if len(bad):
        raise UserError(f"{path}: result #{int(bad[0])}: uv_offset points outside the 'iuv' buffer")
    extras = None
    if "keypoints" in arr:
        kp = arr["keypoints"].astype(np.float64).reshape(n, -1)
        extras = [{"keypoints": kp[k].tolist()} for k in range(n)]
    cat = arr["category_id"].astype(np.int64) if "category_id" in arr else np.ones(n, dtype=np.int64)
    return Detections(str(path), arr["image_id"].astype(np.int64), cat, bbox, score, uv_hw,
                      packed=packed, offset=off, extras=extras)


def _is_stored(path: Path, name: str) -> bool:
    with zipfile.ZipFile(path) as zf:
        try:
            return zf.getinfo(f"{name}.npy").compress_type == zipfile.ZIP_STORED
        except KeyError:
            return False


def _mmap_member(path: Path, name: str) -> np.ndarray:
    """Memory-map an uncompressed ``.npy`` member of a zip, so a large IUV buffer is not read into RAM."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        f.seek(start)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        data_start = f.tell()
    if fortran or len(shape) != 1 or dtype != np.uint8:
        raise UserError(f"{path}: array '{name}' must be a 1-D uint8 C-order array")
    if shape[0] == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=shape)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _int(v, where: str, name: str) -> int:
    if not _is_int(v):
        raise UserError(f"{where}: {name} must be an integer, got {v!r}"[:300])
    if not -(1 << 63) <= v < 1 << 63:
        raise UserError(f"{where}: {name} {v} does not fit in 64 bits")
    return int(v)
