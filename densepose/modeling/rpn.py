"""Region proposal network: shared conv head over P2..P6, anchor matching, losses, proposals."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.config import ModelConfig
from densepose.modeling.matching import match, sample_fg_bg_masks
from densepose.modeling.ops.groups import pad_groups
from densepose.modeling.ops import (
    AnchorGenerator, batched_nms, batched_nms_per_image, box_iou, clip_boxes, decode_boxes, encode_boxes, nonempty,
)

RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


class RPNHead(nn.Module):
    """conv3x3 + ReLU, then 1x1 objectness (A) and 1x1 deltas (4A), shared by all levels."""

    def __init__(self, channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.objectness = nn.Conv2d(channels, num_anchors, 1)
        self.deltas = nn.Conv2d(channels, 4 * num_anchors, 1)
        for m in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """-> per level objectness (N, H*W*A) and deltas (N, H*W*A, 4), in anchor order (y, x, a)."""
        logits, deltas = [], []
        for x in feats:
            t = F.relu(self.conv(x))
            n, _, h, w = t.shape
            lo = self.objectness(t)
            a = lo.shape[1]
            logits.append(lo.permute(0, 2, 3, 1).reshape(n, h * w * a))
            deltas.append(self.deltas(t).view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * a, 4))
        return logits, deltas


class RPN(nn.Module):
    """Region proposals. Its anchors and head are built from ``cfg`` once; the settings of each call
    (top-k, NMS, the losses' sampling) come from the ``cfg`` passed to ``forward``, the owner's
    current one, so a model whose config is replaced (``model.cfg = dataclasses.replace(...)``)
    proposes by the new settings."""

    def __init__(self, cfg: ModelConfig, channels: int, strides: tuple[int, ...]):
        super().__init__()
        self.anchor_generator = AnchorGenerator(cfg.anchor_sizes, cfg.aspect_ratios, strides)
        self.head = RPNHead(channels, self.anchor_generator.num_anchors)

    def forward(self, feats: list[Tensor], image_sizes: list[tuple[int, int]], cfg: ModelConfig,
                gt_boxes: list[Tensor] | None = None) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Features [P2..P6] -> (proposals per image (K_i, 4), losses (training only)), by the
        settings of ``cfg``."""
        anchors = self.anchor_generator([f.shape[-2:] for f in feats])
        logits, deltas = self.head(feats)
        proposals = self._proposals(anchors, logits, deltas, image_sizes, cfg)
        losses: dict[str, Tensor] = {}
        if self.training:
            assert gt_boxes is not None
            losses = self._losses(torch.cat(anchors), torch.cat(logits, 1), torch.cat(deltas, 1), gt_boxes, cfg)
        return proposals, losses

    @torch.no_grad()
    def _proposals(self, anchors, logits, deltas, image_sizes, cfg: ModelConfig) -> list[Tensor]:
        pre = cfg.rpn_pre_nms_topk_train if self.training else cfg.rpn_pre_nms_topk_test
        post = cfg.rpn_post_nms_topk_train if self.training else cfg.rpn_post_nms_topk_test
        n = logits[0].shape[0]
        boxes_l, scores_l, levels_l = [], [], []
        for lvl, (anc, lo, de) in enumerate(zip(anchors, logits, deltas)):
            k = min(pre, lo.shape[1])
            top, idx = lo.topk(k, dim=1)  # (N, k)
            d = de.gather(1, idx[..., None].expand(-1, -1, 4))
            b = decode_boxes(d.reshape(-1, 4), anc[idx.reshape(-1)], RPN_BOX_WEIGHTS).view(n, k, 4)
            boxes_l.append(b)
            scores_l.append(top)
            levels_l.append(torch.full((k,), lvl, dtype=torch.long, device=lo.device))
        boxes, scores, levels = torch.cat(boxes_l, 1), torch.cat(scores_l, 1), torch.cat(levels_l)
        size = torch.tensor(image_sizes, dtype=boxes.dtype, device=boxes.device)[:, None, :, None]  # (N, 1, 2, 1)
        boxes = clip_boxes(boxes, size[:, :, 0], size[:, :, 1])  # (N, K, 4), each image's boxes clipped to it
        ok = nonempty(boxes.view(-1, 4)).view(n, -1) & torch.isfinite(scores)
        if _nms_images_together(boxes.device):
            keeps = batched_nms_per_image(boxes, scores, levels, ok, cfg.rpn_nms_thresh, max_output=post)
            return [b[k] for b, k in zip(boxes, keeps)]
        out = []
        for b, s, o in zip(boxes, scores, ok):
            b, s, lv = b[o], s[o], levels[o]
            out.append(b[batched_nms(b, s, lv, cfg.rpn_nms_thresh, max_output=post)])
        return out

    def _losses(self, anchors: Tensor, logits: Tensor, deltas: Tensor, gt_boxes: list[Tensor],
                cfg: ModelConfig) -> dict[str, Tensor]:
        """Objectness and box losses of every image at once: anchors (A, 4), logits (N, A), deltas
        (N, A, 4), per image its GT boxes (G_i, 4). Matching and sampling run on the batch (the
        images' GT padded, the padding at IoU -1): the device sees no per-image calls, and two syncs
        for the whole batch (the sampled anchors and the foreground ones)."""
        n = logits.shape[0]
        gt, gt_ok = pad_groups(gt_boxes)
        gt = gt.to(anchors.dtype)  # (N, G, 4)
        iou = torch.where(gt_ok[..., None], box_iou(gt, anchors), -1.0)  # (N, G, A)
        matched, labels = match(iou, cfg.rpn_fg_iou, cfg.rpn_bg_iou, allow_low_quality=True)
        fg, bg = sample_fg_bg_masks(labels, cfg.rpn_batch_size_per_image, cfg.rpn_positive_fraction)
        sampled = fg | bg
        obj_loss = F.binary_cross_entropy_with_logits(logits[sampled], fg[sampled].to(logits.dtype), reduction="sum")
        fg_img, fg_anchor = fg.nonzero(as_tuple=True)
        tgt = encode_boxes(anchors[fg_anchor], gt[fg_img, matched[fg_img, fg_anchor]], RPN_BOX_WEIGHTS)
        reg_loss = _smooth_l1(deltas[fg_img, fg_anchor], tgt, cfg.rpn_smooth_l1_beta).sum()
        # d2 normalises both by the number of sampled anchors (batch size x images), not by #fg.
        norm = float(cfg.rpn_batch_size_per_image * n)
        return {"loss_rpn_cls": obj_loss / norm, "loss_rpn_loc": reg_loss / norm}


def _nms_images_together(device: torch.device) -> bool:
    """The NMS of every image at once (`batched_nms_per_image`) off the CPU, where each small call is
    a kernel launch; image by image on the CPU, where compacting the survivors is cheaper."""
    return device.type != "cpu"


def _smooth_l1(x: Tensor, y: Tensor, beta: float) -> Tensor:
    """Elementwise smooth-L1; beta = 0 is plain L1 (d2's default for both RPN and box head)."""
    d = (x - y).abs()
    if beta <= 0:
        return d
    return torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
