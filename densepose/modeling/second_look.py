"""The second look at each detection, between the box head and the per-box heads, and the chart
weights it gives the DensePose head's output.

`second_look` cuts each detected person out of the image (`densepose.modeling.facing.person_crops`)
and asks, on the crop: which way the person faces (the facing classifier's Lite0 heads), whether
the box holds one whole person (the person check, which lowers the score); the detections that
more confident ones repeat (`repeated_boxes`) are dropped or have their score lowered
(`demote_repeated`), those under the score threshold are dropped, and only the kept people go on
to the people trunk (MoveNet's, for its facing heads and, with the skeleton prior, for MoveNet's
keypoints) and to the per-box heads.

`settle_charts` then weighs the DensePose head's charts by what was found: the head ruler
(`densepose.modeling.head_ruler`), the facing (`densepose.modeling.facing`) and the skeleton
prior (`densepose.modeling.skeleton_prior`). Each multiplies the charts' probabilities and keeps
their total against the background, so their log weights are added and the charts renormalised
once (the same as one after the other); with the model's ``chart_smoothing`` the settled charts'
probabilities are then averaged over a small window (`densepose.modeling.chart_smoothing`).
`settle_uv` moves the U, V maps by the same keypoints (`densepose.modeling.skeleton_uv`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from densepose.modeling.chart_smoothing import smooth_charts
from densepose.modeling.covered_boxes import demote_repeated
from densepose.modeling.facing import facing_log_weight, weigh_charts
from densepose.modeling.facing_people import PEOPLE_CROP
from densepose.modeling.head_ruler import head_ruler_log_weight
from densepose.modeling.mobilenet_v2 import STAGE_ENDS
from densepose.modeling.movenet import FPN_TAPS
from densepose.modeling.person_check import checked_scores, cut_by_bottom
from densepose.modeling.roi_heads import Detected
from densepose.modeling.skeleton_prior import Skeleton, crop_keypoints, skeleton_log_weight
from densepose.modeling.skeleton_uv import blend_uv

if TYPE_CHECKING:
    from densepose.modeling.rcnn import DensePoseRCNN


def second_look(model: DensePoseRCNN, dets: list[Detected], images: Tensor, sizes: Sequence[tuple[int, int]],
                score_thresh: float | None) -> tuple[list[Detected], Tensor | None, tuple[Tensor, Tensor] | None]:
    """The crops' P(facing the camera) and person check, then the detections kept (checked and
    `demote_repeated` score >= the threshold, not dropped as repeated), of the normalised
    ``images`` (B, 3, H, W) whose unpadded (h, w) are ``sizes``.

    Returns:
        the kept detections per image; (K,) P(facing the camera) of the kept rows, or None (no
        facing classifier); with the skeleton prior, the kept rows' (K, 17, 3) MoveNet keypoints in
        the images' pixels and (K,) crop heights, else None.
    """
    cfg = model.cfg
    logits = None  # the Lite0 heads' facing logits, per image
    if cfg.densepose_on and cfg.facing_on:
        counts = [d.boxes.shape[0] for d in dets]
        facing_input = model.facing_input(images)  # once for both crops
        c4 = model.facing.features(model.facing_crops(facing_input, [d.boxes for d in dets], images.dtype))
        logits = model.facing.lite0_logits(c4).split(counts)
        if cfg.person_check_on:
            p_person = model.person_check(c4).float().sigmoid().split(counts)
            dets = [d._replace(scores=checked_scores(d.scores, p, cut_by_bottom(d.boxes, height)))
                    for d, p, (height, _) in zip(dets, p_person, sizes)]
    if cfg.person_check_on or cfg.drop_covered_fraction > 0 or cfg.drop_wider_iou > 0:
        floor = score_thresh if score_thresh is not None else math.nextafter(cfg.score_thresh_test, math.inf)
        settled = [demote_repeated(d.boxes, d.scores, cfg.drop_covered_fraction, cfg.drop_wider_iou,
                                   cfg.repeated_score_fraction) for d in dets]
        rows = [(scores >= floor) & kept for scores, kept in settled]
        dets = [d._replace(scores=scores).rows(r) for d, (scores, _), r in zip(dets, settled, rows)]
        logits = None if logits is None else [p[r] for p, r in zip(logits, rows)]
    if logits is None:
        return dets, None, None
    logits, skeleton = torch.cat(logits), None
    if model.facing.people is not None and len(logits):  # the people trunk reads the kept rows only
        crops = model.facing_crops(facing_input, [d.boxes for d in dets], images.dtype, PEOPLE_CROP)
        logits, skeleton = people_look(model, logits, crops, torch.cat([d.boxes for d in dets]))
    return dets, logits.float().sigmoid(), skeleton


def people_look(model: DensePoseRCNN, lite0_logits: Tensor, people_crops: Tensor,
                boxes: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """The people trunk on (K, 3, *PEOPLE_CROP) crops of (K, 4) boxes, for the eager model and its
    exported graph alike -> (K,) facing logits, the Lite0 heads' (``lite0_logits``) averaged with
    the people heads'; with the skeleton prior, MoveNet's keypoints in the boxes' pixels and the
    crop heights (`densepose.modeling.skeleton_prior.crop_keypoints`), else None."""
    skeleton_on = model.cfg.skeleton_prior_on
    taps = model.facing.people.taps(people_crops, FPN_TAPS if skeleton_on else ())
    logits = model.facing.with_people_features(lite0_logits, taps[STAGE_ENDS[2]])
    return logits, (crop_keypoints(model.keypoints, taps, boxes) if skeleton_on else None)


def settle_charts(model: DensePoseRCNN, coarse_segm: Tensor, fine_segm: Tensor, p_camera: Tensor | None,
                  skeleton: Skeleton | None = None) -> Tensor:
    """(N, 25, S, S) chart logits weighed by ``model``'s head ruler, by the people's (N,) P(facing
    the camera) (None: no facing classifier) and by the skeleton prior (``skeleton``: the people's
    keypoints and where their maps lie; None: no prior): the ruler settles the body part, the
    facing its side, the skeleton both (module docstring); then smoothed (``chart_smoothing``)."""
    cfg, size = model.cfg, fine_segm.shape[-1]
    weights = []
    if cfg.head_ruler_on:
        weights.append(head_ruler_log_weight(coarse_segm, fine_segm, model.head_ruler_log_ratio, cfg.head_ruler_power))
    if p_camera is not None:
        weights.append(facing_log_weight(p_camera, model.facing_chart_ratio, size, cfg.facing_power))
    if skeleton is not None:
        weights.append(skeleton_log_weight(skeleton, size, model.skeleton_log_ratio, cfg.skeleton_prior_power))
    settled = weigh_charts(fine_segm, sum(weights[1:], weights[0])) if weights else fine_segm
    return smooth_charts(settled, cfg.chart_smoothing)


def settle_uv(model: DensePoseRCNN, u: Tensor, v: Tensor, skeleton: Skeleton | None) -> dict[str, Tensor]:
    """{"u", "v"}: the (N, 25, S, S) maps moved towards the means by MoveNet's bones
    (`densepose.modeling.skeleton_uv.blend_uv`) when the model has the U, V prior and the people
    their ``skeleton``; else as they are."""
    if skeleton is None or not model.cfg.skeleton_uv_on:
        return {"u": u, "v": v}
    u, v = blend_uv(u, v, skeleton, model.skeleton_uv_stats, model.cfg.skeleton_uv_variance)
    return {"u": u, "v": v}
