"""Bad input to ``densepose evaluate``: each case is a one-line error naming the file and record
(exit code 2, no traceback, no silently wrong metric), or printed metrics with the reason."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

import densepose.cli.evaluate as cli_evaluate
import densepose.cli.main as cli_main
from densepose.evaluation.results import write_results_npz
from densepose.evaluation.synthetic import detections_to_records, make_synthetic_set

from test_evaluation_gps import _planar_surface


@pytest.fixture(scope="module")
def surface():
    return _planar_surface()


@pytest.fixture()
def case(surface, tmp_path, monkeypatch):
    """A small valid ground truth and its results; tests break one thing."""
    monkeypatch.setattr(cli_main, "COMMANDS", ("evaluate",))
    monkeypatch.setattr(cli_evaluate, "_surface", lambda name, smpl_model: surface)
    gt, dets = make_synthetic_set(surface, num_images=2, num_points=20, uv_noise=0.03, false_positives=1,
                                  unannotated_per_image=1, seed=5)
    return tmp_path, gt, detections_to_records(dets), dets


def _evaluate(tmp, gt, results, capsys, *extra):
    gt_path = tmp / "gt.json"
    gt_path.write_text(gt if isinstance(gt, str) else json.dumps(gt))
    if isinstance(results, (str, list)):
        res_path = tmp / "res.json"
        res_path.write_text(results if isinstance(results, str) else json.dumps(results))
    else:
        res_path = results
    rc = cli_main.main(["evaluate", "--gt", str(gt_path), "--results", str(res_path), "--no-coco", *extra])
    out = capsys.readouterr()
    lines = [part.strip() for line in out.err.splitlines() for part in line.split("\r") if part.strip()]
    return rc, out.out, lines[-1] if lines else ""  # the last line, after any progress bar


def _fails(result, *expect):
    rc, _, err = result
    assert rc == 2, err
    assert err.startswith("error: "), err
    for text in expect:
        assert text in err, err


def _first_dp(gt):
    return next(a for a in gt["annotations"] if "dp_x" in a)


# ----------------------------------------------------------------------------- ground truth
def test_negative_area_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    a = _first_dp(gt)
    a["area"] = -5.0
    _fails(_evaluate(tmp, gt, records, capsys), "gt.json", f"annotation id {a['id']}", "area", "-5")


def test_string_area_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    _first_dp(gt)["area"] = "big"
    _fails(_evaluate(tmp, gt, records, capsys), "gt.json", "area must be a finite number")


def test_category_not_in_categories_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    a = _first_dp(gt)
    a["category_id"] = 7
    _fails(_evaluate(tmp, gt, records, capsys), "gt.json", f"annotation id {a['id']}", "category_id 7",
           "not in 'categories'")


def test_string_category_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    _first_dp(gt)["category_id"] = "1"
    _fails(_evaluate(tmp, gt, records, capsys), "gt.json", "category_id must be an integer")


def test_string_iscrowd_blames_the_ground_truth(case, capsys):
    tmp, gt, records, _ = case
    _first_dp(gt)["iscrowd"] = "0"
    rc, out, err = _evaluate(tmp, gt, records, capsys)
    _fails((rc, out, err), "gt.json", "iscrowd")
    assert "res.json" not in err


def test_huge_image_id_in_ground_truth_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    old = gt["images"][0]["id"]
    gt["images"][0]["id"] = 2 ** 70
    for a in gt["annotations"]:
        if a["image_id"] == old:
            a["image_id"] = 2 ** 70
    _fails(_evaluate(tmp, gt, [r for r in records if r["image_id"] != old], capsys), "gt.json", "64 bits")


def test_deeply_nested_ground_truth_is_an_error(case, capsys):
    tmp, _, records, _ = case
    _fails(_evaluate(tmp, "[" * 100000 + "]" * 100000, records, capsys), "gt.json", "nested too deeply")


def test_corrupt_dp_masks_rle_is_an_error_not_a_hang(case, capsys):
    """pycocotools' merge loops for minutes on RLE runs that do not cover the mask; run in a
    subprocess with a time limit so that a regression fails instead of hanging the suite."""
    tmp, gt, records, _ = case
    a = _first_dp(gt)
    part = next(j for j, m in enumerate(a["dp_masks"]) if m)
    a["dp_masks"][part] = {"size": [256, 256], "counts": a["dp_masks"][part]["counts"][:5]}
    (tmp / "gt.json").write_text(json.dumps(gt))
    (tmp / "res.json").write_text(json.dumps(records))
    script = ("import sys, densepose.cli.main as m, densepose.cli.evaluate as e; sys.path.insert(0, 'tests');"
              "from test_evaluation_gps import _planar_surface; s = _planar_surface();"
              "e._surface = lambda n, p: s; m.COMMANDS = ('evaluate',); sys.exit(m.main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", script, "evaluate", "--gt", str(tmp / "gt.json"), "--results",
                           str(tmp / "res.json"), "--no-coco"], capture_output=True, text=True, timeout=120,
                          cwd=str(cli_main.__file__).rsplit("/densepose/", 1)[0])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"annotation id {a['id']}" in proc.stderr and f"dp_masks[{part}] is not a valid RLE" in proc.stderr


def test_malformed_ignore_regions_are_an_error(case, capsys):
    tmp, gt, records, _ = case
    gt["images"][0]["ignore_regions_x"] = [[1, 2, 3]]
    gt["images"][0]["ignore_regions_y"] = [[1, 2]]
    _fails(_evaluate(tmp, gt, records, capsys), "gt.json", f"image {gt['images'][0]['id']}", "ignore region 0")


# ----------------------------------------------------------------------------- results
def test_grayscale_uv_data_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    h, w = records[0]["uv_shape"][1:]
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w), 3, np.uint8), mode="L").save(buf, format="PNG")
    import base64

    records[0]["uv_data"] = base64.b64encode(buf.getvalue()).decode()
    _fails(_evaluate(tmp, gt, records, capsys), "res.json", "result #0", "L PNG", "RGB")


def test_huge_image_id_in_results_is_an_error(case, capsys):
    tmp, gt, records, _ = case
    records[0]["image_id"] = 2 ** 70
    _fails(_evaluate(tmp, gt, records, capsys), "res.json", "result #0", "64 bits")


def test_deeply_nested_results_are_an_error(case, capsys):
    tmp, gt, _, _ = case
    _fails(_evaluate(tmp, gt, "[" * 100000 + "]" * 100000, capsys), "res.json", "nested too deeply")


def _npz(tmp, dets, **replace):
    path = tmp / "res.npz"
    write_results_npz(path, [d.image_id for d in dets], [d.bbox for d in dets], [d.score for d in dets],
                      [d.iuv for d in dets])
    if replace:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays.update(replace)
        np.savez(path, **arrays)
    return path


def test_float_image_ids_in_npz_are_an_error(case, capsys):
    tmp, gt, _, dets = case
    path = _npz(tmp, dets, image_id=np.array([d.image_id + 0.7 for d in dets]))
    _fails(_evaluate(tmp, gt, path, capsys), "res.npz", "'image_id'", "float64")


def test_two_dimensional_image_id_in_npz_is_an_error(case, capsys):
    tmp, gt, _, dets = case
    path = _npz(tmp, dets, image_id=np.array([[d.image_id] for d in dets]))
    _fails(_evaluate(tmp, gt, path, capsys), "res.npz", "'image_id'", "shape")


def test_object_array_in_npz_is_an_error(case, capsys):
    tmp, gt, _, dets = case
    path = _npz(tmp, dets)
    with zipfile.ZipFile(path, "a") as zf:  # an object array needs pickle: written by hand
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}] * len(dets), dtype=object), allow_pickle=True)
        zf.writestr("score2.npy", buf.getvalue())
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "score2"}
    arrays["score"] = np.array([{"a": 1}] * len(dets), dtype=object)
    np.savez(path, **arrays)
    _fails(_evaluate(tmp, gt, path, capsys), "res.npz", "'score'", "Python objects")


def test_empty_results_print_zeros_and_say_why(case, capsys):
    tmp, gt, _, _ = case
    rc, out, _ = _evaluate(tmp, gt, [], capsys)
    assert rc == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in (["GPS"], ["GPSm"], ["IOU"])}
    assert set(rows) == {"GPS", "GPSm", "IOU"}
    assert all(float(v) == 0.0 for v in rows["GPS"][:3] + rows["IOU"][:3])
    assert "no detection" in out


def test_empty_results_give_zero_coco_box_ap(case, surface):
    from densepose.evaluation import evaluate

    _, gt, _, _ = case
    m = evaluate(gt, [], surface)
    assert m["coco"]["bbox"]["AP"] == 0.0 and m["densepose"]["gps"]["AP"] == 0.0
