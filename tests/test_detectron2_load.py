"""detectron2 model-zoo checkpoints: variant detection, strict key mapping, safe reading, one-line errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling.detectron2 import detect_variant, is_detectron2_file, load_detectron2_model
from detectron2_checkpoints import detectron2_shapes, detectron2_state

VARIANTS = {
    "R_50_FPN_s1x": dict(depth=50),
    "R_50_FPN_WC1_s1x": dict(uv_confidence="iid_iso"),
    "R_50_FPN_s1x_legacy": dict(legacy=True),
    "R_101_FPN_DL_WC2M_s1x": dict(depth=101, deeplab=True, nonlocal_block=True, uv_confidence="indep_aniso",
                                  segm_confidence=True),
    "R_50_FPN_DL_WC2M_s1x": dict(deeplab=True, nonlocal_block=True, uv_confidence="indep_aniso", segm_confidence=True),
}


def _write_pkl(path, state):
    with open(path, "wb") as f:  # the model-zoo layout: {"model": {name: ndarray}, "__author__": ...}
        pickle.dump({"model": state, "__author__": "Detectron2 Model Zoo"}, f)
    return path


def _write_pth(path, state):
    torch.save({"model": {k: torch.from_numpy(v) for k, v in state.items()}, "iteration": 1}, path)
    return path


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "R_50_FPN_DL_WC2M_s1x"])
def test_variant_detected_from_keys_and_shapes(name):
    state = {k: torch.zeros(s) for k, s in detectron2_shapes(**VARIANTS[name]).items()}
    assert detect_variant(state).name == name


@pytest.mark.slow  # full-size R-50 weights: ~250 MB written, read and run
@pytest.mark.parametrize("name,fmt", [("R_50_FPN_s1x", "pkl"), ("R_50_FPN_s1x_legacy", "pth"),
                                      ("R_50_FPN_DL_WC2M_s1x", "pkl")])
def test_official_format_loads_strictly_and_runs(tmp_path, name, fmt):
    state = detectron2_state(**VARIANTS[name])
    path = (_write_pkl if fmt == "pkl" else _write_pth)(tmp_path / f"model.{fmt}", state)
    assert is_detectron2_file(path)
    model = load_detectron2_model(path)  # strict: any missing or unexpected key raises
    assert model.variant.name == name
    own = model.state_dict()
    assert len(own) == len(state)
    np.testing.assert_array_equal(own["backbone.bottom_up.res3.0.conv1.norm.running_var"].numpy(),
                                  state["backbone.bottom_up.res3.0.conv1.norm.running_var"])
    np.testing.assert_array_equal(own["rpn.head.objectness.weight"].numpy(),
                                  state["proposal_generator.rpn_head.objectness_logits.weight"])
    model.cfg.detections_per_image = 2
    model.cfg.rpn_post_nms_topk_test = 50
    out = model([torch.rand(3, 64, 80) * 255], min_size=64, max_size=80, score_thresh=0.0)[0]
    n = out["boxes"].shape[0]
    assert n == 2 and out["scores"].shape == (n,)
    side = 56 if "legacy" in name else 112
    assert out["coarse_segm"].shape[1:] == (15 if "legacy" in name else 2, side, side)
    assert out["fine_segm"].shape[1:] == out["u"].shape[1:] == (25, side, side)
    conf = {k for k in out if k not in ("boxes", "scores", "coarse_segm", "fine_segm", "u", "v")}
    expected = {"R_50_FPN_DL_WC2M_s1x": {"sigma_2", "kappa_u", "kappa_v", "fine_segm_confidence",
                                          "coarse_segm_confidence"}}.get(name, set())
    assert conf == expected


def test_malicious_pickle_is_refused_without_running(tmp_path):
    target = tmp_path / "created_by_pickle"

    class Exploit:
        def __reduce__(self):
            return (open, (str(target), "w"))

    path = tmp_path / "model_final_evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"backbone.bottom_up.stem.conv1.weight": Exploit()}}))
    with pytest.raises(UserError, match="refused") as err:
        load_detectron2_model(path)
    assert not target.exists()
    assert "\n" not in str(err.value)


def test_foreign_files_get_one_line_errors(tmp_path):
    ours = _write_pth(tmp_path / "ours.pth", {"backbone.fpn.lateral.0.weight": np.zeros((1, 1), np.float32)})
    with pytest.raises(UserError, match="not a detectron2 DensePose chart") as err:
        load_detectron2_model(ours)
    assert "\n" not in str(err.value)
    coco = detectron2_state(seed=1)
    coco["roi_heads.box_predictor.cls_score.weight"] = np.zeros((81, 1024), np.float32)
    with pytest.raises(UserError, match="81 outputs; expected 2"):
        load_detectron2_model(_write_pkl(tmp_path / "coco.pkl", coco))
    missing = detectron2_state(seed=2)
    del missing["roi_heads.densepose_head.body_conv_fcn8.bias"]
    with pytest.raises(UserError, match="missing"):
        load_detectron2_model(_write_pkl(tmp_path / "missing.pkl", missing))
    (tmp_path / "text.pkl").write_text("hello")
    with pytest.raises(UserError):
        load_detectron2_model(tmp_path / "text.pkl")
    assert not is_detectron2_file(tmp_path / "absent.pth")
