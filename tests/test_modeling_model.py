"""DensePose-RCNN: shapes in train/eval, losses, DP targets, cascade, postprocess, weights, overfit."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from densepose.modeling import DensePoseRCNN, ModelConfig, light_config, r50_fpn_config, tiny_config
from densepose.modeling.backbone import Backbone, convert_detectron2_keys, load_backbone_weights
from densepose.modeling.densepose_head import coarse_targets, densepose_losses, pack_targets, point_samples
from densepose.modeling.postprocess import densepose_to_iuv
from densepose.errors import UserError


def _dp(n: int, g: torch.Generator, mask: bool = True) -> dict:
    return {
        "x": torch.rand(n, generator=g) * 256, "y": torch.rand(n, generator=g) * 256,
        "I": torch.randint(1, 25, (n,), generator=g), "U": torch.rand(n, generator=g),
        "V": torch.rand(n, generator=g),
        "mask": torch.randint(0, 15, (256, 256), generator=g).to(torch.uint8) if mask else None,
    }


def _batch(g: torch.Generator):
    images = [torch.rand(3, 120, 160, generator=g) * 255, torch.rand(3, 96, 90, generator=g) * 255]
    kps = torch.rand(2, 17, 3, generator=g) * torch.tensor([160, 120, 2.0])
    masks = torch.zeros(2, 120, 160, dtype=torch.uint8)
    masks[0, 10:110, 10:80] = 1
    masks[1, 20:60, 90:150] = 1
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 80.0, 110.0], [90.0, 20.0, 150.0, 60.0]]), "keypoints": kps,
         "masks": masks, "dp": [_dp(40, g), None]},
        {"boxes": torch.zeros(0, 4), "dp": []},  # an image without people
    ]
    return images, targets


@pytest.mark.parametrize("cascade", [False, True])
def test_train_and_eval_shapes(cascade):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = DensePoseRCNN(tiny_config(mask_on=True, keypoint_on=True, cascade=cascade))
    images, targets = _batch(g)
    model.train()
    losses = model(images, targets)
    keys = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask", "loss_keypoint",
            "loss_densepose_S", "loss_densepose_I", "loss_densepose_U", "loss_densepose_V"}
    if cascade:
        keys |= {k + "_stage2" for k in keys if k.startswith("loss_densepose")}
    assert set(losses) == keys
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert losses["loss_densepose_I"] > 0 and losses["loss_densepose_S"] > 0
    sum(losses.values()).backward()
    for name in ("dp_predictor.u_lowres.weight", "dp_head.convs.0.weight", "backbone.bottom_up.conv1.weight",
                 "mask_head.predictor.weight", "keypoint_head.score_lowres.weight", "rpn.head.conv.weight"):
        p = dict(model.named_parameters())[name]
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    if cascade:
        assert model.dp_head2.convs[0].weight.grad.abs().sum() > 0
        assert model.cascade_fusion.reduce.weight.shape[1] == 32 + 64 + 77 + 32 + 1 + 32 + 17

    model.eval()
    out = model(images)
    assert len(out) == 2
    for r, (h, w) in zip(out, [(120, 160), (96, 90)]):
        n = r["boxes"].shape[0]
        assert 0 < n <= 20
        assert r["scores"].shape == (n,)
        assert r["coarse_segm"].shape == (n, 2, 112, 112)
        for k in ("fine_segm", "u", "v"):
            assert r[k].shape == (n, 25, 112, 112)
        assert r["masks"].shape == (n, 1, 28, 28) and r["keypoints"].shape == (n, 17, 3)
        b = r["boxes"]  # mapped back to input pixels
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        assert (r["keypoints"][..., 0] >= b[:, 0:1] - 1e-3).all()


def test_bfloat16_autocast_train_and_eval():
    # The engine trains with autocast on CUDA; CPU bf16 autocast exercises the same dtype paths.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    model = DensePoseRCNN(tiny_config(mask_on=True, keypoint_on=True, cascade=True))
    images, targets = _batch(g)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, targets)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images)
    assert all(v.dtype == torch.float32 for v in out[0].values())


def test_no_densepose_targets_gives_zero_losses_with_gradients():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = DensePoseRCNN(tiny_config())
    images, targets = _batch(g)
    for t in targets:
        t["dp"] = [None] * t["boxes"].shape[0]
        t.pop("masks", None)
        t.pop("keypoints", None)
    model.train()
    losses = model(images, targets)
    for k in ("S", "I", "U", "V"):
        assert losses[f"loss_densepose_{k}"].item() == 0.0
    sum(losses.values()).backward()
    # DDP-safe: the DP parameters are part of the graph (zero gradient, not None).
    assert model.dp_predictor.u_lowres.weight.grad is not None
    assert model.dp_predictor.u_lowres.weight.grad.abs().sum() == 0
    assert model.dp_decoder.predictor.weight.grad is not None


def test_coarse_targets_and_points_for_proposal_equal_to_gt():
    g = torch.Generator().manual_seed(0)
    dp = _dp(50, g)
    box = torch.tensor([[20.0, 40.0, 132.0, 264.0]])
    t = pack_targets([dp], box, "cpu")
    lab = coarse_targets(box, torch.tensor([0]), t, 112)
    # Proposal == GT box at 112 cells over 256 mask pixels: cell k samples mask pixel floor((k + .5) * 256 / 112).
    idx = ((torch.arange(112) + 0.5) * 256 / 112).floor().long()
    expect = (dp["mask"].long()[idx][:, idx] > 0).long()
    assert torch.equal(lab[0], expect)
    roi, fx, fy, I, U, V = point_samples(box, torch.tensor([0]), t, 112)
    assert roi.numel() == 50
    torch.testing.assert_close(fx, dp["x"] / 256 * 112 - 0.5)
    torch.testing.assert_close(fy, dp["y"] / 256 * 112 - 0.5)
    # A proposal covering the left half keeps only the points there and maps the mask accordingly.
    half = torch.tensor([[20.0, 40.0, 76.0, 264.0]])
    roi, fx, *_ = point_samples(half, torch.tensor([0]), t, 112)
    assert roi.numel() == int((dp["x"] <= 128).sum())
    lab_h = coarse_targets(half, torch.tensor([0]), t, 112)
    idx_x = ((torch.arange(112) + 0.5) * 128 / 112).floor().long()
    assert torch.equal(lab_h[0], (dp["mask"].long()[idx][:, idx_x] > 0).long())
    # No mask -> S target ignored.
    t2 = pack_targets([_dp(5, g, mask=False)], box, "cpu")
    assert (coarse_targets(box, torch.tensor([0]), t2, 112) == -100).all()


def test_densepose_loss_values_and_reductions():
    g = torch.Generator().manual_seed(0)
    dp = _dp(30, g)
    box = torch.tensor([[0.0, 0.0, 112.0, 112.0]])
    t = pack_targets([dp], box, "cpu")
    out = {k: torch.zeros(1, c, 112, 112) for k, c in (("coarse_segm", 2), ("fine_segm", 25), ("u", 25), ("v", 25))}
    out["u"][:] = 0.5
    base = densepose_losses(out, box, torch.tensor([0]), t)
    # Uniform logits: CE = log(C), times the weights 5.0 (S) and 1.0 (I).
    torch.testing.assert_close(base["loss_densepose_S"], torch.tensor(float(np.log(2.0))) * 5.0)
    torch.testing.assert_close(base["loss_densepose_I"], torch.tensor(float(np.log(25.0))))
    # Constant U map 0.5: smooth-L1 (beta 1) summed over points, times 0.01.
    d = (0.5 - dp["U"]).abs()
    torch.testing.assert_close(base["loss_densepose_U"], (0.5 * d * d).sum() * 0.01)
    # U is a SUM over points (doubling the points doubles it); I is a mean.
    t2 = pack_targets([{**dp, **{k: torch.cat([dp[k], dp[k]]) for k in ("x", "y", "I", "U", "V")}}], box, "cpu")
    base2 = densepose_losses(out, box, torch.tensor([0]), t2)
    torch.testing.assert_close(base2["loss_densepose_U"], 2 * base["loss_densepose_U"])
    torch.testing.assert_close(base2["loss_densepose_I"], base["loss_densepose_I"])
    mean = densepose_losses(out, box, torch.tensor([0]), t2, uv_reduction="mean", w_uv=1.0)
    torch.testing.assert_close(mean["loss_densepose_U"], (0.5 * d * d).mean())


def test_densepose_to_iuv_matches_manual():
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(3, 2, 112, 112, generator=g)
    fine = torch.randn(3, 25, 112, 112, generator=g)
    u = torch.rand(3, 25, 112, 112, generator=g)
    v = torch.rand(3, 25, 112, 112, generator=g)
    boxes = torch.tensor([[10.2, 5.0, 60.9, 85.5], [0.0, 0.0, 50.7, 80.5], [3.0, 3.0, 33.0, 23.0]])
    single = [densepose_to_iuv(coarse[i], fine[i], u[i], v[i], boxes[i]) for i in range(3)]
    assert single[0].shape == (3, 80, 50) and single[0].dtype == np.uint8  # int(50.7), int(80.5)
    assert single[2].shape == (3, 20, 30)
    # Manual: resize, argmax, mask by coarse, channel pick.
    rs = lambda t: torch.nn.functional.interpolate(t[None], size=(20, 30), mode="bilinear", align_corners=False)[0]
    lab = rs(fine[2]).argmax(0) * (rs(coarse[2]).argmax(0) > 0)
    uu = rs(u[2]).gather(0, lab[None])[0] * (lab > 0)
    assert np.array_equal(single[2][0], lab.numpy().astype(np.uint8))
    assert np.array_equal(single[2][1], np.clip(np.round(uu.numpy() * 255), 0, 255).astype(np.uint8))
    assert single[2][0].max() <= 24
    assert (single[2][1][single[2][0] == 0] == 0).all() and (single[2][0] == 0).any()


def test_weight_conversion_and_loading(tmp_path):
    torch.manual_seed(0)
    bb = Backbone("resnet18", 32, "frozen_bn", 2, width=16)
    own = bb.state_dict()
    # Build a torchvision-style file from our weights (plus an fc that must be dropped).
    tv = {k.removeprefix("bottom_up."): v + 1 for k, v in own.items() if k.startswith("bottom_up.")}
    tv["fc.weight"] = torch.zeros(3, 3)
    tv["layer1.0.bn1.num_batches_tracked"] = torch.tensor(5)
    torch.save(tv, tmp_path / "tv.pth")
    fresh = Backbone("resnet18", 32, "frozen_bn", 2, width=16)
    missing = load_backbone_weights(fresh, tmp_path / "tv.pth")
    assert all(k.startswith("fpn.") for k in missing)
    torch.testing.assert_close(fresh.bottom_up.layer1[0].conv1.weight, own["bottom_up.layer1.0.conv1.weight"] + 1)
    # detectron2 names (pickle of numpy arrays, {"model": ...}).
    d2 = {"backbone.bottom_up.stem.conv1.weight": np.ones((16, 3, 7, 7), np.float32),
          "backbone.bottom_up.stem.conv1.norm.running_var": np.full(16, 2.0, np.float32),
          "backbone.bottom_up.res3.0.shortcut.weight": np.ones((32, 16, 1, 1), np.float32),
          "backbone.bottom_up.res3.0.shortcut.norm.bias": np.full(32, 3.0, np.float32),
          "backbone.bottom_up.res2.1.conv2.norm.weight": np.full(16, 4.0, np.float32),
          "backbone.fpn_lateral3.weight": np.ones((32, 32, 1, 1), np.float32),
          "roi_heads.box_head.fc1.weight": np.ones(3, np.float32)}
    conv = convert_detectron2_keys({k: torch.as_tensor(v) for k, v in d2.items()})
    assert set(conv) == {"bottom_up.conv1.weight", "bottom_up.bn1.running_var", "bottom_up.layer2.0.downsample.0.weight",
                         "bottom_up.layer2.0.downsample.1.bias", "bottom_up.layer1.1.bn2.weight", "fpn.lateral.1.weight"}
    with open(tmp_path / "d2.pkl", "wb") as f:
        pickle.dump({"model": d2}, f)
    load_backbone_weights(fresh, tmp_path / "d2.pkl")
    assert fresh.bottom_up.layer2[0].downsample[1].bias[0].item() == 3.0
    assert fresh.fpn.lateral[1].weight.sum().item() == 32 * 32
    with pytest.raises(UserError):
        load_backbone_weights(Backbone("resnet50", 32, "frozen_bn", 2, width=16), tmp_path / "tv.pth")
    with pytest.raises(UserError):
        load_backbone_weights(fresh, tmp_path / "missing.pth")


def test_configs_and_freezing():
    assert r50_fpn_config().backbone == "resnet50" and r50_fpn_config().dp_num_convs == 8
    light = light_config()
    assert light.fpn_channels == 64 and light.min_size_test == 512 and light.dp_dim == 128
    assert ModelConfig.from_dict(light.to_dict()) == light
    with pytest.raises(UserError):
        ModelConfig.from_dict({"nope": 1})
    bb = Backbone("resnet50", 64, "frozen_bn", 2, width=8)
    assert not any(p.requires_grad for p in bb.bottom_up.layer1.parameters())
    assert all(p.requires_grad for p in bb.bottom_up.layer2.parameters())
    assert bb.bottom_up.out_channels == [32, 64, 128, 256]
    feats = bb(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]


# ----------------------------------------------------------------------------- overfitting


def _synthetic(g: torch.Generator):
    """Two 128x128 images with coloured rectangles as 'people'. Chart I is the quadrant+1 of a point
    in its box (learnable from position), U and V its relative position."""
    images, targets = [], []
    for k in range(2):
        img = torch.full((3, 128, 128), 40.0)
        boxes, dps = [], []
        for j in range(1 + k):
            x0, y0 = 10 + 60 * j + 5 * k, 12 + 10 * k
            w, h = 44, 90 - 20 * k
            col = torch.tensor([200.0, 60 + 80 * j, 90.0 * k])[:, None, None]
            img[:, y0:y0 + h, x0:x0 + w] = col
            n = 60
            px, py = torch.rand(n, generator=g) * 256, torch.rand(n, generator=g) * 256
            I = 1 + (px >= 128).long() + 2 * (py >= 128).long()
            mask = torch.ones(256, 256, dtype=torch.uint8)
            dps.append({"x": px, "y": py, "I": I, "U": px / 256, "V": py / 256, "mask": mask})
            boxes.append([x0, y0, x0 + w, y0 + h])
        images.append(img)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "dp": dps})
    return images, targets


def _dp_point_accuracy(model, images, targets) -> float:
    """Chart accuracy of the DP head evaluated on the GT boxes at the annotated points."""
    model.eval()
    with torch.no_grad():
        batch, sizes, scales, tt = model.preprocess(images, targets)
        feats = model.backbone(batch)
        boxes = [t["boxes"] for t in tt]
        out = model._dp_forward(model._dp_features(feats, boxes), None, None)[-1]
        flat = [d for t in targets for d in t["dp"]]
        packed = pack_targets(flat, torch.cat(boxes), "cpu")
        roi, fx, fy, I, _, _ = point_samples(torch.cat(boxes), torch.arange(len(flat)), packed, 112)
        from densepose.modeling.densepose_head import bilinear_at

        pred = bilinear_at(out["fine_segm"], roi, fx, fy).argmax(1)
    model.train()
    return float((pred == I).float().mean())


@pytest.mark.slow
def test_tiny_model_overfits_two_images():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images, targets = _synthetic(g)
    cfg = tiny_config(dp_weight_uv=0.1)
    model = DensePoseRCNN(cfg)
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    acc0 = _dp_point_accuracy(model, images, targets)
    first = None
    for step in range(50):  # ~30 s on 2 cores
        losses = model(images, targets)
        dp = losses["loss_densepose_I"].item()
        first = dp if first is None else first
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    last = dp
    acc1 = _dp_point_accuracy(model, images, targets)
    assert last < 0.5 * first, (first, last)
    assert acc1 > max(0.6, acc0 + 0.25), (acc0, acc1)
    # The detector learned the 'people' too, and the full inference path gives person pixels.
    from densepose.modeling.ops import box_iou

    model.eval()
    with torch.no_grad():
        out = model(images)
    for o, t in zip(out, targets):
        g = t["boxes"].shape[0]
        assert (box_iou(t["boxes"], o["boxes"][:g]).max(dim=1).values > 0.6).all()
        iuv = densepose_to_iuv(o["coarse_segm"][0], o["fine_segm"][0], o["u"][0], o["v"][0], o["boxes"][0])
        assert (iuv[0] > 0).mean() > 0.5 and set(np.unique(iuv[0])) <= {0, 1, 2, 3, 4}


@pytest.mark.parametrize("heads", [{}, dict(cascade=True, mask_on=True, keypoint_on=True)])
def test_no_detection_gives_empty_outputs_of_the_right_shapes(heads):
    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(score_thresh_test=2.0, **heads)).eval()  # no score passes
    with torch.inference_mode():
        out = model([torch.rand(3, 96, 128) * 255])[0]
    assert out["boxes"].shape == (0, 4) and out["scores"].shape == (0,)
    assert out["coarse_segm"].shape == (0, 2, 112, 112)
    assert all(out[k].shape == (0, 25, 112, 112) for k in ("fine_segm", "u", "v"))


def _labels_uv_by_full_resize(coarse, fine, u, v, h, w):
    """The reference rule spelt out: every map resized to (h, w), then arg-max and the chosen chart's U, V."""
    rs = lambda t: torch.nn.functional.interpolate(t[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
    c = coarse.shape[0]
    rc = rs(coarse)
    body = rc[1] > rc[0] if c == 2 else rc.argmax(0) > 0
    lab = rs(fine).argmax(0) * body
    pick = lambda t: rs(t).gather(0, lab[None])[0].clamp(0, 1) * (lab > 0)
    return lab, pick(u), pick(v)


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("coarse_channels", [2, 15])
def test_labels_uv_equal_the_full_resize_without_resizing_every_map(monkeypatch, smooth, coarse_channels):
    """Labels are read from the source grid where a pixel's four bilinear taps agree, and blended
    only where they do not; the result must equal resizing all 27 maps, which is never done."""
    from densepose.modeling import postprocess

    g = torch.Generator().manual_seed(1)
    s = 56

    def maps(c):
        x = torch.randn(c, s // 8 if smooth else s, s // 8 if smooth else s, generator=g)
        # smooth maps have large single-chart regions (like a trained head); noisy ones are mostly borders
        return torch.nn.functional.interpolate(x[None], size=(s, s), mode="bilinear", align_corners=False)[0] if smooth else x

    resized_channels = []
    real_interpolate = postprocess.F.interpolate

    def spy(x, *args, **kwargs):
        resized_channels.append(x.shape[1])
        return real_interpolate(x, *args, **kwargs)

    for w, h in [(200, 310), (57, 41), (3, 5), (56, 56), (23, 120)]:
        coarse, fine = maps(coarse_channels), maps(25)
        u, v = torch.rand(25, s, s, generator=g), torch.rand(25, s, s, generator=g)
        box = torch.tensor([4.6, 7.2, 4.6 + w + 0.3, 7.2 + h + 0.9])
        monkeypatch.setattr(postprocess.F, "interpolate", spy)
        labels, uu, vv = postprocess.densepose_to_labels_uv(coarse, fine, u, v, box)
        monkeypatch.setattr(postprocess.F, "interpolate", real_interpolate)
        ref_labels, ref_u, ref_v = _labels_uv_by_full_resize(coarse, fine, u, v, h, w)
        assert labels.shape == (h, w) and torch.equal(labels, ref_labels)
        torch.testing.assert_close(uu, ref_u, atol=1e-5, rtol=0)
        torch.testing.assert_close(vv, ref_v, atol=1e-5, rtol=0)
        assert (labels > 0).any() and (labels == 0).any()
    assert resized_channels and max(resized_channels) <= 2  # U and V of the chosen chart only


def test_a_replaced_config_reaches_the_proposals():
    """``model.cfg = dataclasses.replace(model.cfg, ...)`` (how tests and tools try one setting of a
    model file) changes how many proposals the RPN gives. Before, the RPN kept the config it was
    built with, so the replaced top-k was silently ignored."""
    from dataclasses import replace

    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(score_thresh_test=0.0, rpn_post_nms_topk_test=40)).eval()
    counts = []
    model.rpn.register_forward_hook(lambda module, args, out: counts.append([len(p) for p in out[0]]))
    image = torch.rand(3, 96, 128) * 255
    with torch.no_grad():
        model([image])
        model.cfg = replace(model.cfg, rpn_post_nms_topk_test=7)
        model([image])
    assert counts[0] == [40] and counts[-1] == [7], counts
