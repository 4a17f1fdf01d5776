"""Bring images (and person boxes, and synthetic dense truth) into a project.

Images are copied into ``PROJECT/images`` so that the project is self-contained and the server
never opens a path it did not write itself. Every image is checked: JPEG or PNG, at most
``MAX_IMAGE_BYTES`` and ``MAX_IMAGE_PIXELS``.
"""
from __future__ import annotations

import io
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from densepose.annotate import db
from densepose.cache import atomic_write_bytes
from densepose.errors import UserError
from densepose.io.json_files import read_json

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_FORMATS = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",)}
IMAGE_SUFFIXES = {s for v in IMAGE_FORMATS.values() for s in v}


def check_image_bytes(data: bytes, name: str) -> tuple[int, int]:
    """Validate an image file's bytes (type from content, size); return (width, height)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise UserError(f"{name}: image is {len(data)} bytes, more than the {MAX_IMAGE_BYTES} allowed")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format, im.size
            if fmt not in IMAGE_FORMATS:
                raise UserError(f"{name}: {fmt} images are not accepted (JPEG or PNG only)")
            if w * h > MAX_IMAGE_PIXELS:
                raise UserError(f"{name}: {w}x{h} pixels is too large")
            im.verify()
    except UserError:
        raise
    except Exception:
        raise UserError(f"{name}: not a readable JPEG or PNG image") from None
    if Path(name).suffix.lower() not in IMAGE_FORMATS[fmt]:
        raise UserError(f"{name}: file suffix does not match its {fmt} content")
    return w, h


def add_image(con, project: Path, rel: str, data: bytes, source_id: int | None = None) -> int:
    """Store one image's bytes under ``images/rel`` and insert its record; returns its id."""
    rel = db.safe_relpath(rel)
    w, h = check_image_bytes(data, rel)
    if con.execute("SELECT 1 FROM images WHERE file_name=?", (rel,)).fetchone():
        raise UserError(f"{rel}: an image of that name is already in the project")
    atomic_write_bytes(db.inside(project / "images", rel), data)
    cur = con.execute("INSERT INTO images (file_name, width, height, source_id) VALUES (?, ?, ?, ?)",
                      (rel, w, h, source_id))
    return int(cur.lastrowid)


def import_folder(project: str | os.PathLike, folder: str | os.PathLike) -> int:
    """Import every JPEG/PNG under ``folder``; persons are boxed later by the annotators (step 0)."""
    project, folder = Path(project), Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such image folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder}: no .jpg/.jpeg/.png images found")
    for path in files:  # check every file before importing any, so a bad one leaves no half import
        check_image_bytes(path.read_bytes(), str(path))
    con = db.connect(project, create=True)
    try:
        for path in tqdm(files, desc="import images", unit="img"):
            with db.transaction(con):
                add_image(con, project, path.relative_to(folder).as_posix(), path.read_bytes())
    finally:
        con.close()
    return len(files)


def _load_coco(path: Path) -> dict:
    data = read_json(path, "COCO JSON file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise UserError(f"{path}: a COCO file needs an 'images' list")
    return data


def import_coco(project: str | os.PathLike, coco_json: str | os.PathLike, image_root: str | os.PathLike,
                truth_dir: str | os.PathLike | None = None) -> tuple[int, int]:
    """Import a COCO file's images and person boxes (and, for synthetic data, the dense truth).

    ``truth_dir`` holds ``<image stem>.npz`` files from ``densepose synth`` with ``instance``,
    ``I``, ``U``, ``V``; person k of an image (k-th annotation, 1-based) is ``instance == k``.
    Returns (images, persons) imported.
    """
    project, coco_json, image_root = Path(project), Path(coco_json), Path(image_root)
    data = _load_coco(coco_json)
    person_cats = {c["id"] for c in data.get("categories", []) if c.get("name") == "person"} or {1}
    by_image = defaultdict(list)
    for ann in data.get("annotations", []):
        by_image[ann.get("image_id")].append(ann)
    con = db.connect(project, create=True)
    n_img = n_person = 0
    try:
        for rec in tqdm(data["images"], desc="import images", unit="img"):
            try:
                name, src_id = str(rec["file_name"]), rec["id"]
            except KeyError as exc:
                raise UserError(f"{coco_json}: image record without {exc}") from None
            src = db.inside(image_root, db.safe_relpath(name))
            if not src.is_file():
                raise UserError(f"{coco_json}: image {name!r} not found under {image_root}")
            truth = None
            if truth_dir is not None:
                truth_path = Path(truth_dir) / (Path(name).stem + ".npz")
                if not truth_path.is_file():
                    raise UserError(f"{truth_path}: dense truth missing for image {name!r}")
                truth = _check_truth(truth_path, rec)
            with db.transaction(con):
                image_id = add_image(con, project, name, src.read_bytes(), source_id=src_id)
                con.execute("UPDATE images SET boxes_done=1, has_truth=? WHERE id=?", (int(truth is not None), image_id))
                for k, ann in enumerate(by_image.get(src_id, []), start=1):
                    if ann.get("category_id", 1) not in person_cats:
                        continue
                    bbox = ann.get("bbox")
                    if not (isinstance(bbox, list) and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0):
                        raise UserError(f"{coco_json}: annotation {ann.get('id')} has no valid bbox")
                    extra = {key: ann[key] for key in ("iscrowd", "keypoints", "num_keypoints", "segmentation", "area")
                             if key in ann}
                    con.execute("INSERT INTO persons (image_id, x, y, w, h, extra, truth_instance) VALUES (?,?,?,?,?,?,?)",
                                (image_id, *map(float, bbox), db.dumps(extra), k if truth is not None else None))
                    n_person += 1
                if truth is not None:
                    atomic_write_bytes(project / "truth" / f"{image_id}.npz", truth)
            n_img += 1
    finally:
        con.close()
    return n_img, n_person


def _check_truth(path: Path, rec: dict) -> bytes:
    data = path.read_bytes()
    try:
        with np.load(io.BytesIO(data)) as z:
            shapes = {k: z[k].shape for k in ("instance", "I", "U", "V")}
    except Exception:
        raise UserError(f"{path}: not a dense-truth npz with instance, I, U, V") from None
    want = (rec.get("height"), rec.get("width"))
    if any(s != shapes["I"] for s in shapes.values()) or (None not in want and shapes["I"] != want):
        raise UserError(f"{path}: arrays {shapes} do not match the image size {want}")
    return data


def load_truth(project: Path, image_id: int) -> dict[str, np.ndarray]:
    with np.load(project / "truth" / f"{image_id}.npz") as z:
        return {k: z[k] for k in ("instance", "I", "U", "V")}
