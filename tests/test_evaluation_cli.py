"""``densepose evaluate`` end to end, and bad input: a one-line error naming the record, exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import densepose.cli.evaluate as cli_evaluate
import densepose.cli.main as cli_main
from densepose.data.uv_encoding import encode_uv_data
from densepose.evaluation.synthetic import detections_to_records, make_synthetic_set

from test_evaluation_gps import _planar_surface


@pytest.fixture(scope="module")
def surface():
    return _planar_surface()


# Only our subcommand: the others may not exist yet in a partial checkout.
_RUN_MAIN = "import sys, densepose.cli.main as m; m.COMMANDS = ('evaluate',); sys.exit(m.main(sys.argv[1:]))"


def main(argv):
    return cli_main.main(argv)


@pytest.fixture()
def files(surface, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_main, "COMMANDS", ("evaluate",))
    monkeypatch.setattr(cli_evaluate, "_surface", lambda name, smpl_model: surface)
    gt, dets = make_synthetic_set(surface, num_images=3, num_points=40, uv_noise=0.03, false_positives=1,
                                  unannotated_per_image=1, seed=11)
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    records = detections_to_records(dets)
    res_path.write_text(json.dumps(records))
    return tmp_path, gt_path, res_path, records


def test_cli_end_to_end(files, capsys):
    tmp, gt, res, _ = files
    out, curve = tmp / "metrics.json", tmp / "curve.png"
    rc = main(["evaluate", "--gt", str(gt), "--results", str(res), "--out", str(out), "--curve", str(curve)])
    text = capsys.readouterr().out
    assert rc == 0
    for label in ("GPS ", "GPSm", "IOU", "AUC10", "COCO bbox"):
        assert label in text
    m = json.loads(out.read_text())
    assert set(m["densepose"]) == {"gps", "gpsm", "iou"}
    assert set(m["densepose"]["gps"]) == {"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}
    assert 0.0 < m["densepose"]["gps"]["AP"] <= 1.0
    assert m["densepose"]["iou"]["AP50"] == pytest.approx(1.0)
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _run(gt, res, capsys):
    rc = main(["evaluate", "--gt", str(gt), "--results", str(res), "--no-coco"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("case, expect", [
    ("not json", "not valid JSON"),
    ("not a list", "must be a JSON list"),
    ("missing score", "result #0 (image_id 1): missing 'score'"),
    ("nan bbox", "result #0"),
    ("unknown image", "rerun it with --json --coco-json <this ground-truth file>"),
    ("bad uv_data", "does not decode"),
    ("wrong uv_shape", "does not match the box"),
    ("decoded shape", "decodes to shape"),
    ("I out of range", "part index I = 30"),
    ("partial uv", "missing 'uv_data'"),
])
def test_bad_results(files, capsys, case, expect):
    tmp, gt, res, records = files
    records = [dict(r) for r in records]
    r0 = records[0]
    text = None
    if case == "not json":
        text = "[{"
    elif case == "not a list":
        text = json.dumps({"image_id": 1})
    elif case == "missing score":
        del r0["score"]
    elif case == "nan bbox":
        r0["bbox"] = [float("nan"), 1.0, 2.0, 3.0]
    elif case == "unknown image":
        r0["image_id"] = 999
    elif case == "bad uv_data":
        r0["uv_data"] = "bm90IGEgcG5n"
    elif case == "wrong uv_shape":
        r0["uv_shape"] = [3, 5, 5]
    elif case == "decoded shape":
        r0["uv_shape"], r0["uv_data"] = [3, int(r0["bbox"][3]), int(r0["bbox"][2])], encode_uv_data(np.zeros((3, 4, 4), np.uint8))[1]
    elif case == "I out of range":
        h, w = int(r0["bbox"][3]), int(r0["bbox"][2])
        iuv = np.zeros((3, h, w), np.uint8)
        iuv[0, 2, 2] = 30
        r0["uv_shape"], r0["uv_data"] = encode_uv_data(iuv)
    elif case == "partial uv":
        del r0["uv_data"]
    bad = tmp / "bad.json"
    bad.write_text(text if text is not None else json.dumps(records))
    rc, err = _run(gt, bad, capsys)
    assert rc == 2
    last = err.rstrip("\n").split("\n")[-1].split("\r")[-1]  # after any progress bar
    assert last.startswith("error: ") and expect in last
    assert "Traceback" not in err


def test_bad_gt(files, capsys):
    tmp, gt, res, _ = files
    data = json.loads(gt.read_text())
    data["annotations"][0]["dp_I"][0] = 31
    bad = tmp / "badgt.json"
    bad.write_text(json.dumps(data))
    rc, err = _run(bad, res, capsys)
    assert rc == 2 and "dp_I" in err and "annotation #0" in err
    rc, err = _run(tmp / "missing.json", res, capsys)
    assert rc == 2 and "not found" in err


def test_bad_npz(files, capsys):
    tmp, gt, _, _ = files
    bad = tmp / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    rc, err = _run(gt, bad, capsys)
    assert rc == 2 and "not a readable NPZ" in err
    np.savez(tmp / "partial.npz", image_id=np.array([1]), score=np.array([0.5]))
    rc, err = _run(gt, tmp / "partial.npz", capsys)
    assert rc == 2 and "lack array(s) bbox" in err


def test_exit_code_of_the_console_script(tmp_path):
    (tmp_path / "gt.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-c", _RUN_MAIN, "evaluate", "--gt", str(tmp_path / "gt.json"),
                           "--results", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_cli_kappa_smpl_and_min_iou(files, capsys):
    tmp, gt, res, _ = files
    out = tmp / "metrics.json"
    rc = main(["evaluate", "--gt", str(gt), "--results", str(res), "--no-coco", "--kappa", "smpl", "--min-iou", "0.3",
               "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    header = next(line for line in text.splitlines() if line.startswith("mode"))
    assert header.split()[1:5] == ["AP", "AP30", "AP40", "AP50"] and "AP20" not in header
    assert "kappa smpl" in text and "thresholds 0.30:0.05:0.95" in text
    m = json.loads(out.read_text())
    assert m["settings"]["kappa"] == "smpl" and m["settings"]["min_iou"] == 0.3
    rc = main(["evaluate", "--gt", str(gt), "--results", str(res), "--no-coco", "--min-iou", "0.7"])
    assert rc == 2 and "--min-iou must be in [0.05, 0.5]" in capsys.readouterr().err
