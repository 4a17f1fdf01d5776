"""TrainConfig: YAML loading, typed key.sub=value overrides, helpful errors; schedules."""
from __future__ import annotations


import pytest

from densepose.engine.config import TrainConfig, dump_config, load_config
from densepose.engine.solver import SolverConfig, lr_factor
from densepose.errors import UserError

CONFIGS = ["configs/light_synth.yaml", "configs/r50_fpn_synth.yaml"]


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)
    assert type(cfg.model).__name__ == "ModelConfig"
    assert load_config(path) == cfg


def test_presets_and_overrides(tmp_path):
    cfg = load_config("configs/light_synth.yaml", [
        "solver.base_lr=1e-3", "solver.steps=[10, 20]", "solver.max_iter=7", "data.flip_prob=0",
        "model.min_size_train=[64, 96]", "model.fpn_channels=64", "amp=false", "out=/tmp/x", "model.backbone_weights=w.pth",
    ])
    assert cfg.solver.base_lr == 0.001 and isinstance(cfg.solver.base_lr, float)
    assert cfg.solver.steps == [10, 20] and cfg.solver.max_iter == 7 and cfg.data.flip_prob == 0.0
    assert cfg.model.min_size_train == (64, 96) and cfg.model.fpn_channels == 64
    assert cfg.amp is False and cfg.out == "/tmp/x" and cfg.model.backbone_weights == "w.pth"
    assert load_config("configs/light_synth.yaml").model.backbone == "resnet18"
    r50 = load_config("configs/light_synth.yaml", ["model_preset=r50_fpn"])
    assert r50.model.backbone == "resnet50"
    # The YAML dump loads back to the same config.
    (tmp_path / "c.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("solver.base_lrr=0.1", r"unknown key 'solver.base_lrr'; did you mean solver.base_lr"),
        ("solvr.base_lr=0.1", r"unknown key 'solvr'; did you mean solver"),
        ("model.fpn_channel=3", r"did you mean model.fpn_channels"),
        ("solver.max_iter=ten", "solver.max_iter: expected an integer"),
        ("amp=maybe", "amp: expected true/false"),
        ("solver.steps=[a]", "solver.steps: expected an integer"),
        ("model_preset=huge", "model_preset must be one of light, (.* )?r50_fpn, tiny"),
        ("novalue", "must look like key.sub=value"),
    ],
)
def test_override_errors(override, message):
    with pytest.raises(UserError, match=message):
        load_config("configs/light_synth.yaml", [override])


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver:\n  warmup_iter: 3\n")
    with pytest.raises(UserError, match=r"bad.yaml: unknown key 'solver.warmup_iter'; did you mean solver.warmup_iters"):
        load_config(bad)
    bad.write_text("solver: [1, 2\n")
    with pytest.raises(UserError, match="bad.yaml: invalid YAML"):
        load_config(bad)
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_schedules():
    s = SolverConfig(base_lr=1.0, steps=[10, 20], gamma=0.1, warmup_iters=4, warmup_factor=0.2, max_iter=30)
    assert lr_factor(0, s) == pytest.approx(0.2)
    assert lr_factor(2, s) == pytest.approx(0.6)
    assert lr_factor(4, s) == 1.0 and lr_factor(9, s) == 1.0
    assert lr_factor(10, s) == pytest.approx(0.1) and lr_factor(25, s) == pytest.approx(0.01)
    c = SolverConfig(schedule="cosine", warmup_iters=0, max_iter=100, min_lr_factor=0.1)
    assert lr_factor(0, c) == 1.0 and lr_factor(100, c) == pytest.approx(0.1)
    assert lr_factor(50, c) == pytest.approx(0.1 + 0.9 * 0.5)
    assert all(lr_factor(i, c) >= lr_factor(i + 1, c) for i in range(100))
    with pytest.raises(UserError, match="solver.schedule"):
        lr_factor(0, SolverConfig(schedule="poly"))
