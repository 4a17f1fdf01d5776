"""Whole-detector export (TorchScript, ONNX) against the eager model; ONNX checked with onnxruntime.

The graph takes an image of any size (not pre-resized) and returns boxes in its pixels and the
per-person labels / U / V at the head's S x S; the reference is the eager model on the same image
followed by `densepose_to_labels_uv` at S x S."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from densepose.engine.export_graph import ExportPipeline, export_graph, labels_uv
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.postprocess import densepose_to_labels_uv

TRACE_SIZE = (3, 80, 100)
# None is at the test size (64 short side, 128 long): enlarged, shrunk with antialiasing (portrait),
# and one whose long side sets the scale.
SIZES = [(3, 48, 60), (3, 150, 110), (3, 50, 150)]


def _small_model():
    """The smallest graph with every piece (ResNet-18 at 1/8 width, FPN-16, 64 px test size)."""
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, backbone_width=8, fpn_channels=16, dp_decoder_conv_dim=16,
                      dp_decoder_channels=16, dp_dim=32, box_fc_dim=32, min_size_test=64, max_size=128,
                      rpn_pre_nms_topk_test=100, rpn_post_nms_topk_test=30, detections_per_image=4)
    return DensePoseRCNN(cfg).eval()


def _images():
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(*s, generator=g) * 255).to(torch.uint8) for s in SIZES]


def _eager(model, image) -> dict[str, np.ndarray]:
    """The eager model path: boxes and scores in input pixels, labels / U / V of each person at S x S."""
    with torch.no_grad():
        r = model([image.float()])[0]
    s = r["fine_segm"].shape[-1]
    per_person = [densepose_to_labels_uv(r["coarse_segm"][i], r["fine_segm"][i], r["u"][i], r["v"][i], (0, 0, s, s))
                  for i in range(len(r["boxes"]))]
    labels, u, v = (torch.stack(maps) for maps in zip(*per_person))  # the tests' models always find people
    return {"boxes": r["boxes"].numpy(), "scores": r["scores"].numpy(), "labels": labels.numpy(),
            "u": u.numpy(), "v": v.numpy()}


def _assert_matches(got: dict, want: dict, atol: float, max_label_mismatch: float):
    assert got["boxes"].shape == want["boxes"].shape and len(want["boxes"]) > 0
    for key in ("boxes", "scores"):
        np.testing.assert_allclose(got[key], want[key], atol=atol, rtol=1e-4)
    assert got["labels"].dtype == np.uint8
    differ = got["labels"].astype(np.int64) != want["labels"]
    assert differ.mean() <= max_label_mismatch
    same = ~differ  # U and V are compared where both chose the same chart
    for key in ("u", "v"):
        np.testing.assert_allclose(got[key][same], want[key][same], atol=max(atol, 1e-5))


def test_labels_uv_is_the_official_rule_at_head_size():
    g = torch.Generator().manual_seed(3)
    for coarse_channels in (2, 15):
        coarse, fine = torch.randn(3, coarse_channels, 14, 14, generator=g), torch.randn(3, 25, 14, 14, generator=g)
        u, v = torch.rand(3, 25, 14, 14, generator=g) * 1.2 - 0.1, torch.rand(3, 25, 14, 14, generator=g)
        labels, uu, vv = labels_uv(coarse, fine, u, v)
        for i in range(3):
            want = densepose_to_labels_uv(coarse[i], fine[i], u[i], v[i], (0.0, 0.0, 14.0, 14.0))
            assert torch.equal(labels[i].long(), want[0])
            torch.testing.assert_close(uu[i], want[1], atol=1e-6, rtol=0)
            torch.testing.assert_close(vv[i], want[2], atol=1e-6, rtol=0)


def test_pipeline_resizes_inside_and_equals_the_eager_model():
    model = _small_model()
    pipeline = ExportPipeline(model)
    assert pipeline.output_names == ["boxes", "scores", "labels", "u", "v"]
    for image in _images():
        with torch.no_grad():
            out = {k: t.numpy() for k, t in zip(pipeline.output_names, pipeline(image))}
        want = _eager(model, image)
        assert out["boxes"][:, 2].max() <= image.shape[2] and out["boxes"][:, 3].max() <= image.shape[1]
        _assert_matches(out, want, atol=1e-4, max_label_mismatch=0.0)


@pytest.mark.slow  # torch.export's symbolic tracing of the whole graph (~20 s on 2 idle cores)
def test_onnx_matches_the_eager_model(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = _small_model()
    example = torch.rand(*TRACE_SIZE, generator=torch.Generator().manual_seed(2)) * 255
    names = export_graph(model, tmp_path / "m.onnx", "onnx", example=example)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == names == ["boxes", "scores", "labels", "u", "v"]
    for image in _images():
        # ONNX Runtime's antialiased Resize differs from PyTorch's by ~1e-3 grey levels, which moves
        # head logits by ~1e-4: an argmax near a tie may flip on a few pixels.
        got = dict(zip(names, session.run(None, {"image": image.numpy().astype(np.float32)})))
        _assert_matches(got, _eager(model, image), atol=1e-3, max_label_mismatch=1e-3)


def test_detectron2_pipeline_equals_the_eager_model(tmp_path):
    from detectron2_checkpoints import detectron2_state

    from densepose.modeling.detectron2 import load_detectron2_model

    path = tmp_path / "legacy.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": detectron2_state(legacy=True, uv_confidence="iid_iso")}, f)
    model = load_detectron2_model(path)
    model.cfg.rpn_post_nms_topk_test, model.cfg.detections_per_image = 100, 3
    model.cfg.min_size_test, model.cfg.max_size = 96, 128
    pipeline = ExportPipeline(model)
    assert pipeline.output_names[-1] == "sigma_2"
    image = torch.rand(3, 120, 150, generator=torch.Generator().manual_seed(2)) * 255  # resized to 96 x 120
    with torch.no_grad():
        eager = model([image])[0]
        out = dict(zip(pipeline.output_names, pipeline(image)))
    assert out["boxes"].shape[0] == eager["boxes"].shape[0] >= 2
    for key in ("boxes", "scores", "sigma_2"):
        torch.testing.assert_close(out[key], eager[key], atol=1e-4, rtol=1e-4)
    labels, u, v = labels_uv(eager["coarse_segm"], eager["fine_segm"], eager["u"], eager["v"])
    assert torch.equal(out["labels"], labels)
    torch.testing.assert_close(out["u"], u, atol=1e-5, rtol=0)


def test_cli_exports_a_torchscript_file_that_matches_the_eager_model(tmp_path, capsys):
    from densepose.cli.main import main

    model = _small_model()
    path = tmp_path / "small.pt"
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {}}, path)
    assert main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "small.ts")]) == 0
    assert "boxes, scores, labels, u, v" in capsys.readouterr().out
    scripted = torch.jit.load(str(tmp_path / "small.ts"))  # traced at the model's test size
    for image in _images():
        with torch.no_grad():
            got = {k: t.numpy() for k, t in zip(["boxes", "scores", "labels", "u", "v"], scripted(image))}
        _assert_matches(got, _eager(model, image), atol=1e-4, max_label_mismatch=0.0)


def test_torchscript_of_a_model_that_reads_its_boxes_twice_matches_the_eager_model(tmp_path):
    """``box_head_passes`` 2: the graph reads again the rows the eager model reads again (those
    scoring at least ``box_again_min_score``, a number the trace must not bake in) and gives its
    boxes and scores, which differ from those of one read."""
    from dataclasses import replace

    once = _small_model()
    for layer in (once.box_head.cls_score, once.box_head.bbox_pred):  # scores and moves as a trained head's
        layer.weight.data.normal_(std=0.3, generator=torch.Generator().manual_seed(3))
    model = DensePoseRCNN(replace(once.cfg, box_head_passes=2, box_again_min_score=0.5)).eval()
    model.load_state_dict(once.state_dict())
    example = torch.rand(*TRACE_SIZE, generator=torch.Generator().manual_seed(2)) * 255
    export_graph(model, tmp_path / "m.ts", "torchscript", example=example)
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    for image in _images():
        with torch.no_grad():
            got = {k: t.numpy() for k, t in zip(["boxes", "scores", "labels", "u", "v"], scripted(image))}
        want = _eager(model, image)
        _assert_matches(got, want, atol=1e-4, max_label_mismatch=0.0)
        single = _eager(once, image)
        assert want["scores"].shape != single["scores"].shape or not np.allclose(want["scores"], single["scores"])


def test_group_boxes_trace_for_any_number_of_boxes():
    """The graph drops group boxes like the eager model: the rule traces without baking in the count."""
    from densepose.modeling.group_boxes import group_boxes

    pair = [[20.0, 10, 40, 90], [38, 12, 60, 88], [18, 8, 62, 92]]
    example = (torch.tensor(pair + [[100.0, 0, 120, 50], [0, 0, 5, 5]]), torch.tensor([0.9, 0.8, 0.95, 0.7, 0.6]))
    traced = torch.jit.trace(group_boxes, example)
    for boxes, scores in [example, (torch.tensor(pair), torch.tensor([0.9, 0.8, 0.95])),
                          (torch.zeros(0, 4), torch.zeros(0)), (torch.tensor(pair[:2]), torch.tensor([0.9, 0.8]))]:
        assert torch.equal(traced(boxes, scores), group_boxes(boxes, scores))
    assert traced(torch.tensor(pair), torch.tensor([0.9, 0.8, 0.95])).tolist() == [False, False, True]


def test_pipeline_with_group_boxes_dropped_equals_the_eager_model():
    model = _small_model()
    model.cfg.drop_group_boxes = True
    pipeline = ExportPipeline(model)
    for image in _images():
        with torch.no_grad():
            out = {k: t.numpy() for k, t in zip(pipeline.output_names, pipeline(image))}
        _assert_matches(out, _eager(model, image), atol=1e-4, max_label_mismatch=0.0)


@pytest.mark.slow  # torch.export of the graph with the crop classifiers (~40 s on 2 idle cores)
def test_onnx_of_a_model_with_the_crop_checks_and_grown_boxes_matches_the_eager_model(tmp_path):
    """The bundled model's pieces: head ruler, facing classifier of three heads (and two on MoveNet's
    trunk, on larger crops) and person check
    (batch norms and EfficientNet-Lite stages on a data-dependent number of crops), covered and wider
    boxes dropped, boxes voted, DensePose head on grown boxes. torch.export could not trace the first two; ONNX Runtime's default graph optimisation
    broke the stride-2 convolutions' padded weights. Run with the default session options."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from dataclasses import replace

    torch.manual_seed(0)
    model = DensePoseRCNN(replace(_small_model().cfg, facing_on=True, person_check_on=True, drop_covered_fraction=0.5,
                                  drop_wider_iou=0.3, dp_margin_x=0.1, dp_margin_y=0.05, head_ruler_on=True,
                                  box_vote_iou=0.6, box_head_passes=2, box_again_min_score=0.3,
                                  facing_members=3, facing_people_members=2)).eval()
    model.head_ruler_log_ratio.normal_()  # the head ruler's table: traced with the rest
    model.person_check.layers[-1].bias.data.fill_(2.0)  # keep most detections: a random check rejects them
    example = torch.rand(*TRACE_SIZE, generator=torch.Generator().manual_seed(2)) * 255
    names = export_graph(model, tmp_path / "m.onnx", "onnx", example=example)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert names == ["boxes", "scores", "labels", "u", "v", "map_boxes"]
    for image in _images():
        got = dict(zip(names, session.run(None, {"image": image.numpy().astype(np.float32)})))
        with torch.no_grad():
            want = model([image.float()])[0]
        assert got["boxes"].shape == tuple(want["boxes"].shape) and len(want["boxes"]) > 0
        np.testing.assert_allclose(got["boxes"], want["boxes"].numpy(), atol=1e-3, rtol=1e-4)
        np.testing.assert_allclose(got["scores"], want["scores"].numpy(), atol=1e-3, rtol=1e-4)
        np.testing.assert_allclose(got["map_boxes"], want["dp_boxes"].numpy(), atol=1e-3, rtol=1e-4)
