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
