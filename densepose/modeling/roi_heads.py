"""ROI heads: proposal sampling, 2-FC box head (person vs background), mask and keypoint heads."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.matching import match, sample_fg_bg_masks
from densepose.modeling.ops import box_iou, encode_boxes, nms, nonempty, roi_align, vote_boxes
from densepose.modeling.ops.groups import pad_groups
from densepose.modeling.rpn import _smooth_l1


def _c2_msra(m: nn.Module) -> None:
    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if m.bias is not None:
        nn.init.zeros_(m.bias)


@dataclass
class ProposalSamples:
    """The sampled proposals of a batch, image after image and, within an image, foreground first.

    ``boxes`` (K, 4); ``image`` (K,) the image of each; ``is_fg`` (K,) bool; ``gt_index`` (K,) the
    matched GT within its image; ``gt_boxes`` (K, 4) that GT's box for the foreground, the proposal
    itself for the background (so every row encodes to a finite target); ``iou`` (K,) the best IoU
    with the image's GT (0 without GT). ``counts`` and ``fg_counts``: per image K_i and F_i.
    """

    boxes: Tensor
    image: Tensor
    is_fg: Tensor
    gt_index: Tensor
    gt_boxes: Tensor
    iou: Tensor
    counts: list[int]
    fg_counts: list[int]

    def per_image(self, x: Tensor) -> list[Tensor]:
        """(K, ...) rows -> per image its (K_i, ...) rows."""
        return list(x.split(self.counts))

    def fg_per_image(self, x: Tensor) -> list[Tensor]:
        """(K, ...) rows -> per image its (F_i, ...) foreground rows (no host sync: they lead each image)."""
        return [rows[:f] for rows, f in zip(x.split(self.counts), self.fg_counts)]

    def fg_rows(self) -> Tensor:
        """(sum F_i,) the foreground rows' positions, image after image."""
        starts = itertools.accumulate(self.counts[:-1], initial=0)
        rows = [torch.arange(s, s + f) for s, f in zip(starts, self.fg_counts)]
        return torch.cat(rows).to(self.boxes.device) if rows else torch.zeros(0, dtype=torch.long)


def sample_proposals(proposals: list[Tensor], gt_boxes: list[Tensor], cfg) -> ProposalSamples:
    """Add GT boxes to the proposals, match at ``roi_fg_iou`` and sample ``roi_batch_size_per_image``
    at ``roi_positive_fraction`` (d2 defaults 512 @ 0.25, IoU 0.5).

    Every image at once: its proposals (P_i, 4) and then its GT (G_i, 4) are padded into one (B, P + G)
    batch of candidates, matched on a (B, G, P + G) IoU array (padding at -1, which matches nothing)
    and drawn by `sample_fg_bg_masks`; two host syncs for the whole batch (the drawn rows and the
    counts), whatever the number of images.
    """
    dtype = proposals[0].dtype
    props, props_ok = pad_groups(proposals)
    gt, gt_ok = pad_groups(gt_boxes)
    gt = gt.to(dtype)
    cands, cands_ok = torch.cat([props, gt], 1), torch.cat([props_ok, gt_ok], 1)  # (B, C, 4), (B, C)
    iou = torch.where(gt_ok[:, :, None] & cands_ok[:, None, :], box_iou(gt, cands), -1.0)  # (B, G, C)
    matched, labels = match(iou, cfg.roi_fg_iou, cfg.roi_fg_iou, allow_low_quality=False)
    labels = torch.where(cands_ok, labels, torch.full_like(labels, -1))
    fg, bg = sample_fg_bg_masks(labels, cfg.roi_batch_size_per_image, cfg.roi_positive_fraction)
    best = iou.max(dim=1).values.clamp(min=0) if gt.shape[1] else cands.new_zeros(cands.shape[:2])

    img, col = (fg | bg).nonzero(as_tuple=True)
    key = img * 2 + (~fg[img, col]).long()  # per image: foreground (2i) first, then background (2i + 1)
    order = torch.argsort(key, stable=True)
    img, col, key = img[order], col[order], key[order]
    is_fg = key % 2 == 0
    per_kind = torch.bincount(key, minlength=2 * len(proposals)).view(-1, 2)  # (B, [fg, bg])
    fg_counts, counts = torch.stack([per_kind[:, 0], per_kind.sum(1)]).tolist()
    boxes, gt_index = cands[img, col], matched[img, col]
    matched_boxes = gt[img, gt_index] if gt.shape[1] else boxes  # a padding row matches GT 0 and is background
    return ProposalSamples(boxes, img, is_fg, gt_index, torch.where(is_fg[:, None], matched_boxes, boxes),
                           best[img, col], counts, fg_counts)


