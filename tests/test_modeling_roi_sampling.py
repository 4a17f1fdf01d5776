"""The ROI heads sample proposals, encode box targets and choose the DensePose RoIs of every image
at once (no per-image calls or syncs); with nothing left to a random draw the batch gives the
image-by-image answers (`image_by_image`)."""
from __future__ import annotations

import dataclasses

import torch

import image_by_image
from densepose.modeling.config import ModelConfig
from densepose.modeling.densepose_head import densepose_rois
from densepose.modeling.roi_heads import box_losses, sample_proposals

WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def _boxes(g: torch.Generator, n: int) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 150
    return torch.cat([xy, xy + 8 + torch.rand(n, 2, generator=g) * 60], 1)


def _around(g: torch.Generator, gt: torch.Tensor, per_gt: int) -> torch.Tensor:
    """Proposals jittered around each GT box (many overlap it at IoU > 0.5, some > 0.7)."""
    boxes = gt.repeat_interleave(per_gt, 0)
    return boxes + torch.randn(boxes.shape, generator=g) * 4


def _batch(g: torch.Generator):
    """Images with several people, none, one without proposals, and people without DensePose data."""
    gts = [_boxes(g, 3), torch.zeros(0, 4), _boxes(g, 2), _boxes(g, 1)]
    proposals = [torch.cat([_around(g, gts[0], 6), _boxes(g, 40)]), _boxes(g, 25),
                 torch.zeros(0, 4), torch.cat([_boxes(g, 10), _around(g, gts[3], 8)])]
    person = {"x": [10.0, 100.0], "y": [20.0, 200.0], "I": [1, 2], "U": [0.1, 0.2], "V": [0.3, 0.4]}
    dps = [[person, None, person], [], [None, None], [person]]
    targets = [{"boxes": b, "dp": d} for b, d in zip(gts, dps)]
    return proposals, gts, targets


def _take_all(**changes) -> ModelConfig:
    return dataclasses.replace(ModelConfig(), roi_batch_size_per_image=10**7, roi_positive_fraction=1.0, **changes)


def test_sampled_proposals_of_the_batch_equal_each_image_alone():
    g = torch.Generator().manual_seed(0)
    proposals, gts, _ = _batch(g)
    cfg = _take_all()
    got = sample_proposals(proposals, gts, cfg)
    want = image_by_image.sample_proposals(proposals, gts, cfg)
    assert got.counts == [w["boxes"].shape[0] for w in want]
    assert got.fg_counts == [int(w["is_fg"].sum()) for w in want]
    assert got.fg_counts[0] > 0 and got.fg_counts[2] == 2 and got.fg_counts[1] == 0  # the GT themselves
    for i, w in enumerate(want):
        rows = got.per_image(torch.arange(sum(got.counts)))[i]
        torch.testing.assert_close(got.boxes[rows], w["boxes"])
        assert torch.equal(got.is_fg[rows], w["is_fg"])
        assert torch.equal(got.image[rows], torch.full_like(rows, i))
        torch.testing.assert_close(got.iou[rows], w["iou"])
        fg = w["is_fg"]
        assert torch.equal(got.gt_index[rows][fg], w["gt_index"][fg])
        # Each foreground row carries its own image's GT box; each background row its own box.
        torch.testing.assert_close(got.gt_boxes[rows][fg], gts[i][w["gt_index"][fg]])
        torch.testing.assert_close(got.gt_boxes[rows][~fg], w["boxes"][~fg])
        torch.testing.assert_close(torch.cat(got.fg_per_image(got.boxes))[sum(got.fg_counts[:i]):][:int(fg.sum())],
                                   w["boxes"][fg])


def test_box_losses_of_the_batch_equal_the_image_by_image_losses():
    """The targets of every row are encoded at once: a foreground proposal paired with another
    image's GT, or a background row counted in the box loss, would change the loss."""
    g = torch.Generator().manual_seed(1)
    proposals, gts, _ = _batch(g)
    cfg = _take_all()
    got, want = sample_proposals(proposals, gts, cfg), image_by_image.sample_proposals(proposals, gts, cfg)
    k = sum(got.counts)
    logits, deltas = torch.randn(k, 2, generator=g), torch.randn(k, 4, generator=g)
    batch = box_losses(logits, deltas, got, WEIGHTS, 0.0)
    ref = image_by_image.box_losses(logits, deltas, want, gts, WEIGHTS, 0.0)
    for name in ("loss_cls", "loss_box_reg"):
        torch.testing.assert_close(batch[name], ref[name], rtol=1e-5, atol=1e-7)
    assert float(batch["loss_box_reg"]) > 0


def test_densepose_rois_of_the_batch_equal_each_image_alone():
    g = torch.Generator().manual_seed(2)
    proposals, gts, targets = _batch(g)
    cfg = _take_all()
    got, want = sample_proposals(proposals, gts, cfg), image_by_image.sample_proposals(proposals, gts, cfg)
    packed, boxes, gt_index, keep = densepose_rois(got, targets, cfg.dp_fg_iou, 0)
    want_boxes, want_gt = image_by_image.densepose_rois(want, targets, cfg.dp_fg_iou)
    assert packed.gt_boxes.shape[0] == 3  # the people with DensePose data
    assert keep.shape == (sum(got.fg_counts),) and int(keep.sum()) == sum(b.shape[0] for b in want_boxes)
    assert sum(b.shape[0] for b in want_boxes) > 3
    for b, w, i, wi in zip(boxes, want_boxes, gt_index, want_gt):
        torch.testing.assert_close(b, w)
        assert torch.equal(i, wi)


def test_densepose_rois_cap_draws_each_image_s_eligible_rows_uniformly():
    g = torch.Generator().manual_seed(3)
    proposals, gts, targets = _batch(g)
    cfg = _take_all()
    samples = sample_proposals(proposals, gts, cfg)
    _, eligible, _, _ = densepose_rois(samples, targets, cfg.dp_fg_iou, 0)
    n_eligible = [b.shape[0] for b in eligible]
    assert n_eligible[0] > 3
    torch.manual_seed(0)
    seen = torch.zeros(n_eligible[0])
    for _ in range(400):
        _, boxes, _, keep = densepose_rois(samples, targets, cfg.dp_fg_iou, 3)
        assert [b.shape[0] for b in boxes] == [min(n, 3) for n in n_eligible]
        assert int(keep.sum()) == sum(min(n, 3) for n in n_eligible)
        match = (boxes[0][:, None, :] == eligible[0][None, :, :]).all(-1)  # (3, n_eligible)
        assert bool((match.sum(1) == 1).all())  # every chosen box is one of the image's eligible rows
        seen += match.sum(0)
    expected = 400 * 3 / n_eligible[0]
    assert float((seen - expected).abs().max()) < 0.35 * expected
