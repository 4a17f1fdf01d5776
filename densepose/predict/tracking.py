"""Video: greedy IoU tracking of people across frames and temporal smoothing of U and V."""
from __future__ import annotations

import numpy as np
import torch

from densepose.errors import UserError
from densepose.modeling.ops.boxes import box_iou


class Tracker:
    """Greedy IoU tracker: each detection takes the best unclaimed track of the previous frame."""

    def __init__(self, min_iou: float = 0.3):
        self.min_iou = min_iou
        self.boxes = np.zeros((0, 4), np.float32)
        self.ids: list[int] = []
        self.next_id = 1

    def update(self, boxes: np.ndarray) -> list[int]:
        """(N, 4) xyxy boxes of this frame, by descending score -> N track ids (>= 1)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        ids = [0] * len(boxes)
        if len(boxes) and len(self.boxes):
            iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(self.boxes)).numpy()
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
