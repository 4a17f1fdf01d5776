"""`densepose train` command line: user mistakes are one-line errors with exit status 2."""
from __future__ import annotations

import json

import pytest

from densepose.cli.main import main
from test_data_dataset import make_tiny_coco


@pytest.mark.parametrize(
    "extra, message",
    [
        (["solver.base_lrr=0.1"], "unknown key 'solver.base_lrr'; did you mean solver.base_lr"),
        (["solver.max_iter=abc"], "solver.max_iter: expected an integer"),
        (["data.root="], "no training data: pass --data DIR"),
    ],
)
def test_train_cli_errors(tmp_path, capsys, extra, message):
    code = main(["train", "--config", "configs/light_synth.yaml", "--out", str(tmp_path / "run"), *extra])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def test_train_cli_bad_data(tmp_path, capsys):
    root = make_tiny_coco(tmp_path / "data", n_images=2)
    data = json.loads((root / "annotations.json").read_text())
    data["annotations"][0]["dp_I"][0] = 30
    (root / "annotations.json").write_text(json.dumps(data))
    code = main(["train", "--config", "configs/light_synth.yaml", "--data", str(root), "--out", str(tmp_path / "run"),
                 "data.flip_prob=0", "model_preset=tiny"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "annotations.json: annotation #0 (id 1): dp_I must be integers in 1..24" in err
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err


def test_dataset_folder_finds_split(tmp_path):
    from densepose.engine.train import dataset_folder
    from densepose.errors import UserError

    make_tiny_coco(tmp_path / "d" / "train", n_images=1)
    assert dataset_folder(tmp_path / "d", "annotations.json", "train") == tmp_path / "d" / "train"
    assert dataset_folder(tmp_path / "d" / "train", "annotations.json", "train") == tmp_path / "d" / "train"
    with pytest.raises(UserError, match="no annotations.json here nor in"):
        dataset_folder(tmp_path / "d", "annotations.json", "val")


def test_train_then_export_then_predict(tmp_path, capsys):
    """A run folder -> `densepose export` -> a model file that `densepose.load` and predict read."""
    import numpy as np
    import torch

    from densepose.api import load

    root = make_tiny_coco(tmp_path / "data", n_images=2)
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/light_synth.yaml", "--data", str(root), "--out", str(run),
                 "model_preset=tiny", "solver.max_iter=2", "checkpoint_period=1", "eval_period=0",
                 "data.num_workers=0", "cpu_amp=false", "solver.warmup_iters=1"]) == 0
    # stderr is not a terminal here (a log file): the loss lines, no progress bar's \r updates
    assert "\r" not in capsys.readouterr().err
    out = tmp_path / "model.pt"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert "iteration 2" in capsys.readouterr().out
    saved = torch.load(out, map_location="cpu", weights_only=True)  # no optimizer/RNG state left
    assert set(saved) == {"config", "model", "meta"} and saved["config"]["backbone_width"] == 16
    trained = torch.load(run / "model_0000002.pt", map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(saved["model"][k], v) for k, v in trained.items())
    people = load(out, min_score=0.0)(np.zeros((96, 128, 3), np.uint8))
    assert isinstance(people, list)
    # The test sizes of the model file: the first is min_size_test, the others are merged in.
    sized = tmp_path / "sized.pt"
    assert main(["export", str(run), "--out", str(sized), "--test-sizes", "96", "64"]) == 0
    config = torch.load(sized, map_location="cpu", weights_only=True)["config"]
    assert config["min_size_test"] == 96 and tuple(config["extra_test_sizes"]) == (64,)
    assert isinstance(load(sized, min_score=0.0)(np.zeros((96, 128, 3), np.uint8)), list)
    # A model file written again with other sizes keeps its weights and where they came from.
    assert main(["export", str(sized), "--out", str(tmp_path / "again.pt"), "--test-sizes", "80"]) == 0
    again = torch.load(tmp_path / "again.pt", map_location="cpu", weights_only=True)
    assert again["config"]["min_size_test"] == 80 and tuple(again["config"]["extra_test_sizes"]) == ()
    assert all(torch.equal(again["model"][k], v) for k, v in saved["model"].items()) and again["meta"]["iteration"] == 2
    assert again["meta"]["source"] == saved["meta"]["source"] and "model_0000002.pt" in again["meta"]["source"]
    assert again["meta"]["model_preset"] == saved["meta"]["model_preset"] != ""
    assert main(["export", str(run), "--out", str(sized), "--test-sizes", "0"]) == 2
    assert "min_size_test = 0 is out of range" in capsys.readouterr().err
    assert main(["export", str(out), "--format", "torchscript", "--out", str(tmp_path / "m.ts"), "--test-sizes", "96"]) == 2
    assert "a graph tests at one size" in capsys.readouterr().err
    # A training checkpoint given where a model file is expected: a one-line hint, not a traceback.
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "no such checkpoint or run folder" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--model", str(run / "model_0000001.pt"), "--out", str(tmp_path / "p")]) == 2
    assert "densepose export" in capsys.readouterr().err


