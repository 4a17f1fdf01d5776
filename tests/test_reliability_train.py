"""`densepose train` as a careless user and an unlucky machine treat it: killed runs, torn files,
bad inputs, hostile checkpoints, fine-tuning from a model file, and the loss lines of the log."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import densepose.api
from densepose.cli.main import main
from test_data_dataset import make_tiny_coco
from test_reliability_load import Payload

# One torch thread: on a busy 2-core machine more threads make these tiny steps 10x slower.
pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["model_preset=tiny", "model.min_size_train=[64]", "model.max_size=96", "solver.optimizer=sgd",
        "data.flip_prob=0", "data.num_workers=0", "cpu_amp=false", "solver.warmup_iters=1", "solver.ims_per_batch=2",
        "eval_period=0", "log_period=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_coco(tmp_path_factory.mktemp("data"), n_images=4)


def _train(data, run, *extra, max_iter=2):
    return main(["train", "--config", "configs/light_synth.yaml", "--data", str(data), "--out", str(run), *TINY,
                 f"solver.max_iter={max_iter}", "checkpoint_period=1", *extra])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    return err[-1]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, data):
    """A finished 2-iteration run, trained through the console script: (run folder, its console output)."""
    run = tmp_path_factory.mktemp("base") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "densepose.cli.main", "train", "--config", "configs/light_synth.yaml",
         "--data", str(data), "--out", str(run), *TINY, "solver.max_iter=2", "checkpoint_period=1"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run, proc.stderr


@pytest.fixture
def finished_run(tmp_path, base_run):
    """A private copy of the finished run."""
    return Path(shutil.copytree(base_run[0], tmp_path / "run"))


# ----------------------------------------------------------------------------- killed runs
def test_torn_last_metrics_line_does_not_stop_resume(finished_run, data):
    # A run killed while appending its metrics leaves half a record in each file.
    with open(finished_run / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 3, "loss": 1.2')
    with open(finished_run / "metrics.csv", "a") as f:
        f.write("3,1.2")
    assert _train(data, finished_run, "--resume", max_iter=3) == 0
    records = [json.loads(line) for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3]
    rows = (finished_run / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]


def test_temp_files_of_killed_runs_are_removed(finished_run, data):
    # What a run killed inside an atomic write leaves behind.
    stale = [finished_run / ".model_0000003.pt.k2j4x.tmp", finished_run / ".last_checkpoint.a8s7.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = finished_run / "notes.tmp"
    keep.write_text("a user's file")
    assert _train(data, finished_run, "--resume", max_iter=3) == 0
    assert not any(p.exists() for p in stale) and keep.exists()
    assert (finished_run / "model_0000003.pt").is_file()


# ----------------------------------------------------------------------------- bad inputs leave nothing
@pytest.mark.parametrize("args, message", [
    (["--data", "nosuchdata"], "nosuchdata: no annotations.json here nor in"),
    (["--weights", "nosuch.pt"], "nosuch.pt: model file not found"),
    (["amp_dtype=float8"], "amp_dtype must be 'bfloat16' or 'float16'"),
])
def test_bad_input_creates_no_run_folder(tmp_path, data, capsys, args, message):
    run = tmp_path / "run"
    cmd = ["train", "--config", "configs/light_synth.yaml", "--data", str(data), "--out", str(run), *TINY, *args]
    assert main(cmd) == 2
    assert message in _one_line_error(capsys)
    assert not run.exists()


def test_weights_of_another_architecture_are_an_error_before_anything(tmp_path, data, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/light_synth.yaml", "--data", str(data), "--out", str(run),
                 "--weights", str(densepose.api.bundled_model_path()), *TINY]) == 2  # light weights, tiny config
    error = _one_line_error(capsys)
    assert "its weights do not fit the model of this config" in error and "settings that differ: " in error
    assert not run.exists()


# ----------------------------------------------------------------------------- resume reads data only
def test_resume_from_a_damaged_checkpoint_is_a_one_line_error(finished_run, data, capsys):
    newest = finished_run / "model_0000002.pt"
    state = torch.load(newest, weights_only=False)  # the run's own file, written by this test
    del state["optimizer"]
    torch.save(state, newest)
    assert _train(data, finished_run, "--resume", max_iter=3) == 2
    assert "model_0000002.pt: cannot resume: the checkpoint has no valid 'optimizer' entry" in _one_line_error(capsys)
    newest.write_bytes(b"\x80\x04garbage")
    assert _train(data, finished_run, "--resume", max_iter=3) == 2
    assert "model_0000002.pt: not a readable checkpoint" in _one_line_error(capsys)


def test_resume_from_a_hostile_checkpoint_never_runs_code(finished_run, data, tmp_path, capsys):
    marker = tmp_path / "pwned"
    newest = finished_run / "model_0000002.pt"
    torch.save({"model": {}, "optimizer": {}, "extra": Payload(marker)}, newest)
    assert _train(data, finished_run, "--resume", max_iter=3) == 2
    assert "not a readable checkpoint" in _one_line_error(capsys)
    assert not marker.exists()
    # The same holds for a plain pickle named like a checkpoint, and for a hostile --weights file.
    newest.write_bytes(pickle.dumps(Payload(marker), protocol=2))
    assert _train(data, finished_run, "--resume", max_iter=3) == 2
    assert _train(data, tmp_path / "ft", "--weights", str(newest)) == 2
    assert "not a readable model file" in _one_line_error(capsys)
    assert not marker.exists() and not (tmp_path / "ft").exists()


# ----------------------------------------------------------------------------- fine-tuning, log
def test_fine_tuning_from_the_bundled_model_starts_from_its_weights(tmp_path, data):
    bundled = torch.load(densepose.api.bundled_model_path(), weights_only=True)
    run = tmp_path / "ft"
    # The recipe of the bundled model names the ImageNet init file of the `densepose[train]` extra,
    # which the tests do not install: a start model file holds every weight, so it is not read.
    # base_lr 0: the one step leaves the weights where it started, so the checkpoint shows the start.
    assert main(["train", "--config", "configs/light_effnet_real.yaml", "--data", str(data), "--out", str(run),
                 "--weights", str(densepose.api.bundled_model_path()), "data.flip_prob=0", "data.num_workers=0",
                 "cpu_amp=false", "solver.max_iter=1", "solver.base_lr=0", "solver.ims_per_batch=1",
                 "model.min_size_train=[96]", "model.max_size=128", "eval_period=0"]) == 0
    trained = torch.load(run / "model_0000001.pt", weights_only=True)
    assert trained["config"]["weights"] == str(densepose.api.bundled_model_path())
    # The facing classifier, the person check, the head ruler and the small people's flip tables are not trained
    # by `densepose train`: they come along from the start file, with the settings they are read by (three
    # facing heads, five check heads, the power, the zoom size).
    for key in ("facing_on", "facing_power", "facing_members", "person_check_on", "person_check_members",
                "head_ruler_on", "head_ruler_power", "dp_zoom_flip", "dp_zoom_size"):
        assert trained["config"]["model"][key] == bundled["config"][key], key
    assert trained["model"].keys() == bundled["model"].keys()
    assert all(torch.equal(trained["model"][k], v) for k, v in bundled["model"].items())


def test_start_weights_and_resume_never_read_the_backbone_init_file(tmp_path, data, base_run):
    """The config's ``model.backbone_weights`` is only the init of a new run: with --weights or
    --resume every weight comes from the file, so a missing init file (or extra) is no error."""
    model_file = tmp_path / "start.pt"
    assert main(["export", str(base_run[0]), "--out", str(model_file)]) == 0
    missing = f"model.backbone_weights={tmp_path / 'not_installed.pth'}"
    assert _train(data, tmp_path / "ft", missing, "--weights", str(model_file), max_iter=1) == 0
    assert _train(data, tmp_path / "ft", missing, "--resume", max_iter=2) == 0


def test_loss_lines_on_the_console_and_in_the_log(base_run):
    run, console = base_run
    for text in (console, (run / "log.txt").read_text()):
        lines = [line for line in text.splitlines() if "iter " in line and " loss " in line]
        assert len(lines) == 2, text[-2000:]
        assert "iter 2/2  loss " in lines[-1] and "  lr " in lines[-1] and " s/it  eta " in lines[-1]


def test_train_only_densepose_keeps_the_detector(tmp_path, data):
    """``train_only_densepose``: the trunk, FPN, RPN and box head leave the run as they came from the
    start file (so the fine-tuned model detects the same people), the DensePose branch learns."""
    bundled = torch.load(densepose.api.bundled_model_path(), weights_only=True)
    run = tmp_path / "ft"
    assert main(["train", "--config", "configs/light_effnet_real.yaml", "--data", str(data), "--out", str(run),
                 "--weights", str(densepose.api.bundled_model_path()), "data.flip_prob=0", "data.num_workers=0",
                 "cpu_amp=false", "solver.max_iter=2", "solver.warmup_iters=0", "solver.ims_per_batch=1",
                 "model.min_size_train=[96]", "model.max_size=128", "eval_period=0", "train_only_densepose=true"]) == 0
    trained = torch.load(run / "model_0000002.pt", weights_only=True)["model"]
    assert trained.keys() == bundled["model"].keys()
    detector = [k for k in bundled["model"] if not k.startswith("dp_")]
    assert len(detector) > 100 and all(torch.equal(trained[k], bundled["model"][k]) for k in detector)
    assert any(not torch.equal(trained[k], v) for k, v in bundled["model"].items() if k.startswith("dp_head."))


def test_a_run_fine_tuned_from_the_bundled_model_resumes(tmp_path, data):
    """A run started with --weights from a model file with a facing classifier, a person check and a
    head ruler continues with --resume alone (no --weights): the model it builds has those parts."""
    bundled = torch.load(densepose.api.bundled_model_path(), weights_only=True)
    run = tmp_path / "ft"
    args = ["train", "--config", "configs/light_effnet_real.yaml", "--data", str(data), "--out", str(run),
            "data.flip_prob=0", "data.num_workers=0", "cpu_amp=false", "solver.warmup_iters=0",
            "solver.ims_per_batch=1", "model.min_size_train=[96]", "model.max_size=128", "eval_period=0",
            "train_only_densepose=true", "checkpoint_period=1"]
    assert main([*args[:7], "--weights", str(densepose.api.bundled_model_path()), *args[7:], "solver.max_iter=1"]) == 0
    assert main([*args[:7], "--resume", *args[7:], "solver.max_iter=2", "solver.steps=[1]"]) == 0
    resumed = torch.load(run / "model_0000002.pt", weights_only=True)
    assert resumed["iteration"] == 2 and resumed["model"].keys() == bundled["model"].keys()
    assert resumed["config"]["model"]["facing_members"] == bundled["config"]["facing_members"]
    facing = [k for k in bundled["model"] if k.startswith("facing")]
    assert facing and all(torch.equal(resumed["model"][k], bundled["model"][k]) for k in facing)


def _settings(model_file: dict):
    """A model file's config as the model reads it (settings added since it was written take their defaults)."""
    from densepose.modeling.model_file import model_config_from_dict

    return model_config_from_dict(model_file["config"], "model file")


