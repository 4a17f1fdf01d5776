"""Made-up MoveNet TF.js graph models for the tests: random weights laid out as TF.js stores them
(HWIO, float16 shards), with the nodes a MoveNet graph has."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from densepose.modeling.mobilenet_v2 import scaled_channels

PREFIX = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/model/"
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _attr(stride: int, fused: list[str], padding: str = "SAME") -> dict:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return {"strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}}, "padding": {"s": b64(padding)},
            "fused_ops": {"list": {"s": [b64(f) for f in fused]}}}


def make_movenet_graph(alpha: float, seed: int = 0) -> tuple[list[dict], list[tuple[str, np.ndarray]]]:
    """Nodes and (name, array) weights of a MoveNet-like trunk, written from the MobileNetV2 table
    (not from the module under test)."""
    rng = np.random.default_rng(seed)
    nodes: list[dict] = [{"name": "input", "op": "Placeholder"}]
    weights: list[tuple[str, np.ndarray]] = []

    def conv(layer: str, node: str, x: str, cin: int, cout: int, kernel: int, stride: int, act: bool, depthwise=False):
        kind = "depthwise" if depthwise else "Conv2D"
        shape = (kernel, kernel, cin, 1) if depthwise else (kernel, kernel, cin, cout)
        fan_in = kernel * kernel * (1 if depthwise else cin)
        w = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        weights.extend([(f"{PREFIX}{layer}/{kind}_weights", w), (f"{PREFIX}{layer}/{kind}_bn_offset", b)])
        op = "FusedDepthwiseConv2dNative" if depthwise else "_FusedConv2D"
        nodes.append({"name": PREFIX + node, "op": op,
                      "input": [x, f"{PREFIX}{layer}/{kind}_weights", f"{PREFIX}{layer}/{kind}_bn_offset"],
                      "attr": _attr(stride, ["BiasAdd", "Relu6"] if act else ["BiasAdd"])})
        return PREFIX + node

    cin = scaled_channels(32, alpha)
    x = conv("Conv1", "Conv1_relu/Relu6", "input", 3, cin, 3, 2, True)
    n = 0
    for expand, channels, repeats, stride in STAGES:
        cout = scaled_channels(channels, alpha)
        for r in range(repeats):
            s = stride if r == 0 else 1
            name = "expanded_conv" if n == 0 else f"block_{n}"
            y, mid = x, cin * expand
            if expand != 1:
                y = conv(f"{name}_expand", f"{name}_expand_relu/Relu6", y, cin, mid, 1, 1, True)
            y = conv(f"{name}_depthwise", f"{name}_depthwise/depthwise", y, mid, mid, 3, s, True, depthwise=True)
            y = conv(f"{name}_project", f"{name}_project_BN/FusedBatchNormV3", y, mid, cout, 1, 1, False)
            if s == 1 and cin == cout:
                nodes.append({"name": f"{PREFIX}{name}_add/add", "op": "AddV2", "input": [x, y]})
                y = f"{PREFIX}{name}_add/add"
            x, cin, n = y, cout, n + 1
    conv("Conv_1", "out_relu/Relu6", x, cin, 1280, 1, 1, True)
    return nodes, weights


def write_tfjs(folder: Path, nodes: list[dict], weights: list[tuple[str, np.ndarray]], shards: int = 2) -> Path:
    """model.json + float16 shards, as the TF.js converter writes them."""
    raw = b"".join(w.astype("<f2").tobytes() for _, w in weights)
    cut = len(raw) // shards
    names = [f"model.bin{i}" for i in range(shards)]
    for i, name in enumerate(names):
        (folder / name).write_bytes(raw[i * cut: (i + 1) * cut if i < shards - 1 else len(raw)])
    specs = [{"name": k, "shape": list(w.shape), "dtype": "float32",
              "quantization": {"dtype": "float16", "original_dtype": "float32"}} for k, w in weights]
    model = {"format": "graph-model", "generatedBy": "test", "modelTopology": {"node": nodes},
             "weightsManifest": [{"paths": names, "weights": specs}]}
    path = folder / "model.json"
    path.write_text(json.dumps(model))
    return path