def test_export_sets_model_settings(tmp_path, capsys):
    """`export --set key=value` writes model settings (here the test-time filters) into a model
    file; names, types, ranges and the weights' fit are checked, each a one-line error."""
    import torch

    from densepose.modeling import DensePoseRCNN, tiny_config

    torch.manual_seed(0)
    cfg = tiny_config()
    src = tmp_path / "m.pt"
    torch.save({"config": cfg.to_dict(), "model": DensePoseRCNN(cfg).state_dict(),
                "meta": {"source": "runs/x/model_0000005.pt", "iteration": 5, "model_preset": "tiny",
                         "facing": {"people": 12}}}, src)
    out = tmp_path / "set.pt"
    assert main(["export", str(src), "--out", str(out), "--set", "drop_group_boxes=true",
                 "multisize_max_height=192", "multisize_min_height=32"]) == 0
    written = torch.load(out, map_location="cpu", weights_only=True)
    assert written["config"]["drop_group_boxes"] is True
    assert (written["config"]["multisize_min_height"], written["config"]["multisize_max_height"]) == (32, 192)
    assert written["meta"]["source"] == "runs/x/model_0000005.pt"
    assert written["meta"]["facing"] == {"people": 12}  # the record of what was added after training stays
    capsys.readouterr()
    for bad, message in [("drop_group_boxe=true", "did you mean drop_group_boxes"),
                         ("multisize_max_height=abc", "expected a number"),
                         ("multisize_max_height=-3", "out of range"),
                         ("facing_power=0", "facing_power = 0.0 is out of range (must be > 0 and <= 10.0)"),
                         ("facing_power=12", "out of range"),
                         ("fpn_channels=8", "do not fit"),
                         ("drop_group_boxes", "must look like key.sub=value")]:
        assert main(["export", str(src), "--out", str(tmp_path / "bad.pt"), "--set", bad]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad.pt").exists()


def test_export_set_turning_a_part_off_leaves_its_weights_out(tmp_path, capsys):
    """`export --set head_ruler_on=false` writes the model without the ruler's table (it used to
    fail: "weight head_ruler_log_ratio does not belong to the model"), says so, and the file loads;
    turning a part on that the weights lack is still a one-line error."""
    import dataclasses

    import torch

    from densepose.modeling import DensePoseRCNN, tiny_config
    from densepose.modeling.model_file import load_model_file

    cfg = dataclasses.replace(tiny_config(), head_ruler_on=True)
    src = tmp_path / "m.pt"
    torch.save({"config": cfg.to_dict(), "model": DensePoseRCNN(cfg).state_dict(),
                "meta": {"source": "runs/x/model_0000005.pt", "iteration": 5}}, src)
    out = tmp_path / "off.pt"
    assert main(["export", str(src), "--out", str(out), "--set", "head_ruler_on=false"]) == 0
    assert "left out 1 weight(s) of what the settings turn off: head_ruler_log_ratio" in capsys.readouterr().out
    written = torch.load(out, map_location="cpu", weights_only=True)
    assert written["config"]["head_ruler_on"] is False and "head_ruler_log_ratio" not in written["model"]
    assert not load_model_file(out).cfg.head_ruler_on
    assert main(["export", str(out), "--out", str(tmp_path / "on.pt"), "--set", "head_ruler_on=true"]) == 2
    err = capsys.readouterr().err
    assert "weight head_ruler_log_ratio is missing" in err and len(err.strip().splitlines()) == 1, err


def test_train_overrides_may_stand_on_both_sides_of_an_option():
    """``train ... a=1 --resume b=2`` (argparse alone stops at ``b=2``); other stray words stay errors."""
    from densepose.cli.main import build_parser, parse

    args = parse(build_parser(), ["train", "--config", "c.yaml", "solver.max_iter=5", "--resume", "seed=3"])
    assert args.overrides == ["solver.max_iter=5", "seed=3"] and args.resume
    for argv in (["train", "seed=1", "--resume", "--bogus"], ["train", "seed=1", "--resume", "word"],
                 ["export", "run", "--out", "m.pt", "seed=1"]):
        with pytest.raises(SystemExit):
            parse(build_parser(), argv)