def test_export_densepose_onto_swaps_only_the_densepose_branch(tmp_path, capsys):
    """``export CKPT --densepose-onto MODEL``: MODEL's config, settings and detector stay, the
    DensePose branch is the checkpoint's; a branch of another shape is a one-line error."""
    from densepose.engine.checkpoint import save_checkpoint

    bundled_path = densepose.api.bundled_model_path()
    bundled = torch.load(bundled_path, weights_only=True)
    branch = {k: v + 1 for k, v in bundled["model"].items() if k.startswith("dp_")}
    save_checkpoint(tmp_path / "branch.pt", {"model": branch, "iteration": 7})
    out = tmp_path / "new.pt"
    assert main(["export", str(tmp_path / "branch.pt"), "--densepose-onto", str(bundled_path), "--out", str(out)]) == 0
    new = torch.load(out, weights_only=True)
    assert _settings(new) == _settings(bundled) and new["model"].keys() == bundled["model"].keys()
    assert all(torch.equal(new["model"][k], branch[k] if k in branch else v) for k, v in bundled["model"].items())
    assert new["meta"]["densepose_branch"]["iteration"] == 7

    save_checkpoint(tmp_path / "short.pt", {"model": dict(list(branch.items())[1:])})
    assert main(["export", str(tmp_path / "short.pt"), "--densepose-onto", str(bundled_path), "--out", str(out)]) == 2
    assert "does not fit" in _one_line_error(capsys)


