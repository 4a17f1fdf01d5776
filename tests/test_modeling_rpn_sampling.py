"""The RPN's matching, sampling and losses run on the whole batch at once (no per-image calls)."""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from densepose.modeling import rpn as rpn_module
from densepose.modeling.config import ModelConfig
from densepose.modeling.matching import match, sample_fg_bg_masks
from densepose.modeling.ops import box_iou, encode_boxes
from image_by_image import sample_fg_bg


def _random_boxes(g: torch.Generator, n: int, size: float = 200.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 80], 1)


def _losses_image_by_image(cfg, anchors, logits, deltas, gt_boxes):
    """The RPN losses as they were computed before: image by image."""
    obj, fg_a, fg_g, fg_d = logits.new_zeros(()), [], [], []
    for i, gt in enumerate(gt_boxes):
        matched, labels = match(box_iou(gt, anchors), cfg.rpn_fg_iou, cfg.rpn_bg_iou, allow_low_quality=True)
        fg, bg = sample_fg_bg(labels, cfg.rpn_batch_size_per_image, cfg.rpn_positive_fraction)
        idx = torch.cat([fg, bg])
        target = torch.cat([torch.ones_like(fg), torch.zeros_like(bg)]).to(logits.dtype)
        obj = obj + F.binary_cross_entropy_with_logits(logits[i, idx], target, reduction="sum")
        fg_a.append(anchors[fg])
        fg_g.append(gt[matched[fg]])
        fg_d.append(deltas[i, fg])
    tgt = encode_boxes(torch.cat(fg_a), torch.cat(fg_g), rpn_module.RPN_BOX_WEIGHTS)
    reg = rpn_module._smooth_l1(torch.cat(fg_d), tgt, cfg.rpn_smooth_l1_beta).sum()
    norm = float(cfg.rpn_batch_size_per_image * len(gt_boxes))
    return {"loss_rpn_cls": obj / norm, "loss_rpn_loc": reg / norm}


def test_rpn_losses_of_the_batch_equal_the_image_by_image_losses():
    """With a sample size that takes every labelled anchor (no random draw), the batch's losses are
    the image-by-image ones: images with several GT, one GT, none; a GT's low-quality claim."""
    g = torch.Generator().manual_seed(0)
    cfg = dataclasses.replace(ModelConfig(), rpn_batch_size_per_image=10**7, rpn_positive_fraction=1.0)
    rpn = rpn_module.RPN(cfg, 8, (4, 8, 16, 32, 64))
    anchors = _random_boxes(g, 3000)
    gt_boxes = [_random_boxes(g, 5), _random_boxes(g, 1), torch.zeros(0, 4), _random_boxes(g, 3)]
    gt_boxes[1][0] = torch.tensor([10.0, 10.0, 11.0, 11.5])  # tiny: only its best anchors claim it
    logits = torch.randn(4, 3000, generator=g)
    deltas = torch.randn(4, 3000, 4, generator=g) * 0.1
    got = rpn._losses(anchors, logits, deltas, gt_boxes, cfg)
    want = _losses_image_by_image(cfg, anchors, logits, deltas, gt_boxes)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-7)


def test_batch_sampling_draws_the_counts_of_image_by_image_sampling_uniformly():
    """`sample_fg_bg_masks`: per image min(#fg, cap) fg and min(#bg, batch - #fg drawn) bg, only
    from their own candidates, and each candidate about equally often over many draws."""
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(-1, 2, (3, 400), generator=g).to(torch.int8)
    labels[1, :] = torch.where(labels[1] == 1, torch.tensor(0, dtype=torch.int8), labels[1])  # no fg at all
    labels[2, :390] = 1  # more fg than the cap
    torch.manual_seed(0)
    hits = torch.zeros(3, 400)
    for _ in range(300):
        fg, bg = sample_fg_bg_masks(labels, 64, 0.25)
        assert not (fg & bg).any() and (fg <= (labels == 1)).all() and (bg <= (labels == 0)).all()
        for i in range(3):
            n_fg = min(int((labels[i] == 1).sum()), 16)
            assert int(fg[i].sum()) == n_fg
            assert int(bg[i].sum()) == min(int((labels[i] == 0).sum()), 64 - n_fg)
        hits += fg.float()
    rate = hits[0][labels[0] == 1] / 300  # 16 of ~133 fg drawn each time: about 0.12 each
    expected = 16 / int((labels[0] == 1).sum())
    assert (rate - expected).abs().max() < 0.08 and rate.min() > 0
