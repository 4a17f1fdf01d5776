"""Evaluate a model directly: run it over the images of an annotation file, then ``evaluate``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from densepose.data.coco import CocoDensePose
from densepose.errors import UserError
from densepose.evaluation.evaluator import evaluate, load_gt, load_surface
from densepose.evaluation.results import Detections


def evaluate_model(model, image_dir, annotations, surface="anny", device=None, *, kappa: str = "per-part",
                   exact: bool = False, min_iou: float = 0.5, max_images: int | None = None,
                   progress: bool = True, flip: bool = False, zoom: int | None = None) -> dict:
    """Run a DensePose model over the images of an annotation file and evaluate its detections.

    Args:
        model: a ``DensePoseRCNN`` (contract in docs/ARCHITECTURE.md); put in eval mode for the
            run and restored afterwards.
        image_dir: folder of the images named by ``file_name``.
        annotations: DensePose-COCO ground truth (path, dict or ``CocoDensePose``).
        surface: ``BodySurface`` or name.
        device: torch device of the model (default: that of its parameters).
        kappa, exact, min_iou: as for ``evaluate``.
        max_images: evaluate only the first N images (quick checks during training).
        flip: with the flip test (`densepose.modeling.flip_test`).
        zoom: small people read at this larger size (`densepose.modeling.zoom`; None: the model's setting).
    Returns:
        the ``evaluate`` dict (GT images not run are left out of the ground truth).
    """
    import torch
    from PIL import Image
    from tqdm import tqdm

    from densepose.predict.predictor import Predictor, kept_order
    from densepose.predict.writers import written_score

    coco = load_gt(annotations)
    surface = load_surface(surface)
    surface.snap_table()  # models are evaluated again and again during training: make the snap a lookup
    ids = list(coco.image_ids)[: max_images] if max_images else list(coco.image_ids)
    if max_images:
        coco = CocoDensePose(coco.path, {i: coco.images[i] for i in ids}, {i: coco.annotations.get(i, []) for i in ids},
                             coco.categories, ids)
    if device is None:
        device = next(iter(model.parameters())).device
    settings = {}
    if flip:
        from densepose.modeling.flip_test import flip_tables

        settings["flip_uv"] = flip_tables(getattr(model, "chart", "anny")).to(device)
    if zoom is not None:
        settings["dp_zoom_size"] = int(zoom)
    image_id, bbox, det_bbox, score, det_score, iuvs, keypoints = [], [], [], [], [], [], []
    was_training = model.training
    # Every detection the model returns is kept (its own test threshold applies).
    predictor = Predictor(model, device, min_score=0.0, precision="fp32")
    model.eval()
    try:
        with torch.no_grad():
            for i in tqdm(ids, desc="inference", unit="img", disable=not progress, leave=False):
                path = Path(image_dir) / coco.images[i]["file_name"]
                try:
                    with Image.open(path) as im:
                        arr = np.asarray(im.convert("RGB"))
                except (OSError, ValueError) as exc:
                    raise UserError(f"{path}: cannot read image ({exc.__class__.__name__}: {exc})") from None
                img = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float().to(device)
                out = model([img], **settings)[0]
                # The people as `predict` gives them: labels, snapped silhouettes, dense scores.
                people = predictor.image_result(arr, arr.shape[:2], out)
                for person in people:
                    iuvs.append(person.iuv)
                    # The maps cover the grown boxes of a model with a DensePose box margin: those
                    # are the results' bbox, and the detection boxes are kept for box AP.
                    bbox.append(person.maps_box)
                    det_bbox.append(person.box)
                    score.append(written_score(person.ranking_score))
                    det_score.append(written_score(person.score))
                image_id += [i] * len(people)
                if "keypoints" in out and people:
                    rows = kept_order(out["scores"], predictor.min_score)
                    keypoints.append(out["keypoints"][rows].detach().double().cpu().numpy().reshape(len(rows), -1))
    finally:
        model.train(was_training)
    n = len(iuvs)
    dets = detections_from_arrays(
        image_id, _xywh(bbox), np.asarray(score, dtype=np.float64), iuvs,
        np.concatenate(keypoints) if keypoints and sum(len(k) for k in keypoints) == n else None,
        detection_bbox=_xywh(det_bbox), detection_score=np.asarray(det_score, dtype=np.float64))
    return evaluate(coco, dets, surface, kappa=kappa, exact=exact, min_iou=min_iou, progress=progress)


def _xywh(boxes: list[np.ndarray]) -> np.ndarray:
    """N (4,) xyxy boxes -> (N, 4) float64 xywh."""
    xywh = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), 4)
    xywh[:, 2:] -= xywh[:, :2]
    return xywh


def detections_from_arrays(image_id, bbox, score, iuvs: list[np.ndarray], keypoints=None,
                           source: str = "<model>", detection_bbox=None, detection_score=None) -> Detections:
    """In-memory detections -> ``Detections`` with a packed IUV buffer.

    Args:
        image_id: (N,); bbox: (N, 4) xywh; score: (N,); iuvs: N uint8 (3, H, W) at box size;
        keypoints: (N, 17 * 3) or None; detection_bbox: (N, 4) xywh the detector's boxes, for box
        AP, where ``bbox`` are grown ones (a model's DensePose box margin), or None; detection_score:
        (N,) the detector's scores, for box AP, where ``score`` are dense scores, or None.
    """
    n = len(iuvs)
    hw = np.array([a.shape[1:] for a in iuvs], dtype=np.int64).reshape(n, 2)
    sizes = 3 * hw[:, 0] * hw[:, 1]
    packed = np.concatenate([np.ascontiguousarray(a, dtype=np.uint8).ravel() for a in iuvs]) if n else np.zeros(0, np.uint8)
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
    extras = [{} for _ in range(n)]
    if keypoints is not None:
        for e, k in zip(extras, keypoints):
            e["keypoints"] = np.asarray(k, dtype=np.float64).ravel().tolist()
    if detection_bbox is not None and not np.array_equal(np.asarray(detection_bbox).reshape(n, 4), np.asarray(bbox).reshape(n, 4)):
        for e, b in zip(extras, np.asarray(detection_bbox, dtype=np.float64).reshape(n, 4)):
            e["detection_bbox"] = b.tolist()
    detection_score = None if detection_score is None else np.asarray(detection_score, dtype=np.float64).reshape(n)
    if detection_score is not None and not np.array_equal(detection_score, np.asarray(score).reshape(n)):
        for e, s in zip(extras, detection_score):
            e["detection_score"] = float(s)
    extras = extras if any(extras) else None
    return Detections(source, np.asarray(image_id, dtype=np.int64).reshape(n), np.ones(n, dtype=np.int64),
                      np.asarray(bbox, dtype=np.float64).reshape(n, 4), np.asarray(score, dtype=np.float64).reshape(n),
                      hw, packed=packed, offset=offset, extras=extras)
