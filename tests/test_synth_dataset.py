"""Synthetic dataset: ground-truth consistency, determinism, shards + merge, resume after SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from densepose.data.coco import load_coco
from densepose.data.rle import DP_MASK_SIZE, decode_dp_masks, decode_mask
from densepose.surface.parts import CHART_TO_MASK_PART
from densepose.synth.writer import RunSettings, generate, load_dense, merge

REPO = Path(__file__).resolve().parents[1]
SETTINGS = RunSettings(num=6, size=96, seed=11, max_people=3, min_dp_pixels=40, plain=True)


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "synth.json" and not p.name.startswith("."):
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_ref")
    generate(out, SETTINGS, photos=[], progress=False)
    return out


def _people(root: Path):
    coco = load_coco(root / "annotations.json")  # also validates every record
    for image_id in coco.image_ids:
        img = coco.images[image_id]
        dense = load_dense(root / "dense" / (Path(img["file_name"]).stem + ".npz"))
        for k, ann in enumerate(coco.annotations[image_id], start=1):
            yield img, dense, k, ann


def test_layout_and_coco_format(reference):
    data = json.loads((reference / "annotations.json").read_text())
    assert [im["id"] for im in data["images"]] == [1, 2, 3, 4, 5, 6]
    assert data["categories"][0]["name"] == "person" and len(data["categories"][0]["keypoints"]) == 17
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"]) > 0
    for im in data["images"]:
        assert (reference / "images" / im["file_name"]).exists()
    assert sum("dp_x" in a for a in data["annotations"]) > 0


def test_dense_maps_and_annotations_agree(reference):
    n_points = 0
    for img, dense, k, ann in _people(reference):
        mask = dense["instance"] == k
        assert np.array_equal(decode_mask(ann["segmentation"]).astype(bool), mask)
        assert ann["area"] == mask.sum() > 0
        assert np.all(dense["I"][mask] > 0)
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(mask)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
        # Visible keypoints lie on the person's mask.
        kp = np.asarray(ann["keypoints"]).reshape(17, 3)
        for kx, ky, v in kp:
            if v == 2:
                assert mask[int(ky), int(kx)]
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())
        if "dp_x" not in ann:
            continue
        # Every dp point's (I, U, V) is the dense map at its pixel, on this person.
        px = np.floor(x + np.asarray(ann["dp_x"]) * w / DP_MASK_SIZE).astype(int)
        py = np.floor(y + np.asarray(ann["dp_y"]) * h / DP_MASK_SIZE).astype(int)
        assert np.all(mask[py, px])
        assert np.array_equal(dense["I"][py, px], np.asarray(ann["dp_I"]))
        assert np.array_equal(dense["U"][py, px].astype(np.float64), np.asarray(ann["dp_U"]))
        assert np.array_equal(dense["V"][py, px].astype(np.float64), np.asarray(ann["dp_V"]))
        assert len(set(zip(px, py))) == len(px)  # distinct pixels
        n_points += len(px)
        # dp_masks are the coarse parts of the dense map, sampled at the 256x256 cell centres.
        labels = decode_dp_masks(ann["dp_masks"])
        rows = np.floor(y + (np.arange(DP_MASK_SIZE) + 0.5) * h / DP_MASK_SIZE).astype(int)
        cols = np.floor(x + (np.arange(DP_MASK_SIZE) + 0.5) * w / DP_MASK_SIZE).astype(int)
        expect = CHART_TO_MASK_PART[dense["I"][np.ix_(rows, cols)]] * mask[np.ix_(rows, cols)]
        assert np.array_equal(labels, expect)
    assert n_points > 0


def test_shards_merge_to_the_same_dataset(reference, tmp_path):
    a, b, m = tmp_path / "a", tmp_path / "b", tmp_path / "m"
    generate(a, SETTINGS, photos=[], shard=(0, 2), progress=False)
    generate(b, SETTINGS, photos=[], shard=(1, 2), progress=False)
    assert len(list((a / "parts").glob("*.json"))) == 3
    assert merge([a, b], m) == 6
    assert _files(m) == _files(reference)


def test_rerun_skips_finished_images(reference):
    assert generate(reference, SETTINGS, photos=[], progress=False) == 0


def test_resume_after_sigkill_matches_uninterrupted_run(reference, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "densepose.cli.main", "synth", "--out", str(out), "--num", str(SETTINGS.num),
           "--size", str(SETTINGS.size), "--seed", str(SETTINGS.seed), "--max-people", str(SETTINGS.max_people),
           "--min-dp-pixels", str(SETTINGS.min_dp_pixels), "--backgrounds", "", "--no-progress", "--plain"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (out / "parts").is_dir() and any((out / "parts").glob("*.json")):
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    finished = len(list((out / "parts").glob("*.json")))
    assert finished < SETTINGS.num, "the run finished before it could be killed"
    assert not (out / "annotations.json").exists()
    generate(out, SETTINGS, photos=[], progress=False)
    assert _files(out) == _files(reference)


def test_render_is_deterministic_by_seed():
    from densepose.synth.scene import SynthConfig, Synthesizer

    synth = Synthesizer(SynthConfig(height=64, width=64, max_people=2, min_dp_pixels=20, plain=True))
    a, b, c = synth.render(3, 5), synth.render(3, 5), synth.render(4, 5)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.I, b.I) and a.people == b.people
    assert not np.array_equal(a.rgb, c.rgb)


def test_cli_errors_are_one_line(tmp_path, capsys):
    from densepose.cli.main import main

    assert main(["synth", "--out", str(tmp_path / "x")]) == 2
    assert "needs --out DIR and --num N" in capsys.readouterr().err
    assert main(["synth", "preview", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 2


def test_assemble_joins_the_images_a_stopped_run_finished(reference, tmp_path, capsys):
    """`densepose synth assemble DIR`: a run stopped before its end (no annotations.json, one image
    unfinished) gets the annotations of the images it finished; a folder that is no synth output is
    a one-line error."""
    import shutil

    from densepose.cli.main import main

    run = tmp_path / "stopped"
    shutil.copytree(reference, run)
    (run / "annotations.json").unlink()
    unfinished = sorted((run / "parts").glob("*.json"))[-1]
    unfinished.unlink()
    assert main(["synth", "assemble", str(run)]) == 0
    assert "5 finished images" in capsys.readouterr().out
    data = json.loads((run / "annotations.json").read_text())
    want = json.loads((reference / "annotations.json").read_text())
    assert len(data["images"]) == 5 and all(im in want["images"] for im in data["images"])
    assert main(["synth", "assemble", str(tmp_path)]) == 2
    assert "not a `densepose synth` output" in capsys.readouterr().err


def test_preview_contact_sheet(reference, tmp_path):
    from densepose.synth.preview import contact_sheet

    sheet = contact_sheet(reference, num=2, tile=64)
    assert sheet.size[0] == 4 * 64 and sheet.size[1] > 2 * 64  # a title row above the samples
    titles = np.asarray(sheet)[: sheet.size[1] - 2 * 64]
    for col in range(4):  # every column has a title (text on white)
        assert (titles[:, col * 64:(col + 1) * 64] < 200).any()
    assert np.asarray(sheet)[-2 * 64:, 64:128].any()  # the part colours are drawn


def test_split_writes_train_and_val(tmp_path):
    settings = RunSettings(num=5, size=64, seed=2, max_people=2, split=0.5, min_dp_pixels=20, plain=True)
    generate(tmp_path, settings, photos=[], progress=False)
    ids = []
    for sub in ("train", "val"):
        data = json.loads((tmp_path / sub / "annotations.json").read_text())
        ids += [im["id"] for im in data["images"]]
        for im in data["images"]:
            assert (tmp_path / sub / "images" / im["file_name"]).exists()
    assert sorted(ids) == [1, 2, 3, 4, 5]


def test_a_worker_that_cannot_start_is_a_one_line_error_not_a_hang(tmp_path):
    """A Pool restarts a worker whose initializer raises, forever: the run must stop with the reason."""
    code = ("import sys; from densepose.synth.writer import RunSettings, generate; "
            "generate(sys.argv[1], RunSettings(num=4, size=64, seed=1), photos=[], hdris=[sys.argv[2]], "
            "workers=2, progress=False)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out"), str(tmp_path / "missing.exr")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "a synth worker could not start" in last and "missing.exr" in last, proc.stderr[-1500:]
