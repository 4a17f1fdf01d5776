"""Small synthetic data for the annotation tests: images, a COCO file and dense truth on a surface."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from densepose.surface.parts import CHART_TO_MASK_PART


def write_image(path: Path, w: int, h: int, seed: int = 0, fmt: str = "PNG") -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, format=fmt)


def make_synthetic(root: Path, surface, n_images: int = 2, size: int = 96) -> Path:
    """A tiny `densepose synth`-like folder: images/, dense/ and annotations.json.

    Every image holds one "person": a rectangle whose pixels carry real (I, U, V) values of the
    given surface (sampled at face centroids), split into coarse parts so that step 1 has
    several parts to paint. Returns ``root``.
    """
    rng = np.random.default_rng(1)
    images, anns = [], []
    face_part = np.asarray(surface.face_part)
    for i in range(n_images):
        name = f"img{i:03d}.png"
        write_image(root / "images" / name, size, size, seed=i)
        x0, y0, w, h = 10 + i, 12, 60, 70
        inst = np.zeros((size, size), np.uint8)
        I = np.zeros((size, size), np.uint8)
        U = np.zeros((size, size), np.float16)
        V = np.zeros((size, size), np.float16)
        inst[y0:y0 + h, x0:x0 + w] = 1
        # four horizontal bands, each a different chart (so different coarse parts)
        charts = [c for c in (1, 3, 16, 23) if (face_part == c).any()]
        for r in range(h):
            c = charts[min(r * len(charts) // h, len(charts) - 1)]
            faces = np.flatnonzero(face_part == c)
            f = faces[rng.integers(len(faces), size=w)]
            Iu, uv = surface.iuv_from_points(f, np.full((w, 3), 1 / 3))
            I[y0 + r, x0:x0 + w] = Iu
            U[y0 + r, x0:x0 + w] = uv[:, 0]
            V[y0 + r, x0:x0 + w] = uv[:, 1]
        (root / "dense").mkdir(parents=True, exist_ok=True)
        np.savez_compressed(root / "dense" / f"img{i:03d}.npz", instance=inst, I=I, U=U, V=V)
        images.append({"id": 100 + i, "file_name": name, "width": size, "height": size})
        anns.append({"id": 500 + i, "image_id": 100 + i, "category_id": 1, "bbox": [x0, y0, w, h],
                     "area": w * h, "iscrowd": 0})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def band_labels(surface_charts=(1, 3, 16, 23)) -> np.ndarray:
    """A (256, 256) label map of four horizontal bands of the coarse parts of these charts."""
    labels = np.zeros((256, 256), np.uint8)
    parts = CHART_TO_MASK_PART[list(surface_charts)]
    for k, p in enumerate(parts):
        labels[k * 64:(k + 1) * 64, 20:236] = p
    return labels
