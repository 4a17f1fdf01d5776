"""Detection ops against naive references: RoIAlign, NMS, box coding, IoU, anchors."""
from __future__ import annotations

import math

import pytest
import torch

from densepose.modeling.ops import (
    AnchorGenerator,
    MultiScaleRoIAlign,
    assign_fpn_levels,
    batched_nms,
    batched_nms_per_image,
    box_iou,
    decode_boxes,
    encode_boxes,
    nms,
    roi_align,
)


def _bilinear_ref(f, y, x):
    """torchvision/detectron2 CPU kernel's bilinear_interpolate, one point, f (C, H, W)."""
    c, h, w = f.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return torch.zeros(c, dtype=f.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yh = yl = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xh = xl = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * f[:, yl, xl] + hy * lx * f[:, yl, xh] + ly * hx * f[:, yh, xl] + ly * lx * f[:, yh, xh]


def _roi_align_ref(feat, rois, out, scale, sr, aligned):
    """Naive loop RoIAlign (one box, one bin, one sample at a time)."""
    k = rois.shape[0]
    c = feat.shape[1]
    res = torch.zeros(k, c, out, out, dtype=feat.dtype)
    off = 0.5 if aligned else 0.0
    for r in range(k):
        b = int(rois[r, 0])
        x0, y0, x1, y1 = (float(v) * scale - off for v in rois[r, 1:])
        rw, rh = x1 - x0, y1 - y0
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bw, bh = rw / out, rh / out
        for py in range(out):
            for px in range(out):
                acc = torch.zeros(c, dtype=feat.dtype)
                for iy in range(sr):
                    for ix in range(sr):
                        yy = y0 + py * bh + (iy + 0.5) * bh / sr
                        xx = x0 + px * bw + (ix + 0.5) * bw / sr
                        acc += _bilinear_ref(feat[b], yy, xx)
                res[r, :, py, px] = acc / (sr * sr)
    return res


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sr", [1, 2])
@pytest.mark.parametrize("training", [False, True])  # inference: embedding bags; training: grid_sample
def test_roi_align_matches_naive_loop(aligned, sr, training):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64).requires_grad_(training)
    # Boxes inside, partly outside, tiny, and fully outside the map (stride 2 -> scale 0.5).
    rois = torch.tensor([
        [0, 2.0, 3.0, 15.0, 12.0],
        [1, -6.0, -4.0, 8.0, 9.0],
        [1, 10.0, 10.0, 10.5, 10.4],
        [0, 15.0, 1.0, 30.0, 25.0],
        [1, 40.0, 40.0, 50.0, 60.0],
    ], dtype=torch.float64)
    got = roi_align(feat, rois, 4, 0.5, sr, aligned)
    ref = _roi_align_ref(feat.detach(), rois, 4, 0.5, sr, aligned)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_roi_align_at_inference_sums_feature_rows_without_a_sample_grid(monkeypatch):
    """Inference pools by weighted sums of channels-last rows (5-10x faster on the CPU than
    grid_sample; benchmarks/bench_predict.py), with the same values, in a batch and for channels-last
    features as the model's FPN gives them."""
    import sys

    ra = sys.modules["densepose.modeling.ops.roi_align"]

    def no_grid(*args, **kwargs):
        raise AssertionError("grid_sample called at inference")

    monkeypatch.setattr(ra.F, "grid_sample", no_grid)
    g = torch.Generator().manual_seed(7)
    feat = torch.randn(2, 5, 9, 11, generator=g, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    rois = torch.tensor([[1, 2.0, 3.0, 15.0, 12.0], [0, -6.0, -4.0, 8.0, 9.0], [1, 40.0, 40.0, 50.0, 60.0]],
                        dtype=torch.float64)
    with torch.no_grad():
        got = roi_align(feat.requires_grad_(True), rois, 7, 0.5, 2, True)
    torch.testing.assert_close(got, _roi_align_ref(feat.detach(), rois, 7, 0.5, 2, True), rtol=1e-10, atol=1e-10)
    assert got.shape == (3, 5, 7, 7) and got.is_contiguous()


def test_roi_align_constant_map_and_gradient():
    feat = torch.full((1, 2, 8, 8), 3.0, requires_grad=True)
    rois = torch.tensor([[0, 4.0, 4.0, 20.0, 24.0]])
    out = roi_align(feat, rois, 7, 0.25, 2, True)
    torch.testing.assert_close(out, torch.full_like(out, 3.0))
    out.sum().backward()
    # Each output averages weights summing to one: total gradient = number of outputs.
    assert feat.grad.sum().item() == pytest.approx(2 * 49, rel=1e-5)
    assert roi_align(feat, torch.zeros(0, 5), 7, 0.25).shape == (0, 2, 7, 7)


def test_roi_align_gather_path_matches(monkeypatch):
    # The deterministic-CUDA fallback (explicit gathers), run on CPU; also with one RoI per chunk.
    import sys

    ra = sys.modules["densepose.modeling.ops.roi_align"]
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0, 2.0, 3.0, 15.0, 12.0], [1, -6.0, -4.0, 8.0, 9.0], [1, 40.0, 40.0, 50.0, 60.0]],
                        dtype=torch.float64)
    for aligned in (True, False):
        off = 0.5 if aligned else 0.0
        x0, y0 = rois[:, 1] * 0.5 - off, rois[:, 2] * 0.5 - off
        rw, rh = rois[:, 3] * 0.5 - off - x0, rois[:, 4] * 0.5 - off - y0
        if not aligned:
            rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
        ref = _roi_align_ref(feat, rois, 4, 0.5, 2, aligned)
        torch.testing.assert_close(ra._roi_align_gather(feat, rois, 4, 4, x0, y0, rw, rh, 2), ref)
        monkeypatch.setattr(ra, "_CHUNK_ELEMS", 1)
        torch.testing.assert_close(ra._roi_align_gather(feat, rois, 4, 4, x0, y0, rw, rh, 2), ref)
        monkeypatch.undo()
        # Its gradient is the training path's (grid_sample's).
        weight = torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64)
        grads = []
        for pool in (lambda f: ra._roi_align_gather(f, rois, 4, 4, x0, y0, rw, rh, 2),
                     lambda f: roi_align(f, rois, 4, 0.5, 2, aligned)):
            f = feat.clone().requires_grad_(True)
            (pool(f) * weight).sum().backward()
            grads.append(f.grad)
        torch.testing.assert_close(grads[0], grads[1])


