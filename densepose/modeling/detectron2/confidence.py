"""Confidence maps of WC models at box size, as detectron2's ``resample_confidences_to_bbox``.

Each (C, S, S) map of a detection is resized to the integer box size (bilinear,
``align_corners=False``, like I/U/V). A 25-channel map (``sigma_2``, ``kappa_u``, ``kappa_v``) is read
in the channel of each pixel's chart label and is 0 on background; a 1-channel map
(``fine_segm_confidence``, ``coarse_segm_confidence``) is kept everywhere.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from densepose.modeling.detectron2.predictor import SEGM_CONFIDENCE_OUTPUTS, UV_CONFIDENCE_OUTPUTS
from densepose.modeling.postprocess import int_box

CONFIDENCE_KEYS = tuple(dict.fromkeys(UV_CONFIDENCE_OUTPUTS["indep_aniso"] + SEGM_CONFIDENCE_OUTPUTS))


def confidences_at_box(out: dict[str, Tensor], k: int, labels: np.ndarray, box: Tensor) -> dict[str, np.ndarray]:
    """Detection ``k`` of a model output dict -> {name: (h, w) float32} for every confidence map it has.

    ``labels``: the detection's (h, w) chart labels at box size; ``box``: (4,) xyxy in input pixels.
    """
    _, _, w, h = int_box(box.tolist())
    index = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    result = {}
    for name in CONFIDENCE_KEYS:
        if name not in out:
            continue
        maps = F.interpolate(out[name][k][None].float().cpu(), size=(h, w), mode="bilinear", align_corners=False)[0]
        if maps.shape[0] == 1:
            value = maps[0]
        else:
            value = torch.where(index > 0, maps.gather(0, index[None])[0], torch.zeros(()))
        result[name] = value.numpy().astype(np.float32)
    return result
