"""The parts of detectron2's DensePose R-CNN that differ from our own model, against direct formulas."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from densepose.modeling.detectron2.confidence import confidences_at_box
from densepose.modeling.detectron2.deeplab import ASPP, NonLocalBlock
from densepose.modeling.detectron2.model import PIXEL_MEAN_BGR, Detectron2DensePoseRCNN
from densepose.modeling.detectron2.predictor import ChartPredictor
from densepose.modeling.detectron2.resnet import Bottleneck, ConvFrozenBN
from densepose.modeling.detectron2.variant import Variant
from densepose.modeling.postprocess import densepose_to_labels_uv


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name else
                        torch.randn(t.shape, generator=g) * 0.2)


def test_frozen_bn_is_a_fixed_affine_map():
    conv = ConvFrozenBN(3, 4, 3, 1, 1)
    _randomise(conv)
    x = torch.randn(2, 3, 5, 6)
    n = conv.norm
    scale = n.weight / torch.sqrt(n.running_var + 1e-5)
    expected = F.conv2d(x, conv.weight, padding=1) * scale[:, None, None] + (n.bias - n.running_mean * scale)[:, None, None]
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    assert conv.bias is None and not any(p.requires_grad for p in n.parameters())


def test_stride_sits_in_the_first_1x1_conv():
    block = Bottleneck(8, 4, 16, stride=2)
    _randomise(block, 1)
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1) and block.shortcut.stride == (2, 2)
    x = torch.randn(1, 8, 9, 11)

    def bn(conv, y):
        n = conv.norm
        return (y - n.running_mean[:, None, None]) / torch.sqrt(n.running_var + 1e-5)[:, None, None] * \
            n.weight[:, None, None] + n.bias[:, None, None]

    y = F.relu(bn(block.conv1, F.conv2d(x, block.conv1.weight, stride=2)))
    y = F.relu(bn(block.conv2, F.conv2d(y, block.conv2.weight, padding=1)))
    y = bn(block.conv3, F.conv2d(y, block.conv3.weight))
    expected = F.relu(y + bn(block.shortcut, F.conv2d(x, block.shortcut.weight, stride=2)))
    assert expected.shape == (1, 16, 5, 6)
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-4)


def test_network_input_is_bgr_minus_the_bgr_mean():
    model = Detectron2DensePoseRCNN(Variant()).eval()
    seen = {}
    model.backbone.bottom_up.stem.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    rgb = torch.empty(3, 64, 64)
    rgb[0], rgb[1], rgb[2] = 10.0, 20.0, 30.0  # R, G, B
    model.cfg.rpn_post_nms_topk_test = 10
    model.cfg.detections_per_image = 1
    model([rgb], min_size=64, max_size=64, score_thresh=0.99)
    x = seen["x"][0, :, :64, :64]
    for c, value in enumerate((30.0, 20.0, 10.0)):  # B, G, R
        torch.testing.assert_close(x[c], torch.full((64, 64), value - PIXEL_MEAN_BGR[c]))
    assert seen["x"].shape[-2:] == (64, 64)  # padded to a multiple of 32, std 1


def test_aspp_dilation_56_on_28x28_sees_only_the_centre_tap():
    aspp = ASPP(32)
    _randomise(aspp, 2)
    x = torch.randn(2, 32, 28, 28)
    conv, gn = aspp.convs[3][0], aspp.convs[3][1]
    assert conv.dilation == (56, 56)
    expected = F.relu(gn(F.conv2d(x, conv.weight[:, :, 1:2, 1:2])))
    torch.testing.assert_close(aspp.convs[3](x), expected, rtol=1e-5, atol=1e-5)
    pooled = aspp.convs[4](x)  # image pooling: constant over the RoI
    torch.testing.assert_close(pooled, pooled[:, :, :1, :1].expand_as(pooled))
    assert aspp(x).shape == x.shape and bool((aspp(x) >= 0).all())


def test_non_local_block_is_softmax_attention_over_pooled_positions():
    block = NonLocalBlock(64)
    _randomise(block, 3)
    x = torch.randn(2, 64, 6, 6)
    theta = F.conv2d(x, block.theta.weight, block.theta.bias).flatten(2)  # (2, 32, 36)
    phi = F.max_pool2d(F.conv2d(x, block.phi[0].weight, block.phi[0].bias), 2).flatten(2)  # (2, 32, 9)
    g = F.max_pool2d(F.conv2d(x, block.g[0].weight, block.g[0].bias), 2).flatten(2)
    attn = torch.softmax(torch.einsum("bci,bcj->bij", theta, phi), dim=-1)
    y = torch.einsum("bij,bcj->bci", attn, g).reshape(2, 32, 6, 6)
    expected = x + block.W[1](F.conv2d(y, block.W[0].weight, block.W[0].bias))
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-4)


def test_confidence_outputs_follow_detectron2():
    pred = ChartPredictor(16, uv_confidence="indep_aniso", segm_confidence=True)
    plain = ChartPredictor(16)
    _randomise(pred, 4)
    plain.load_state_dict({k: v for k, v in pred.state_dict().items() if k in plain.state_dict()})
    x = torch.randn(3, 16, 7, 7)
    out, base = pred(x), plain(x)
    assert set(out) == {"coarse_segm", "fine_segm", "u", "v", "sigma_2", "kappa_u", "kappa_v",
                        "fine_segm_confidence", "coarse_segm_confidence"}
    up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
    fine_conf = F.softplus(up(pred.fine_segm_confidence_lowres(x))) + 0.01
    torch.testing.assert_close(out["fine_segm_confidence"], fine_conf)
    torch.testing.assert_close(out["fine_segm"], base["fine_segm"] * fine_conf)  # a learned temperature
    torch.testing.assert_close(out["u"], base["u"])
    torch.testing.assert_close(out["sigma_2"], up(pred.sigma_2_lowres(x)))  # raw, as detectron2 returns it
    assert out["kappa_v"].shape == (3, 25, 28, 28) and out["coarse_segm_confidence"].shape == (3, 1, 28, 28)
    labels = np.zeros((5, 7), np.uint8)
    labels[1:4, 2:6] = 3
    conf = confidences_at_box({k: v.detach() for k, v in out.items()}, 1, labels, torch.tensor([10.0, 20.0, 17.5, 25.9]))
    sigma = F.interpolate(out["sigma_2"][1:2].detach(), size=(5, 7), mode="bilinear", align_corners=False)[0, 3]
    np.testing.assert_allclose(conf["sigma_2"], np.where(labels == 3, sigma.numpy(), 0), rtol=1e-6, atol=1e-6)
    assert conf["fine_segm_confidence"].shape == (5, 7) and bool((conf["fine_segm_confidence"] > 0.01).all())


def test_legacy_head_15_coarse_channels_at_56x56():
    pred = ChartPredictor(32, coarse_channels=15)
    x = torch.randn(2, 32, 14, 14)
    out = pred(x)
    assert out["coarse_segm"].shape == (2, 15, 56, 56) and out["fine_segm"].shape == (2, 25, 56, 56)
    box = [3.2, 4.0, 40.9, 31.5]
    labels, _, _ = densepose_to_labels_uv(out["coarse_segm"][0].detach(), out["fine_segm"][0].detach(),
                                          out["u"][0].detach(), out["v"][0].detach(), box)
    size = (int(31.5 - 4.0), int(40.9 - 3.2))
    rs = lambda t: F.interpolate(t[None].detach(), size=size, mode="bilinear", align_corners=False)[0]  # noqa: E731
    expected = rs(out["fine_segm"][0]).argmax(0) * (rs(out["coarse_segm"][0]).argmax(0) > 0)
    torch.testing.assert_close(labels, expected)