def test_roi_align_batch_and_tiny_maps():
    g = torch.Generator().manual_seed(1)
    # RoIs of several images in any order equal pooling each image alone; 1-pixel maps work.
    feat = torch.randn(3, 2, 1, 5, generator=g, dtype=torch.float64)
    rois = torch.tensor([[2, 0.0, -1.0, 6.0, 2.0], [0, 1.0, 0.0, 3.0, 1.0], [2, 3.0, 0.5, 9.0, 0.6]], dtype=torch.float64)
    got = roi_align(feat, rois, 3, 1.0, 2, True)
    torch.testing.assert_close(got, _roi_align_ref(feat, rois, 3, 1.0, 2, True), rtol=1e-10, atol=1e-10)
    one = roi_align(feat[2:3], torch.cat([torch.zeros(1, 1, dtype=torch.float64), rois[0:1, 1:]], 1), 3, 1.0)
    torch.testing.assert_close(got[0:1], one)


def test_roi_align_of_a_batch_equals_each_image_alone_values_and_gradients():
    """One grid_sample call for all images (RoIs padded per image) = pooling image by image."""
    g = torch.Generator().manual_seed(5)
    feat = torch.randn(3, 4, 12, 10, generator=g, dtype=torch.float64)
    xy = torch.rand(9, 2, generator=g, dtype=torch.float64) * 30
    images = torch.tensor([2, 0, 2, 2, 1, 0, 2, 1, 2], dtype=torch.float64)  # uneven counts, any order
    rois = torch.cat([images[:, None], xy, xy + 4 + 20 * torch.rand(9, 2, generator=g, dtype=torch.float64)], 1)
    weight = torch.randn(9, 4, 3, 3, generator=g, dtype=torch.float64)
    batched = feat.clone().requires_grad_(True)
    (roi_align(batched, rois, 3, 0.5, 2, True) * weight).sum().backward()
    alone = feat.clone().requires_grad_(True)
    total = 0
    for b in range(3):
        sel = rois[:, 0] == b
        one = torch.cat([torch.zeros(int(sel.sum()), 1, dtype=torch.float64), rois[sel, 1:]], 1)
        total = total + (roi_align(alone[b:b + 1], one, 3, 0.5, 2, True) * weight[sel]).sum()
    total.backward()
    torch.testing.assert_close(batched.grad, alone.grad, rtol=1e-12, atol=1e-12)
    assert batched.grad.abs().sum() > 0


