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


def make_movenet_graph(alpha: float, seed: int = 0,
                       heads: bool = False) -> tuple[list[dict], list[tuple[str, np.ndarray]]]:
    """Nodes and (name, array) weights of a MoveNet-like trunk, written from the MobileNetV2 table
    (not from the module under test); with ``heads``, also Lightning's FPN and heads."""
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
    top = conv("Conv_1", "out_relu/Relu6", x, cin, 1280, 1, 1, True)
    if heads:
        _add_fpn_and_heads(nodes, weights, top, rng)
    return nodes, weights


def _add_fpn_and_heads(nodes: list[dict], weights: list[tuple[str, np.ndarray]], top: str, rng) -> None:
    """MoveNet Lightning's FPN on blocks 2, 5, 9 and the 1280 convolution, and its four heads, with
    the node and weight names of the TF.js file (CenterNet's feature extractor and ``<head>_0``)."""
    fe = PREFIX[: -len("model/")]
    root = PREFIX.split("center_net")[0]

    def add_conv(name: str, x: str, w_name: str, b_name: str | None, shape: tuple, fused: list[str],
                 depthwise: bool = False, padding: str = "SAME") -> str:
        fan_in = shape[0] * shape[1] * (1 if depthwise else shape[2])
        weights.append((w_name, (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)))
        inputs = [x, w_name]
        if b_name is not None:
            bias = rng.standard_normal(shape[2] if depthwise else shape[3]) * 0.1
            weights.append((b_name, bias.astype(np.float32)))
            inputs.append(b_name)
        op = "DepthwiseConv2dNative" if depthwise else "_FusedConv2D"
        nodes.append({"name": name, "op": op, "input": inputs, "attr": _attr(1, fused, padding)})
        return name

    def separable(name: str, reluname: str, x: str, w_dw: str, w_pw: str, b_pw: str, cin: int, cout: int) -> str:
        dw = add_conv(f"{name}/depthwise", x, w_dw, None, (3, 3, cin, 1), [], depthwise=True)
        return add_conv(reluname, dw, w_pw, b_pw, (1, 1, cin, cout), ["BiasAdd", "Relu"], padding="VALID")

    x = add_conv(f"{fe}conv2d/BiasAdd", top, f"{fe}conv2d/Conv2D/ReadVariableOp", f"{fe}conv2d/BiasAdd/ReadVariableOp",
                 (1, 1, 1280, 64), ["BiasAdd"])
    for i, (block, cin, cout) in enumerate(((9, 64, 32), (5, 32, 24), (2, 24, 24))):
        suffix = "" if i == 0 else f"_{i}"
        up = f"{fe}up_sampling2d{suffix}/resize/ResizeBilinear"
        nodes.append({"name": up, "op": "ResizeBilinear", "input": [x, f"{fe}up_sampling2d{suffix}/mul"]})
        lateral = add_conv(f"{fe}conv2d_{i + 1}/BiasAdd", f"{PREFIX}block_{block}_add/add",
                           f"{fe}conv2d_{i + 1}/Conv2D/ReadVariableOp", f"{fe}conv2d_{i + 1}/BiasAdd/ReadVariableOp",
                           (1, 1, cin, cin), ["BiasAdd"])
        add = f"{fe}tf.__operators__.add{suffix}/AddV2"
        nodes.append({"name": add, "op": "AddV2", "input": [up, lateral]})
        sep = f"{fe}separable_conv2d{suffix}/separable_conv2d"
        x = separable(sep, f"{fe}re_lu{suffix}/Relu", add, f"{sep}/ReadVariableOp", f"{sep}_weights",
                      f"{sep}_bn_offset", cin, cout)
    for k, (head, outputs) in enumerate((("center_0", 1), ("kpt_heatmap_0", 17), ("kpt_regress_0", 34),
                                         ("kpt_offset_0", 34))):
        base, sep = f"{root}{head}/", f"{root}{head}/separable_conv2d_{k + 3}/"
        hidden = separable(f"{sep}separable_conv2d", f"{base}re_lu_{k + 3}/Relu", x,
                           f"{sep}separable_conv2d/ReadVariableOp", f"{sep}separable_conv2d/ReadVariableOp_1",
                           f"{sep}BiasAdd/ReadVariableOp", 24, 96)
        add_conv(f"{base}conv2d_{k + 4}/BiasAdd", hidden, f"{base}conv2d_{k + 4}/Conv2D/ReadVariableOp",
                 f"{base}conv2d_{k + 4}/BiasAdd/ReadVariableOp", (1, 1, 96, outputs), ["BiasAdd"])


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
