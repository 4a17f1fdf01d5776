"""Synthetic ground truth and results with known answers, for tests and the evaluator benchmark.

Each person gets an elliptic body mask (split into the 14 mask parts), DensePose points on
distinct pixels of the ellipse's core with (I, U, V) of random points of the surface, and, if
wanted, a detection on its box whose IUV array holds the GT values (plus UV noise) at exactly the
pixels the official protocol reads (``int(dp_x * w / 255 + x - x_dt)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import zoom

from densepose.data.rle import DP_MASK_SIZE, encode_dp_masks, encode_mask
from densepose.data.uv_encoding import encode_uv_data


@dataclass
class SyntheticDetection:
    image_id: int
    bbox: list[float]  # xywh
    score: float
    iuv: np.ndarray  # uint8 (3, H, W)
    gt_id: int | None  # the person it was made from, or None for a false positive


def _ellipse(size: int, fy: float = 0.46, fx: float = 0.40) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    return ((yy - size / 2) / (fy * size)) ** 2 + ((xx - size / 2) / (fx * size)) ** 2


def _box_mask(union256: np.ndarray, w: int, h: int) -> np.ndarray:
    """The evaluator's GT mask at box size: bilinear zoom of the 256x256 union, threshold 0.5."""
    return zoom(union256.astype(np.float64), (max(h, 1) / DP_MASK_SIZE, max(w, 1) / DP_MASK_SIZE), order=1, prefilter=False) > 0.5


def random_surface_iuv(surface, n: int, rng: np.random.Generator, quantize: bool) -> tuple[np.ndarray, np.ndarray]:
    """n random surface points as (I (n,), UV (n, 2)); UV on the k/255 grid if ``quantize``."""
    face = rng.integers(0, surface.num_faces, n)
    bary = rng.dirichlet(np.ones(3), n)
    I, uv = surface.iuv_from_points(face, bary)
    uv = np.clip(uv, 0.0, 1.0)
    if quantize:
        uv = np.round(uv * 255.0) / 255.0
    return I.astype(np.int64), uv


def make_synthetic_set(surface, num_images: int = 4, people_per_image: tuple[int, int] = (1, 3),
                       num_points: int = 100, uv_noise: float = 0.0,
                       false_positives: int = 0, unannotated_per_image: int = 0, image_size=(480, 640),
                       with_detections: bool = True, seed: int = 0) -> tuple[dict, list[SyntheticDetection]]:
    """A DensePose-COCO ground truth dict and detections for it.

    Args:
        surface: the ``BodySurface`` the (I, U, V) come from.
        num_points: DensePose points per person (on distinct pixels).
        uv_noise: std of Gaussian noise added to the predicted U, V (0: the prediction equals the
            GT up to nothing: GT UV are on the uint8 grid, boxes are integer).
        false_positives: extra low-score detections per image at random places.
        unannotated_per_image: people per image without DensePose points (ignored by the protocol).
    Returns:
        (gt dict, detections).
    """
    rng = np.random.default_rng(seed)
    H, W = image_size
    ell = _ellipse(DP_MASK_SIZE)
    union = ell <= 1.0
    labels = np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), dtype=np.uint8)
    rows = np.arange(DP_MASK_SIZE)[:, None] * 14 // DP_MASK_SIZE + 1
    labels[union] = np.broadcast_to(rows, labels.shape)[union]
    dp_masks = encode_dp_masks(labels)
    images, anns, dets = [], [], []
    ann_id = 1
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:06d}.png", "height": H, "width": W})
        n_people = int(rng.integers(people_per_image[0], people_per_image[1] + 1))
        for p in range(n_people + unannotated_per_image):
            w = int(rng.integers(60, min(260, W // 2)))
            h = int(rng.integers(max(100, w), min(420, H - 10)))
            x = int(rng.integers(0, W - w))
            y = int(rng.integers(0, H - h))
            mask = _box_mask(union, w, h)
            full = np.zeros((H, W), dtype=np.uint8)
            full[y : y + h, x : x + w] = mask
            ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": [x, y, w, h],
                   "area": float(mask.sum()), "iscrowd": 0, "segmentation": encode_mask(full),
                   "num_keypoints": 0, "keypoints": [0] * 51}
            ann_id += 1
            anns.append(ann)
            if p >= n_people:
                continue  # a person without DensePose annotation
            # Points on distinct pixels of the ellipse core, placed at pixel centres.
            yy = (np.arange(h)[:, None] + 0.5) / h - 0.5
            xx = (np.arange(w)[None, :] + 0.5) / w - 0.5
            core = np.argwhere(((yy / 0.46) ** 2 + (xx / 0.40) ** 2 <= 0.6) & mask)
            pick = core[rng.choice(len(core), size=min(num_points, len(core)), replace=False)]
            py, px = pick[:, 0], pick[:, 1]
            I, uv = random_surface_iuv(surface, len(pick), rng, quantize=True)
            ann.update({
                "dp_x": ((px + 0.5) * 255.0 / w).tolist(), "dp_y": ((py + 0.5) * 255.0 / h).tolist(),
                "dp_I": I.astype(float).tolist(), "dp_U": uv[:, 0].tolist(), "dp_V": uv[:, 1].tolist(),
                "dp_masks": dp_masks,
            })
            if not with_detections:
                continue
            iuv = np.zeros((3, h, w), dtype=np.uint8)
            iuv[0][mask] = rng.integers(1, 25, int(mask.sum()))
            iuv[1:, mask] = rng.integers(0, 256, (2, int(mask.sum())))
            puv = np.clip(uv + rng.normal(0.0, uv_noise, uv.shape), 0, 1) if uv_noise else uv
            iuv[0, py, px] = I
            iuv[1, py, px] = np.round(puv[:, 0] * 255)
            iuv[2, py, px] = np.round(puv[:, 1] * 255)
            dets.append(SyntheticDetection(image_id, [float(x), float(y), float(w), float(h)], float(rng.uniform(0.5, 1.0)), iuv, ann["id"]))
        for _ in range(false_positives if with_detections else 0):
            w, h = int(rng.integers(30, 120)), int(rng.integers(60, 200))
            x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            iuv = rng.integers(0, 256, (3, h, w)).astype(np.uint8)
            iuv[0] = rng.integers(0, 25, (h, w))
            dets.append(SyntheticDetection(image_id, [float(x), float(y), float(w), float(h)],
                                           float(rng.uniform(0.0, 0.5)), iuv, None))
    cats = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": [], "skeleton": []}]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def detections_to_records(dets: list[SyntheticDetection]) -> list[dict]:
    """Detections -> COCO results records with the official ``uv_data`` encoding."""
    out = []
    for d in dets:
        shape, data = encode_uv_data(d.iuv)
        out.append({"image_id": d.image_id, "category_id": 1, "bbox": d.bbox, "score": d.score,
                    "uv_shape": shape, "uv_data": data})
    return out