def test_multiscale_roi_align_uses_fpn_level():
    boxes = torch.tensor([[0, 0, 50.0, 50.0], [0, 0, 224.0, 224.0], [0, 0, 1000.0, 1000.0], [0, 0, 2.0, 2.0]])
    assert assign_fpn_levels(boxes, 2, 5).tolist() == [0, 2, 3, 0]  # levels 2, 4, 5, 2
    # Level l is filled with the constant l: pooled values reveal the chosen level.
    feats = [torch.full((1, 1, 256 // s, 256 // s), float(i)) for i, s in enumerate((4, 8, 16, 32))]
    pooler = MultiScaleRoIAlign(3, (4, 8, 16, 32))
    out = pooler(feats, [torch.tensor([[10, 10, 40, 40.0], [0, 0, 250, 250.0]])])
    assert out[0].unique().tolist() == [0.0]
    assert out[1].unique().tolist() == [2.0]


def _nms_brute(boxes, scores, t):
    order = scores.argsort(descending=True).tolist()
    iou = box_iou(boxes, boxes).tolist()
    keep = []
    for i in order:
        if all(iou[i][j] <= t for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("n,block", [(0, 256), (1, 256), (60, 256), (300, 16), (700, 256)])
def test_nms_matches_brute_force(n, block):
    g = torch.Generator().manual_seed(n)
    xy = torch.rand(n, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 40], 1)
    scores = torch.rand(n, generator=g)
    for t in (0.3, 0.5, 0.7):
        ref = _nms_brute(boxes, scores, t)
        assert nms(boxes, scores, t, block=block).tolist() == ref
        assert nms(boxes, scores, t, block=block, max_output=5).tolist() == ref[:5]


def test_batched_nms_is_per_group():
    boxes = torch.tensor([[0, 0, 10, 10.0], [1, 1, 11, 11.0], [0, 0, 10, 10.0], [50, 50, 60, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    idxs = torch.tensor([0, 0, 1, 1])
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]


@pytest.mark.parametrize("block", [16, 256])
def test_nms_told_the_groups_keeps_what_one_comparison_of_all_keeps(block):
    """Boxes of different groups never overlap (``batched_nms`` shifts them apart): told the groups,
    `nms` compares each kept box with its own group's later boxes only, and keeps the same boxes in
    the same order, with ties in the scores and with a cap on the count."""
    g = torch.Generator().manual_seed(block)
    for trial in range(6):
        n = 400
        groups = torch.randint(0, 5, (n,), generator=g)
        xy = torch.rand(n, 2, generator=g) * 150 + groups[:, None] * 1000.0
        boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 60], 1)
        scores = torch.rand(n, generator=g)
        if trial % 2:
            scores = (scores * 10).round() / 10  # many ties
        for cap in (None, 30):
            alone = nms(boxes, scores, 0.5, block=block, max_output=cap)
            assert torch.equal(nms(boxes, scores, 0.5, block=block, max_output=cap, groups=groups), alone)
            assert torch.equal(batched_nms(boxes, scores, groups, 0.5, max_output=cap), alone)


@pytest.mark.parametrize("block", [16, 64, 1024])
def test_nms_of_a_padded_batch_equals_each_image_alone(block):
    """`batched_nms_per_image` keeps, for every image, exactly the boxes `batched_nms` keeps of that
    image's valid boxes: with ties in the scores, an image with no box, a cap on the count, blocks
    smaller and larger than an image."""
    g = torch.Generator().manual_seed(block)
    for trial in range(8):
        n_img, n = 5, int(torch.randint(1, 300, (1,), generator=g))
        xy = torch.rand(n_img, n, 2, generator=g) * 200
        boxes = torch.cat([xy, xy + 1 + torch.rand(n_img, n, 2, generator=g) * 60], 2)
        scores = torch.rand(n_img, n, generator=g)
        if trial % 2:
            scores = (scores * 10).round() / 10  # many ties
        levels = torch.randint(0, 5, (n,), generator=g)
        valid = torch.rand(n_img, n, generator=g) > 0.3
        valid[0] = False
        for cap in (None, 40):
            got = batched_nms_per_image(boxes, scores, levels, valid, 0.5, max_output=cap, block=block)
            assert len(got) == n_img and got[0].numel() == 0
            for i in range(n_img):
                b, s, lv = boxes[i][valid[i]], scores[i][valid[i]], levels[valid[i]]
                assert torch.equal(boxes[i][got[i]], b[batched_nms(b, s, lv, 0.5, max_output=cap)])


def test_rpn_proposals_are_the_same_with_every_image_s_nms_at_once(monkeypatch):
    """The RPN's proposals of a batch are the same boxes, in the same order, whether its NMS runs
    image by image (the CPU's path) or for every image at once (the path off the CPU)."""
    from densepose.modeling import rpn as rpn_module
    from densepose.modeling.config import ModelConfig

    torch.manual_seed(0)
    rpn = rpn_module.RPN(ModelConfig(), 16, (4, 8, 16, 32, 64)).eval()
    sizes = [(96, 128), (80, 112), (96, 100)]
    feats = [torch.randn(3, 16, 96 // s, 128 // s) for s in (4, 8, 16, 32, 64)]
    with torch.no_grad():
        alone, _ = rpn(feats, sizes, ModelConfig())
        monkeypatch.setattr(rpn_module, "_nms_images_together", lambda device: True)
        together, _ = rpn(feats, sizes, ModelConfig())
    assert [p.shape[0] for p in alone] == [p.shape[0] for p in together] and alone[0].shape[0] > 100
    assert all(torch.equal(a, t) for a, t in zip(alone, together))


def test_box_iou_values():
    a = torch.tensor([[0, 0, 10, 10.0], [0, 0, 0, 0.0]])
    b = torch.tensor([[5, 0, 15, 10.0], [20, 20, 30, 30.0], [0, 0, 10, 10.0]])
    iou = box_iou(a, b)
    torch.testing.assert_close(iou, torch.tensor([[50 / 150, 0, 1], [0, 0, 0.0]]))


def test_box_coding_round_trip_and_clamp():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    ref = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], 1).double()
    xy2 = torch.rand(50, 2, generator=g) * 100
    tgt = torch.cat([xy2, xy2 + 1 + torch.rand(50, 2, generator=g) * 50], 1).double()
    for w in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        d = encode_boxes(ref, tgt, w)
        torch.testing.assert_close(decode_boxes(d, ref, w), tgt)
    huge = decode_boxes(torch.tensor([[0, 0, 100.0, 100.0]]), torch.tensor([[0, 0, 16.0, 16.0]]), (1, 1, 1, 1))
    assert torch.isfinite(huge).all()
    torch.testing.assert_close(huge[0, 2] - huge[0, 0], torch.tensor(1000.0))


def test_anchor_counts_and_shapes():
    gen = AnchorGenerator((32, 64, 128, 256, 512), (0.5, 1.0, 2.0), (4, 8, 16, 32, 64))
    shapes = [(32, 40), (16, 20), (8, 10), (4, 5), (2, 3)]
    anchors = gen(shapes)
    assert [a.shape[0] for a in anchors] == [h * w * 3 for h, w in shapes]
    a0 = anchors[0]
    wh = a0[:3, 2:] - a0[:3, :2]
    torch.testing.assert_close(wh[:, 0] * wh[:, 1], torch.full((3,), 32.0 * 32))
    torch.testing.assert_close(wh[:, 1] / wh[:, 0], torch.tensor([0.5, 1.0, 2.0]))
    # Order (y, x, a): anchor 3 is the next x position, centred one stride to the right.
    centre = (anchors[0][3, :2] + anchors[0][3, 2:]) / 2
    torch.testing.assert_close(centre, torch.tensor([4.0, 0.0]))
    centre_last = (anchors[4][-1, :2] + anchors[4][-1, 2:]) / 2
    torch.testing.assert_close(centre_last, torch.tensor([2 * 64.0, 1 * 64.0]))
    assert math.isclose(float((anchors[4][1, 2] - anchors[4][1, 0])), 512.0)


def test_anchors_of_a_feature_size_are_made_once_and_follow_their_cells():
    """Images of one size share their anchors: the second call returns the first call's tensors
    (before, every call built them again: 1 ms an image); other sizes, and cells moved to another
    dtype, get their own."""
    gen = AnchorGenerator((32, 64), (0.5, 1.0, 2.0), (4, 8))
    shapes = [(8, 10), (4, 5)]
    first = gen(shapes)
    again = gen([torch.Size(s) for s in shapes])
    assert all(a is b for a, b in zip(first, again))
    other = gen([(6, 10), (3, 5)])
    assert [a.shape[0] for a in other] == [6 * 10 * 3, 3 * 5 * 3]
    for made, fresh in zip(first + other, gen._anchors(shapes) + gen._anchors([(6, 10), (3, 5)])):
        torch.testing.assert_close(made, fresh, rtol=0, atol=0)
    doubled = gen.double()(shapes)
    assert doubled[0].dtype == torch.float64 and doubled[0] is not first[0]
    with torch.inference_mode():
        made_inside = gen([(2, 2), (1, 1)])
    assert not made_inside[0].is_inference()  # usable by a later training step
