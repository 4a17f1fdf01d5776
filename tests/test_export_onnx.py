"""Whole-detector export (TorchScript, ONNX) against the eager model; ONNX checked with onnxruntime."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from densepose.engine.export_graph import ExportPipeline, export_graph
from densepose.modeling import DensePoseRCNN, tiny_config

SIZES = [(3, 128, 160), (3, 160, 96)]  # traced at the first; the graph must follow other sizes


def _tiny_model():
    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(score_thresh_test=0.0)).eval()
    return model


def _images():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(*s, generator=g) * 255 for s in SIZES]


def _assert_close(got, want, atol):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        if a.size:
            np.testing.assert_allclose(a, b, atol=atol, rtol=1e-4)


def test_pipeline_equals_the_eager_model():
    model = _tiny_model()
    pipeline = ExportPipeline(model)
    for image in _images():
        with torch.no_grad():
            eager = model([image], min_size=min(image.shape[1:]), max_size=max(image.shape[1:]))[0]
            out = dict(zip(pipeline.output_names, pipeline(image)))
        assert out["boxes"].shape[0] == eager["boxes"].shape[0] > 0
        for key in pipeline.output_names:
            torch.testing.assert_close(out[key], eager[key], atol=1e-4, rtol=1e-4)


@pytest.mark.slow  # the ONNX exporter traces the model with dynamo (~30 s on 2 free cores)
def test_torchscript_and_onnx_match_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = _tiny_model()
    pipeline = ExportPipeline(model)
    images = _images()
    names = export_graph(model, tmp_path / "m.onnx", "onnx", example=images[0])
    export_graph(model, tmp_path / "m.pt", "torchscript", example=images[0])
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == names
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    for image in images:
        with torch.no_grad():
            want = [t.numpy() for t in pipeline(image)]
            _assert_close([t.numpy() for t in scripted(image)], want, atol=1e-5)
        _assert_close(session.run(None, {"image": image.numpy()}), want, atol=1e-3)


def test_detectron2_pipeline_equals_the_eager_model(tmp_path):
    from detectron2_checkpoints import detectron2_state

    from densepose.modeling.detectron2 import load_detectron2_model

    path = tmp_path / "legacy.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": detectron2_state(legacy=True, uv_confidence="iid_iso")}, f)
    model = load_detectron2_model(path)
    model.cfg.rpn_post_nms_topk_test, model.cfg.detections_per_image = 100, 3
    pipeline = ExportPipeline(model)
    assert pipeline.output_names[-1] == "sigma_2"
    image = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(2)) * 255
    with torch.no_grad():
        eager = model([image], min_size=96, max_size=128)[0]
        out = dict(zip(pipeline.output_names, pipeline(image)))
    assert out["boxes"].shape[0] == eager["boxes"].shape[0] >= 2
    for key in pipeline.output_names:
        torch.testing.assert_close(out[key], eager[key], atol=1e-4, rtol=1e-4)


def test_cli_exports_a_model_file_as_torchscript(tmp_path, capsys):
    from densepose.cli.main import main

    model = _tiny_model()
    path = tmp_path / "tiny.pt"
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {}}, path)
    assert main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "tiny.ts")]) == 0
    assert "boxes, scores, coarse_segm, fine_segm, u, v" in capsys.readouterr().out
    scripted = torch.jit.load(str(tmp_path / "tiny.ts"))
    image = _images()[1]
    with torch.no_grad():
        eager = model([image], min_size=96, max_size=160)[0]
        boxes, scores = scripted(image)[:2]
    torch.testing.assert_close(boxes, eager["boxes"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(scores, eager["scores"], atol=1e-5, rtol=1e-5)
