"""ROI heads: proposal sampling, 2-FC box head (person vs background), mask and keypoint heads."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.matching import match, sample_fg_bg
from densepose.modeling.ops import box_iou, clip_boxes, decode_boxes, encode_boxes, nms, roi_align
from densepose.modeling.rpn import _smooth_l1


def _c2_msra(m: nn.Module) -> None:
    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    if m.bias is not None:
        nn.init.zeros_(m.bias)


class ProposalSample:
    """The sampled proposals of one image: boxes (K, 4), fg flag, matched GT index, IoU to it."""

    def __init__(self, boxes: Tensor, is_fg: Tensor, gt_index: Tensor, iou: Tensor):
        self.boxes, self.is_fg, self.gt_index, self.iou = boxes, is_fg, gt_index, iou


def sample_proposals(proposals: list[Tensor], gt_boxes: list[Tensor], cfg) -> list[ProposalSample]:
    """Add GT boxes to the proposals, match at ``roi_fg_iou`` and sample ``roi_batch_size_per_image``
    at ``roi_positive_fraction`` (d2 defaults 512 @ 0.25, IoU 0.5)."""
    out = []
    for props, gt in zip(proposals, gt_boxes):
        boxes = torch.cat([props, gt.to(props.dtype)])
        iou = box_iou(gt, boxes)
        matched, labels = match(iou, cfg.roi_fg_iou, cfg.roi_fg_iou, allow_low_quality=False)
        fg, bg = sample_fg_bg(labels, cfg.roi_batch_size_per_image, cfg.roi_positive_fraction)
        idx = torch.cat([fg, bg])
        best = iou.max(dim=0).values if gt.shape[0] else boxes.new_zeros(boxes.shape[0])
        is_fg = torch.zeros(idx.numel(), dtype=torch.bool, device=boxes.device)
        is_fg[: fg.numel()] = True
        out.append(ProposalSample(boxes[idx], is_fg, matched[idx], best[idx]))
    return out


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


def box_losses(logits: Tensor, deltas: Tensor, samples: list[ProposalSample], gt_boxes: list[Tensor],
               weights, beta: float) -> dict[str, Tensor]:
    """CE over all sampled proposals (mean); L1 on fg deltas summed and divided by #sampled (d2)."""
    labels = torch.cat([s.is_fg.long() for s in samples])
    loss_cls = F.cross_entropy(logits, labels) if labels.numel() else logits.sum() * 0
    # The foreground proposals of every image, in order, encoded in one call.
    fgmask = torch.cat([s.is_fg for s in samples])
    ref = torch.cat([s.boxes[s.is_fg] for s in samples])
    matched = torch.cat([gt[s.gt_index[s.is_fg]].to(s.boxes.dtype) for s, gt in zip(samples, gt_boxes)])
    tgt = encode_boxes(ref, matched, weights)
    loss_reg = _smooth_l1(deltas[fgmask], tgt, beta).sum() / max(1, labels.numel())
    return {"loss_cls": loss_cls, "loss_box_reg": loss_reg}


def box_inference(logits: Tensor, deltas: Tensor, proposals: list[Tensor], image_sizes, cfg, weights):
    """Scores, decoded + clipped boxes, score threshold, NMS, top-k -> per image (boxes, scores)."""
    scores = F.softmax(logits, dim=1)[:, 1]
    boxes_all = decode_boxes(deltas, torch.cat(proposals), weights)
    out = []
    start = 0
    for props, (h, w) in zip(proposals, image_sizes):
        k = props.shape[0]
        b = clip_boxes(boxes_all[start:start + k], h, w)
        s = scores[start:start + k]
        start += k
        ok = (s > cfg.score_thresh_test) & ((b[:, 2] - b[:, 0]) > 0) & ((b[:, 3] - b[:, 1]) > 0)
        b, s = b[ok], s[ok]
        keep = nms(b, s, cfg.nms_thresh_test, max_output=cfg.detections_per_image)
        out.append((b[keep], s[keep]))
    return out


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