def test_export_onto_takes_every_weight_and_keeps_the_file_settings(tmp_path, capsys):
    """``export CKPT --onto MODEL`` (a whole-detector run started from MODEL): every weight is the
    checkpoint's, MODEL's config and settings stay; a checkpoint missing one of MODEL's tensors or
    holding one MODEL lacks is a one-line error, not a file silently half old."""
    from densepose.engine.checkpoint import save_checkpoint

    bundled_path = densepose.api.bundled_model_path()
    bundled = torch.load(bundled_path, weights_only=True)
    tuned = {k: v + 1 if v.is_floating_point() else v for k, v in bundled["model"].items()}
    save_checkpoint(tmp_path / "run.pt", {"model": tuned, "iteration": 1345})
    out = tmp_path / "new.pt"
    assert main(["export", str(tmp_path / "run.pt"), "--onto", str(bundled_path), "--out", str(out)]) == 0
    new = torch.load(out, weights_only=True)
    assert _settings(new) == _settings(bundled) and new["model"].keys() == bundled["model"].keys()
    assert all(torch.equal(new["model"][k], v) for k, v in tuned.items())
    assert new["meta"]["weights_from"]["iteration"] == 1345

    for name, model in (("short", dict(list(tuned.items())[1:])), ("extra", {**tuned, "mask_head.w": torch.zeros(1)})):
        save_checkpoint(tmp_path / f"{name}.pt", {"model": model})
        assert main(["export", str(tmp_path / f"{name}.pt"), "--onto", str(bundled_path), "--out", str(out)]) == 2
        assert "do not fit" in _one_line_error(capsys)
    assert main(["export", str(tmp_path / "run.pt"), "--onto", str(bundled_path), "--out", str(out),
                 "--test-sizes", "384"]) == 2
    assert "keeps the model file's settings" in _one_line_error(capsys)
