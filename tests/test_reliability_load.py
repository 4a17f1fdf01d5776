"""Model files as a hostile or careless user gives them: load(), predict --model, export, backbone
weights, SMPL and Pdist pickles. A file is data: no code runs (the marker file is never created),
no other path is opened, and every damaged value is a one-line error naming the file."""
from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import densepose.api
from densepose.cli.main import main
from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config


class Payload:
    """Unpickling this object creates the file ``marker`` (what an attacker's code would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def tiny_file_dict():
    torch.manual_seed(0)
    cfg = tiny_config()
    return {"config": cfg.to_dict(), "model": DensePoseRCNN(cfg).state_dict()}


def _save(path, obj):
    torch.save(obj, path)
    return path


def _evil_pickle(path, marker, wrap=lambda p: {"model": {"w": p}}):
    path.write_bytes(pickle.dumps(wrap(Payload(marker)), protocol=2))
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ----------------------------------------------------------------------------- no code runs
@pytest.mark.parametrize("relative", [False, True])
def test_backbone_weights_pickle_named_by_a_model_file_never_runs(tmp_path, tiny_file_dict, monkeypatch, capsys,
                                                                 relative):
    marker = tmp_path / "pwned"
    evil = _evil_pickle(tmp_path / "evil.pkl", marker)
    monkeypatch.chdir(tmp_path)
    model_file = _save(tmp_path / "m.pt", {**tiny_file_dict, "config": {
        **tiny_file_dict["config"], "backbone_weights": "evil.pkl" if relative else str(evil)}})
    densepose.api.load(model_file)  # self-contained: its weights are in the file, the path is ignored
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "img" / "x.png")
    assert main(["predict", str(tmp_path / "img"), "--model", str(model_file), "--out", str(tmp_path / "out")]) == 0
    # A model file that is itself a hostile pickle is refused before anything is called.
    hostile = _save(tmp_path / "hostile.pt", {"config": {}, "model": Payload(marker)})
    with pytest.raises(UserError, match="not a readable model file"):
        densepose.api.load(hostile)
    assert main(["predict", str(tmp_path / "img"), "--model", str(hostile), "--out", str(tmp_path / "o2")]) == 2
    # So is a hostile .pkl given as the model (the detectron2 model-zoo path).
    assert main(["predict", str(tmp_path / "img"), "--model", str(evil), "--out", str(tmp_path / "o3")]) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("name", ["graph.ts", "graph.pt", "graph.onnx"])
def test_an_exported_graph_given_as_the_model_says_what_it_is(tmp_path, capsys, recwarn, name):
    """`densepose export --format torchscript|onnx` writes graphs for other runtimes; given back to
    predict (even named .pt) they are named as such in one line, and torch.load never sees them."""
    path = tmp_path / name
    if name.endswith(".onnx"):
        path.write_bytes(b"\x08\x07\x12\x07pytorch")  # an ONNX protobuf's first fields
    else:
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    kind = "ONNX" if name.endswith(".onnx") else "TorchScript"
    with pytest.raises(UserError, match=f"a {kind} graph .* not a model file"):
        densepose.api.load(path)
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "img" / "x.png")
    assert main(["predict", str(tmp_path / "img"), "--model", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"a {kind} graph" in _one_line_error(capsys)
    assert not [w for w in recwarn if "TorchScript" in str(w.message)]  # torch.load's dispatch warning


def test_model_file_never_opens_other_paths(tmp_path, tiny_file_dict):
    model_file = _save(tmp_path / "m.pt", {**tiny_file_dict, "config": {
        **tiny_file_dict["config"], "backbone_weights": str(tmp_path / "nowhere" / "resnet.pth")}})
    model = densepose.api.build_model_from_checkpoint(model_file)
    assert model.cfg.backbone_weights is None


def test_export_of_a_malicious_checkpoint_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = _save(tmp_path / "model_0000001.pt", {"model": {}, "config": {"model": {}}, "x": Payload(marker)})
    assert main(["export", str(ckpt), "--out", str(tmp_path / "out.pt")]) == 2
    assert "not a readable checkpoint" in _one_line_error(capsys)
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_backbone_weights_pickle_never_runs(tmp_path):
    from densepose.modeling.backbone import Backbone, load_backbone_weights

    marker = tmp_path / "pwned"
    evil = _evil_pickle(tmp_path / "R-50.pkl", marker)
    backbone = Backbone("resnet18", 32, "gn", 0, 16)
    with pytest.raises(UserError, match="R-50.pkl: refused"):
        load_backbone_weights(backbone, evil)
    assert not marker.exists()
    # A pickle of arrays (detectron2's format; torchvision names here) still loads.
    weights = {k: v.numpy() + 1.0 for k, v in backbone.bottom_up.state_dict().items()}
    path = tmp_path / "resnet18.pkl"
    path.write_bytes(pickle.dumps({"model": weights, "__author__": "test"}, protocol=2))
    load_backbone_weights(backbone, path)
    assert np.array_equal(backbone.bottom_up.conv1.weight.detach().numpy(), weights["conv1.weight"])


def test_smpl_pickle_never_runs_and_real_layout_loads(tmp_path, monkeypatch):
    import sys
    import types

    import scipy.sparse

    from densepose.surface.smpl import NUM_SMPL_VERTICES, load_smpl_geometry

    marker = tmp_path / "pwned"
    evil = _evil_pickle(tmp_path / "smpl.pkl", marker, wrap=lambda p: {"v_template": p, "f": p})
    with pytest.raises(UserError, match="smpl.pkl: refused"):
        load_smpl_geometry(evil)
    assert not marker.exists()

    # The official file's layout: v_template a chumpy array, J_regressor a scipy sparse matrix.
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x, self._dirty_vars = x, set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    verts = np.random.default_rng(0).normal(size=(NUM_SMPL_VERTICES, 3))
    faces = np.arange(30, dtype=np.uint32).reshape(10, 3)
    real = {"v_template": Ch(verts), "f": faces, "J_regressor": scipy.sparse.csc_matrix(np.eye(3)),
            "bs_style": "lbs"}
    (tmp_path / "basicModel.pkl").write_bytes(pickle.dumps(real, protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy.ch")  # reading must not need chumpy installed
    v, f = load_smpl_geometry(tmp_path / "basicModel.pkl")
    assert np.array_equal(v, verts) and np.array_equal(f, faces)


def test_pdist_pickle_never_runs(tmp_path, sphere_surface):
    from densepose.surface.official_files import PDIST, read_official_files, write_official_files

    write_official_files(sphere_surface, tmp_path)
    assert read_official_files(tmp_path).pdist.size > 0
    marker = tmp_path / "pwned"
    _evil_pickle(tmp_path / PDIST, marker, wrap=lambda p: {"Pdist_matrix": p})
    with pytest.raises(UserError, match="Pdist_matrix.pkl: refused"):
        read_official_files(tmp_path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- damaged values
def _broken(d, **config):
    return {**d, "config": {**d["config"], **config}}


@pytest.mark.parametrize("change, message", [
    (lambda d: {**d, "model": list(d["model"].values())}, "'model' must be a state dict"),
    (lambda d: {**d, "model": {**d["model"], "rpn.head.conv.weight": "abc"}}, "entry 'rpn.head.conv.weight' is str"),
    (lambda d: _broken(d, fpn_channels="32"), "config: fpn_channels must be an integer, not '32'"),
    (lambda d: _broken(d, fpn_channels=-32), "config: fpn_channels = -32 is out of range"),
    (lambda d: _broken(d, backbone_width=10**9), "config: backbone_width = 1000000000 is out of range"),
    (lambda d: _broken(d, min_size_test=-5), "config: min_size_test = -5 is out of range"),
    (lambda d: _broken(d, score_thresh_test=2.0), "config: score_thresh_test = 2.0 is out of range"),
    (lambda d: _broken(d, nms_thresh_test=math.nan), "config: nms_thresh_test must be finite"),
    (lambda d: _broken(d, pixel_std=[0.0, 1.0, 1.0]), "config: pixel_std = 0.0 is out of range"),
    (lambda d: _broken(d, anchor_sizes="big"), "config: anchor_sizes must be a non-empty list"),
    (lambda d: {**d, "config": [1, 2]}, "'config' must be a dict of model settings"),
    (lambda d: _broken(d, fpn_channels=64), "the model expects (64,"),
])
def test_damaged_model_file_is_a_one_line_error(tmp_path, tiny_file_dict, capsys, change, message):
    path = _save(tmp_path / "m.pt", change(tiny_file_dict))
    with pytest.raises(UserError, match="m.pt: ") as info:
        densepose.api.load(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert main(["predict", str(tmp_path), "--model", str(path), "--out", str(tmp_path / "o")]) == 2
    assert message in _one_line_error(capsys)


def test_non_finite_weights_are_an_error_not_zero_people(tmp_path, tiny_file_dict):
    state = dict(tiny_file_dict["model"])
    name = next(k for k, v in state.items() if v.is_floating_point() and k.startswith("box_head"))
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    path = _save(tmp_path / "m.pt", {**tiny_file_dict, "model": state})
    with pytest.raises(UserError, match=f"weight {name} holds NaN or infinite values"):
        densepose.api.load(path)


def test_export_of_damaged_checkpoints(tmp_path, tiny_file_dict, capsys):
    out = tmp_path / "out.pt"
    garbage = tmp_path / "model_0000001.pt"
    garbage.write_bytes(os.urandom(4096))
    assert main(["export", str(garbage), "--out", str(out)]) == 2
    assert "not a readable checkpoint" in _one_line_error(capsys)
    nan_state = {k: v.clone() for k, v in tiny_file_dict["model"].items()}
    next(v for v in nan_state.values() if v.is_floating_point()).fill_(float("inf"))
    for state, message in [
        ({"model": nan_state, "config": {"model": tiny_file_dict["config"]}}, "holds NaN or infinite values"),
        ({"model": [1, 2], "config": {"model": tiny_file_dict["config"]}}, "not a `densepose train` checkpoint"),
        ({"model": tiny_file_dict["model"], "config": {"model": {**tiny_file_dict["config"], "dp_dim": "x"}}},
         "config: dp_dim must be an integer"),
    ]:
        _save(garbage, state)
        assert main(["export", str(garbage), "--out", str(out)]) == 2
        assert message in _one_line_error(capsys)
    assert not out.exists()


def test_export_writes_a_self_contained_model_file(tmp_path, tiny_file_dict, capsys):
    config = {**tiny_file_dict["config"], "backbone_weights": str(tmp_path / "resnet.pth")}
    ckpt = _save(tmp_path / "model_0000005.pt", {"model": tiny_file_dict["model"], "iteration": 5,
                                                  "config": {"model": config, "model_preset": "tiny"}})
    assert main(["export", str(ckpt), "--out", str(tmp_path / "m.pt")]) == 0
    saved = torch.load(tmp_path / "m.pt", weights_only=True)
    assert saved["config"]["backbone_weights"] is None and saved["meta"]["iteration"] == 5
    densepose.api.load(tmp_path / "m.pt")


def test_equal_weights_are_stored_once_and_read_back_as_separate_tensors(tmp_path, tiny_file_dict):
    from densepose.engine.export import write_model_file
    from densepose.modeling.model_file import read_model_file

    weights = {k: v.clone() for k, v in tiny_file_dict["model"].items()}
    big = max((k for k, v in weights.items() if v.is_floating_point()), key=lambda k: weights[k].numel())
    other = next(k for k, v in weights.items() if k != big and v.shape == weights[big].shape and v.is_floating_point())
    weights[other] = weights[big].clone()  # equal values under two names, as the facing trunk and the detector's
    write_model_file(tmp_path / "once.pt", tiny_file_dict["config"], weights, {}, "test")
    weights[other] = weights[big] + 1.0
    write_model_file(tmp_path / "twice.pt", tiny_file_dict["config"], weights, {}, "test")
    saved = (tmp_path / "twice.pt").stat().st_size - (tmp_path / "once.pt").stat().st_size
    assert saved >= weights[big].numel() * 4 * 0.9  # the copy's bytes are not in the file
    raw = torch.load(tmp_path / "once.pt", weights_only=True)["model"]
    assert raw[other] is raw[big]
    read = read_model_file(tmp_path / "once.pt").weights
    assert torch.equal(read[other], read[big])
    read[other].add_(1.0)  # a tool changing one name in place leaves the other as it was
    assert torch.equal(read[big], tiny_file_dict["model"][big])


def test_weights_float16_holds_exactly_are_stored_so_and_half_rounds_the_rest(tmp_path, tiny_file_dict, capsys):
    from densepose.engine.export import write_model_file
    from densepose.modeling.model_file import read_model_file

    weights = {k: v.clone() for k, v in tiny_file_dict["model"].items()}
    exact, rough = [k for k, v in weights.items() if v.is_floating_point() and v.numel() > 100][:2]
    weights[exact] = (torch.arange(weights[exact].numel()) % 64 / 16 - 2).reshape(weights[exact].shape).float()
    write_model_file(tmp_path / "m.pt", tiny_file_dict["config"], weights, {}, "test")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)["model"]
    assert raw[exact].dtype == torch.float16 and raw[rough].dtype == torch.float32
    read = read_model_file(tmp_path / "m.pt").weights
    assert read[exact].dtype == torch.float32 and torch.equal(read[exact], weights[exact])
    assert torch.equal(read[rough], weights[rough])
    # --half: every weight as float16, each within 2^-11 of its value, the file about half the size
    assert main(["export", str(tmp_path / "m.pt"), "--out", str(tmp_path / "h.pt"), "--half"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert all(v.dtype != torch.float32 for v in torch.load(tmp_path / "h.pt", weights_only=True)["model"].values())
    halved = read_model_file(tmp_path / "h.pt").weights
    torch.testing.assert_close(halved[rough], weights[rough], rtol=2**-11, atol=1e-7)
    assert (tmp_path / "h.pt").stat().st_size < 0.6 * (tmp_path / "m.pt").stat().st_size
    densepose.api.load(tmp_path / "h.pt")
    # a model file written again (here with other test sizes) keeps its float16 weights
    assert main(["export", str(tmp_path / "h.pt"), "--out", str(tmp_path / "again.pt"), "--test-sizes", "96"]) == 0
    assert (tmp_path / "again.pt").stat().st_size < 0.6 * (tmp_path / "m.pt").stat().st_size
