"""detectron2's ``DensePoseDeepLabHead`` (``*_DL_*`` models): ASPP, optional non-local block, 8 x conv+GN.

Module names are detectron2's (``ASPP.convs.*``, ``ASPP.project.0``, ``NLBlock.{g,theta,phi,W}``,
``body_conv_fcn{1..8}`` with ``.norm``), so the ``roi_heads.densepose_head.`` keys load as they are.

* ASPP: five branches on the (K, C, R, R) RoI features, each GroupNorm(32) + ReLU: 1x1 conv,
  3x3 convs with dilations 6, 12 and 56, and image pooling (global average -> 1x1 conv -> GN ->
  ReLU -> bilinear back to R x R); concatenated, a bias-free 1x1 projection back to C + ReLU.
* Non-local block (embedded Gaussian, Wang et al. 2018), present when the file has ``NLBlock``
  keys: theta / phi / g are 1x1 convs to C/2 (phi and g followed by 2x2 max-pool); attention =
  softmax(theta^T phi); output ``x + GN(W(attention @ g))``.
* ``body_conv_fcn{i}``: conv3x3 (no bias) + GroupNorm(32) + ReLU, ``dim`` channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ASPP_DILATIONS = (6, 12, 56)


def _conv_gn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    pad = dilation if kernel == 3 else 0
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
                         nn.GroupNorm(32, cout), nn.ReLU())


class ASPPPooling(nn.Sequential):
    """Image-pooling branch: global average, 1x1 conv, GN, ReLU, bilinear back to the input size."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.GroupNorm(32, cout), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(super().forward(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """(K, C, R, R) -> (K, C, R, R)."""

    def __init__(self, channels: int):
        super().__init__()
        branches = [_conv_gn_relu(channels, channels, 1)]
        branches += [_conv_gn_relu(channels, channels, 3, d) for d in ASPP_DILATIONS]
        branches.append(ASPPPooling(channels, channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(nn.Conv2d(5 * channels, channels, 1, bias=False), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block with 2x2 sub-sampling: (K, C, R, R) -> (K, C, R, R)."""

    def __init__(self, channels: int):
        super().__init__()
        inter = max(1, channels // 2)
        self.inter = inter
        self.g = nn.Sequential(nn.Conv2d(channels, inter, 1), nn.MaxPool2d(2))
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Sequential(nn.Conv2d(channels, inter, 1), nn.MaxPool2d(2))
        self.W = nn.Sequential(nn.Conv2d(inter, channels, 1), nn.GroupNorm(32, channels))

    def forward(self, x: Tensor) -> Tensor:
        k = x.shape[0]
        g = self.g(x).reshape(k, self.inter, -1).transpose(1, 2)  # (K, R*R/4, C')
        theta = self.theta(x).reshape(k, self.inter, -1).transpose(1, 2)  # (K, R*R, C')
        phi = self.phi(x).reshape(k, self.inter, -1)  # (K, C', R*R/4)
        y = torch.softmax(theta @ phi, dim=-1) @ g  # (K, R*R, C')
        y = y.transpose(1, 2).reshape(k, self.inter, *x.shape[2:])
        return x + self.W(y)


class ConvGN(nn.Conv2d):
    """conv3x3 without bias + GroupNorm(32) stored as ``.norm`` (detectron2's ``Conv2d(norm=GN)``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, 1, 1, bias=False)
        self.norm = nn.GroupNorm(32, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(super().forward(x))


class DeepLabHead(nn.Module):
    """(K, C, R, R) RoI features -> (K, dim, R, R)."""

    def __init__(self, channels: int, num_convs: int = 8, dim: int = 512, nonlocal_block: bool = False):
        super().__init__()
        self.ASPP = ASPP(channels)
        self.NLBlock = NonLocalBlock(channels) if nonlocal_block else None
        self.num_convs = num_convs
        for i in range(num_convs):
            setattr(self, f"body_conv_fcn{i + 1}", ConvGN(channels if i == 0 else dim, dim))
        self.out_channels = dim

    def forward(self, x: Tensor) -> Tensor:
        x = self.ASPP(x)
        if self.NLBlock is not None:
            x = self.NLBlock(x)
        for i in range(self.num_convs):
            x = F.relu(getattr(self, f"body_conv_fcn{i + 1}")(x))
        return x