class BoxHead(nn.Module):
    """Flatten (K, C, 7, 7) -> FC -> ReLU -> FC -> ReLU -> class logits (K, 2) [bg, person] and
    class-agnostic deltas (K, 4) (weights (10, 10, 5, 5))."""

    def __init__(self, channels: int, pool: int, fc_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(channels * pool * pool, fc_dim)
        self.fc2 = nn.Linear(fc_dim, fc_dim)
        self.cls_score = nn.Linear(fc_dim, 2)
        self.bbox_pred = nn.Linear(fc_dim, 4)
        for m in (self.fc1, self.fc2):
            nn.init.kaiming_uniform_(m.weight, a=1)
            nn.init.zeros_(m.bias)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.cls_score(x), self.bbox_pred(x)


def box_losses(logits: Tensor, deltas: Tensor, samples: ProposalSamples, weights, beta: float) -> dict[str, Tensor]:
    """CE over all sampled proposals (mean); L1 on fg deltas summed and divided by #sampled (d2).

    Every row is encoded in one call; the background rows (their target their own box) are left
    out of the sum by a mask rather than by indexing, which would need a host sync."""
    labels = samples.is_fg.long()
    loss_cls = F.cross_entropy(logits, labels) if labels.numel() else logits.sum() * 0
    tgt = encode_boxes(samples.boxes, samples.gt_boxes, weights)
    per_row = torch.where(samples.is_fg[:, None], _smooth_l1(deltas, tgt, beta), torch.zeros_like(tgt))
    loss_reg = per_row.sum() / max(1, labels.numel())
    return {"loss_cls": loss_cls, "loss_box_reg": loss_reg}


class Detected(NamedTuple):
    """One image's detections at test time."""

    boxes: Tensor  # (N, 4) as the box head regressed them: what every selection step reads
    scores: Tensor  # (N,)
    refined: Tensor  # (N, 4) what the per-box heads read and the outputs give: voted, or ``boxes``

    def rows(self, keep: Tensor) -> Detected:
        """The detections where ``keep`` (N,) bool is True (or at the indices ``keep``)."""
        return Detected(self.boxes[keep], self.scores[keep], self.refined[keep])


def box_inference(scores: list[Tensor], boxes: list[Tensor], cfg, min_score: float | None = None) -> list[Detected]:
    """Per image person scores (P_i,) and clipped boxes (P_i, 4) (`box_passes.read_boxes`) -> score
    threshold, NMS, top-k -> per image `Detected`.

    Keeps scores > ``min_score`` (``cfg.score_thresh_test`` when None). With ``cfg.box_vote_iou``
    the kept rows' ``refined`` boxes are voted by the boxes scoring > ``cfg.score_thresh_test`` that
    overlap them by that IoU (`refined_rows`); the voters do not depend on ``min_score``. Which rows
    are kept is decided on the ``boxes`` alone: voting moves the boxes of the people found, never
    which people are found.
    """
    threshold = cfg.score_thresh_test if min_score is None else min_score
    floor = min(threshold, cfg.score_thresh_test) if getattr(cfg, "box_vote_iou", 0.0) > 0 else threshold
    out = []
    for b, s in zip(boxes, scores):
        ok = (s > floor) & nonempty(b)
        b, s = b[ok], s[ok]
        candidates = torch.nonzero(s > threshold).squeeze(1)
        keep = candidates[nms(b[candidates], s[candidates], cfg.nms_thresh_test, max_output=cfg.detections_per_image)]
        out.append(Detected(b[keep], s[keep], refined_rows(b, s, keep, cfg)))
    return out


def refined_rows(boxes: Tensor, scores: Tensor, keep: Tensor, cfg) -> Tensor:
    """The ``keep`` rows (K,) of ``boxes`` (N, 4) as the heads read them -> (K, 4): with
    ``cfg.box_vote_iou``, voted (`vote_boxes`) by the boxes scoring > ``cfg.score_thresh_test``,
    each kept row by itself too whatever its score; else as they are."""
    vote_iou = getattr(cfg, "box_vote_iou", 0.0)
    if vote_iou <= 0:
        return boxes[keep]
    voters = torch.where(scores > cfg.score_thresh_test, scores, torch.zeros_like(scores))
    voters = voters.index_put((keep,), scores[keep])
    return vote_boxes(boxes[keep], boxes, voters, vote_iou)


class MaskHead(nn.Module):
    """``num_convs`` x (conv3x3 + ReLU) -> deconv x2 + ReLU -> 1x1 -> (K, 1, 2S, 2S) logits.

    ``forward`` also returns the last conv features (K, dim, S, S) for cross-cascading.
    """

    def __init__(self, channels: int, num_convs: int = 4, dim: int = 256):
        super().__init__()
        layers = []
        for i in range(num_convs):
            layers += [nn.Conv2d(channels if i == 0 else dim, dim, 3, 1, 1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(dim, dim, 2, 2)
        self.predictor = nn.Conv2d(dim, 1, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not self.predictor:
                _c2_msra(m)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)
        self.out_channels = dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feat = self.convs(x)
        return self.predictor(F.relu(self.deconv(feat))), feat


def mask_targets(boxes: Tensor, gt_masks: Tensor, gt_index: Tensor, size: int) -> Tensor:
    """Crop each matched GT mask (G, H, W) to its proposal (K, 4) at size x size -> (K, size, size)
    float in {0, 1} (RoIAlign aligned on the binary mask, then >= 0.5, like d2's bitmask path)."""
    if boxes.shape[0] == 0:
        return boxes.new_zeros((0, size, size))
    m = gt_masks.to(boxes.dtype)[:, None]
    rois = torch.cat([gt_index[:, None].to(boxes.dtype), boxes], dim=1)
    return (roi_align(m, rois, size, 1.0, sampling_ratio=1, aligned=True)[:, 0] >= 0.5).to(boxes.dtype)


def mask_loss(logits: Tensor, fg_boxes: list[Tensor], fg_gt: list[Tensor], targets: list[dict]) -> Tensor:
    """Per-pixel BCE of the mask logits (K, 1, S, S) of the foreground proposals (per image (K_i, 4),
    matched to GT ``fg_gt`` (K_i,)) against their GT masks (``targets[i]["masks"]`` (G, H, W));
    images without masks do not count (0 with a graph when none has them)."""
    size = logits.shape[-1]
    tgt, has = [], []
    for b, g, t in zip(fg_boxes, fg_gt, targets):
        m = t.get("masks")
        present = m is not None and b.shape[0] > 0
        tgt.append(mask_targets(b, m, g, size) if present else b.new_zeros((b.shape[0], size, size)))
        has.append(torch.full((b.shape[0],), present, dtype=torch.bool, device=b.device))
    tgt, has = torch.cat(tgt), torch.cat(has)
    return F.binary_cross_entropy_with_logits(logits[has, 0], tgt[has]) if bool(has.any()) else logits.sum() * 0


class KeypointHead(nn.Module):
    """``num_convs`` x (conv3x3 ``dim`` + ReLU) -> deconv(k4, s2) -> bilinear x2 -> (K, 17, 4S, 4S).

    With 14x14 pooling the heatmaps are 56x56 (Mask R-CNN). Also returns the conv features.
    """

    def __init__(self, channels: int, num_keypoints: int = 17, num_convs: int = 8, dim: int = 512):
        super().__init__()
        layers = []
        for i in range(num_convs):
            layers += [nn.Conv2d(channels if i == 0 else dim, dim, 3, 1, 1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.score_lowres = nn.ConvTranspose2d(dim, num_keypoints, 4, 2, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                _c2_msra(m)
        self.out_channels = dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feat = self.convs(x)
        heat = F.interpolate(self.score_lowres(feat), scale_factor=2, mode="bilinear", align_corners=False)
        return heat, feat


def keypoint_targets(boxes: Tensor, keypoints: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Keypoints (K, 17, 3) (x, y, v) of the matched GT, proposals (K, 4) -> flat heatmap index
    (K, 17) long and validity (K, 17) bool (visible and inside the box), as Mask R-CNN."""
    x0, y0 = boxes[:, 0:1], boxes[:, 1:2]
    sx = size / (boxes[:, 2:3] - x0).clamp(min=1e-6)
    sy = size / (boxes[:, 3:4] - y0).clamp(min=1e-6)
    x, y, v = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2]
    ix = ((x - x0) * sx).floor().long()
    iy = ((y - y0) * sy).floor().long()
    # A keypoint exactly on the right/bottom edge belongs to the last cell.
    ix = torch.where(x == boxes[:, 2:3], torch.full_like(ix, size - 1), ix)
    iy = torch.where(y == boxes[:, 3:4], torch.full_like(iy, size - 1), iy)
    valid = (v > 0) & (ix >= 0) & (iy >= 0) & (ix < size) & (iy < size)
    return (iy * size + ix).clamp(0, size * size - 1), valid


def keypoint_loss(heatmaps: Tensor, index: Tensor, valid: Tensor) -> Tensor:
    """Softmax CE over each flattened heatmap, averaged over valid keypoints of the batch."""
    k, j, h, w = heatmaps.shape
    if not bool(valid.any()):
        return heatmaps.sum() * 0
    logits = heatmaps.reshape(k * j, h * w)[valid.reshape(-1)]
    return F.cross_entropy(logits, index.reshape(-1)[valid.reshape(-1)], reduction="sum") / valid.sum()


def keypoint_head_loss(heatmaps: Tensor, fg_boxes: list[Tensor], fg_gt: list[Tensor], targets: list[dict]) -> Tensor:
    """`keypoint_loss` of the heatmaps (K, J, S, S) of the foreground proposals (per image (K_i, 4),
    matched to GT ``fg_gt`` (K_i,)) at their GT keypoints (``targets[i]["keypoints"]`` (G, J, 3));
    images without keypoints do not count."""
    joints, size = heatmaps.shape[1], heatmaps.shape[-1]
    idx, valid = [], []
    for b, g, t in zip(fg_boxes, fg_gt, targets):
        kps = t.get("keypoints")
        if kps is not None and b.shape[0] and kps.shape[0]:
            i, v = keypoint_targets(b, kps[g], size)
        else:
            i = torch.zeros((b.shape[0], joints), dtype=torch.long, device=b.device)
            v = torch.zeros_like(i, dtype=torch.bool)
        idx.append(i)
        valid.append(v)
    return keypoint_loss(heatmaps, torch.cat(idx), torch.cat(valid))


def heatmaps_to_keypoints(heatmaps: Tensor, boxes: Tensor) -> Tensor:
    """(K, 17, S, S) logits + (K, 4) boxes -> (K, 17, 3) = (x, y, logit) at the arg-max cell centre.

    Simpler than d2 (which resizes each heatmap to the box size with bicubic interpolation first):
    the location is the cell centre, i.e. a quantisation of box_size / 56.
    """
    k, j, h, w = heatmaps.shape
    if k == 0:
        return heatmaps.new_zeros((0, j, 3))
    score, idx = heatmaps.reshape(k, j, h * w).max(dim=2)
    iy, ix = (idx // w).to(boxes.dtype), (idx % w).to(boxes.dtype)
    bw, bh = (boxes[:, 2] - boxes[:, 0])[:, None], (boxes[:, 3] - boxes[:, 1])[:, None]
    x = boxes[:, 0:1] + (ix + 0.5) * bw / w
    y = boxes[:, 1:2] + (iy + 0.5) * bh / h
    return torch.stack([x, y, score], dim=2)
