"""detectron2's ResNet-50/101 trunk (MSRA weights): FrozenBN after every conv, stride in the first 1x1.

Module names are detectron2's, so a model-zoo state dict loads with its ``backbone.bottom_up.``
prefix removed: ``stem.conv1.weight``, ``stem.conv1.norm.{weight,bias,running_mean,running_var}``,
``res{2..5}.{block}.conv{1,2,3}.weight`` / ``.norm.*`` and ``res{k}.0.shortcut.weight`` / ``.norm.*``.

Differences from our own ResNet (``densepose.modeling.backbone``): the stride of a down-sampling
bottleneck sits in its first 1x1 conv (``STRIDE_IN_1X1=True``, the original MSRA ResNet; ours is
"v1.5" with the stride in the 3x3 conv), and the input is BGR 0..255 minus the BGR pixel mean with
no std scaling (``densepose.modeling.detectron2.model`` does that).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densepose.modeling.backbone import FrozenBatchNorm2d

#: Bottleneck blocks per stage (res2..res5).
DEPTH_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class ConvFrozenBN(nn.Conv2d):
    """Bias-free conv followed by FrozenBN stored as ``.norm`` (detectron2's ``Conv2d(norm=...)``).

    The frozen affine map is folded into the conv at each call (``w * scale``, bias ``shift``):
    the same function without two passes over the activations (~15 % of an R-50 forward on CPU).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__(cin, cout, kernel, stride, padding, bias=False)
        self.norm = FrozenBatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        n = self.norm
        scale = n.weight * (n.running_var + n.eps).rsqrt()
        return F.conv2d(x, self.weight * scale[:, None, None, None], n.bias - n.running_mean * scale,
                        self.stride, self.padding)


class Stem(nn.Module):
    """conv7x7/2 + FrozenBN + ReLU + max-pool 3x3/2: (N, 3, H, W) -> (N, 64, H/4, W/4)."""

    def __init__(self):
        super().__init__()
        self.conv1 = ConvFrozenBN(3, 64, 7, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class Bottleneck(nn.Module):
    """1x1 (stride here) -> 3x3 -> 1x1 with FrozenBN, projection ``shortcut`` when shapes change."""

    def __init__(self, cin: int, width: int, cout: int, stride: int):
        super().__init__()
        self.shortcut = ConvFrozenBN(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = ConvFrozenBN(cin, width, 1, stride)
        self.conv2 = ConvFrozenBN(width, width, 3, 1, 1)
        self.conv3 = ConvFrozenBN(width, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv1(x))
        y = F.relu(self.conv2(y))
        y = self.conv3(y)
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    """``stem`` + ``res2..res5``: (N, 3, H, W) -> [C2, C3, C4, C5] (256..2048 channels, strides 4..32)."""

    def __init__(self, depth: int):
        super().__init__()
        self.stem = Stem()
        cin, width = 64, 64
        self.out_channels: list[int] = []
        for stage, blocks in enumerate(DEPTH_BLOCKS[depth]):
            cout = width * 4
            layers = [Bottleneck(cin if b == 0 else cout, width, cout, 2 if (b == 0 and stage > 0) else 1)
                      for b in range(blocks)]
            setattr(self, f"res{stage + 2}", nn.Sequential(*layers))
            self.out_channels.append(cout)
            cin, width = cout, width * 2

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outs = []
        for stage in range(2, 6):
            x = getattr(self, f"res{stage}")(x)
            outs.append(x)
        return outs
