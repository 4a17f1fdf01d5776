"""`densepose predict` and `densepose demo` end to end (in process), with a fake and a real random model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import densepose.api
from densepose.cli.main import main
from densepose.errors import UserError
from densepose.predict.image_ids import name_id
from test_predict_common import random_image


@pytest.fixture
def av():
    return pytest.importorskip("av")  # the `video` extra; only the video tests need it


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    """A randomly initialised DensePoseRCNN saved like the bundled weights (no trained weights needed)."""
    from densepose.modeling import DensePoseRCNN, tiny_config

    torch.manual_seed(0)
    cfg = tiny_config()
    path = tmp_path_factory.mktemp("model") / "model_light.pt"
    torch.save({"config": cfg.to_dict(), "model": DensePoseRCNN(cfg).state_dict()}, path)
    return path


def _images(folder, n=2):
    folder.mkdir(exist_ok=True)
    Image.fromarray(random_image(120, 160, 1)).save(folder / "000000000785.jpg")
    if n > 1:
        Image.fromarray(random_image(90, 100, 2)).save(folder / "second.png")
    return folder


def test_predict_all_outputs_with_bad_files(tmp_path, fake_model, capsys):
    inp = _images(tmp_path / "in")
    cut = (inp / "second.png").read_bytes()
    (inp / "broken.jpg").write_bytes((inp / "000000000785.jpg").read_bytes()[:300])
    (inp / "empty.png").write_bytes(b"")
    (inp / "text.jpg").write_text("hello")
    out = tmp_path / "out"
    rc = main(["predict", str(inp), "--out", str(out), "--all", "--model", fake_model, "--min-score", "0.3", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.jpg: image data is corrupt or truncated" in err
    assert "empty.png: file is empty (0 bytes)" in err and "text.jpg: not a readable image" in err
    for stem in ("000000000785", "second"):
        for suffix in ("_IUV.png", "_INDS.png", ".npz", "_parts.jpg", "_contours.jpg", "_texture.jpg", "_u.jpg", "_v.jpg", "_boxes.jpg"):
            assert (out / f"{stem}{suffix}").is_file(), stem + suffix
    records = json.loads((out / "results.json").read_text())
    assert sorted({r["image_id"] for r in records}) == sorted([785, name_id("second.png")])  # COCO digits, else a CRC
    assert len(records) == 4 and len(cut) > 0
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temp files


def test_predict_default_outputs_and_glob(tmp_path, fake_model):
    inp = _images(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["predict", str(inp / "*.png"), "--out", str(out), "--model", fake_model, "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["second_INDS.png", "second_IUV.png", "second_parts_boxes.jpg"]


def test_output_dir_not_writable(tmp_path, fake_model, capsys):
    inp = _images(tmp_path / "in")
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    rc = main(["predict", str(inp), "--out", str(blocker), "--exist-ok", "--model", fake_model, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("error: ") == 2 and err.count("cannot write") == 2  # one clear message per input


def test_one_blocked_output_does_not_stop_the_run(tmp_path, fake_model, capsys):
    inp = _images(tmp_path / "in")
    out = tmp_path / "out"
    (out / "000000000785_IUV.png").mkdir(parents=True)  # cannot be replaced by a file
    rc = main(["predict", str(inp), "--out", str(out), "--exist-ok", "--model", fake_model, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "000000000785.jpg: cannot write" in err
    assert (out / "second_IUV.png").is_file()


def test_usage_errors(tmp_path, fake_model, capsys):
    inp = _images(tmp_path / "in", 1)
    out = str(tmp_path / "o")
    assert main(["predict", str(inp), "--out", out, "--vis", "nope", "--model", fake_model]) == 2
    assert main(["predict", str(tmp_path / "nothing*.jpg"), "--out", out, "--model", fake_model]) == 2
    err = capsys.readouterr().err
    assert "unknown visualisation 'nope'" in err and "no input files found" in err


def test_missing_model_file(tmp_path, capsys):
    inp = _images(tmp_path / "in", 1)
    assert main(["predict", str(inp), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt: model file not found" in capsys.readouterr().err


def _write_video(path, n=6, size=(48, 64)):
    from densepose.io.video import Mp4Writer

    with Mp4Writer(path, fps=10) as w:
        for i in range(n):
            w.write(random_image(*size, seed=i))


def _count_frames(path):
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_video_predict_with_smoothing(tmp_path, fake_model, av):
    clip = tmp_path / "clip.mp4"
    _write_video(clip)
    assert _count_frames(clip) == 6
    out = tmp_path / "out"
    rc = main(["predict", str(clip), "--out", str(out), "--model", fake_model, "--npz", "--iuv", "--json",
               "--smooth", "0.5", "--batch-size", "4", "--min-score", "0.3", "--frame-outputs", "--quiet"])
    assert rc == 0
    assert _count_frames(out / "clip_parts_boxes.mp4") == 6
    frames = sorted((out / "clip_frames").glob("*_IUV.png"))
    assert [p.name for p in frames] == [f"clip_f{i:06d}_IUV.png" for i in range(6)]
    with np.load(out / "clip_frames" / "clip_f000005.npz") as z:
        assert z["track_ids"].tolist() == [1, 2] and int(z["frame_index"]) == 5  # same people tracked
    records = json.loads((out / "clip_results.json").read_text())
    assert sorted({r["image_id"] for r in records}) == [1, 2, 3, 4, 5, 6]
    out2 = tmp_path / "out2"
    rc = main(["predict", str(clip), "--out", str(out2), "--model", fake_model, "--every", "2", "--max-frames", "2",
               "--video-vis", "contours", "--quiet"])
    assert rc == 0 and sorted(p.name for p in out2.iterdir()) == ["clip_contours.mp4"]
    assert _count_frames(out2 / "clip_contours.mp4") == 2


def test_video_progress_in_a_log_file_is_a_plain_line(tmp_path, fake_model, capsys, av):
    """stderr not a terminal: the frames' progress ends in a plain count line, no \r bar updates."""
    clip = tmp_path / "clip.mp4"
    _write_video(clip)
    assert main(["predict", str(clip), "--out", str(tmp_path / "out"), "--model", fake_model]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "clip: 6 / 6 frame" in err


def test_video_broken_midway_keeps_decoded_frames(tmp_path, fake_model, capsys, av):
    clip = tmp_path / "clip.mp4"
    _write_video(clip, n=20, size=(96, 128))
    data = bytearray(clip.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: len(data) * 6 // 10])
    out = tmp_path / "out"
    rc = main(["predict", str(bad), str(cut), "--out", str(out), "--model", fake_model, "--iuv", "--frame-outputs",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    for stem in ("bad", "cut"):
        assert f"{stem}.mp4:" in err
        n = len(list((out / f"{stem}_frames").glob("*_IUV.png")))
        assert 0 < n < 20
        assert f"{n} frame(s) processed and written" in err
        assert _count_frames(out / f"{stem}_parts_boxes.mp4") == n


def test_demo_end_to_end_with_random_weights(tmp_path, tiny_model_file, monkeypatch, capsys, one_thread):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "model_light.pt").write_bytes(tiny_model_file.read_bytes())
    Image.fromarray(random_image(96, 128, 3)).save(assets / "photo.jpg")
    monkeypatch.setattr(densepose.api, "ASSETS_DIR", assets)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--min-score", "0"]) == 0
    printed = capsys.readouterr().out
    target = out / "photo_demo.png"
    assert str(target) in printed and target.is_file()
    with Image.open(target) as im:
        assert im.width > 4 * 128  # input + 3 visualisations side by side


def test_demo_without_bundled_weights_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(densepose.api, "ASSETS_DIR", tmp_path)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "model_light.pt are not installed" in err


def test_api_load_real_model(tiny_model_file, tmp_path, one_thread):
    model = densepose.api.load(tiny_model_file, min_score=0.0)
    image = random_image(100, 140, 4)
    Image.fromarray(image).save(tmp_path / "p.png")
    people = model(str(tmp_path / "p.png"))
    assert people == sorted(people, key=lambda r: -r.score)
    for r in people[:3]:
        assert r.labels.shape == (max(int(r.box[3] - r.box[1]), 1), max(int(r.box[2] - r.box[0]), 1))
        assert 0 <= r.box[0] <= r.box[2] <= 140 and 0 <= r.box[1] <= r.box[3] <= 100
        assert r.iuv_image(100, 140).shape == (100, 140, 3)
    assert len(model(Image.fromarray(image))) == len(people)  # PIL input, same result
    bad = tmp_path / "bad.pt"
    torch.save({"weights": 1}, bad)
    with pytest.raises(UserError, match="'config' and 'model'"):
        densepose.api.load(bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a readable model file"):
        densepose.api.load(bad)


@pytest.mark.slow
def test_predict_with_random_light_model(tmp_path, one_thread):
    """The light preset end to end (random weights: whatever it detects must be well-formed)."""
    from densepose.evaluation.results import load_results
    from densepose.modeling import DensePoseRCNN, light_config

    torch.manual_seed(0)
    cfg = light_config()
    model_path = tmp_path / "light.pt"
    torch.save({"config": cfg.to_dict(), "model": DensePoseRCNN(cfg).state_dict()}, model_path)
    inp = _images(tmp_path / "in", 1)
    out = tmp_path / "out"
    rc = main(["predict", str(inp), "--out", str(out), "--model", str(model_path), "--json", "--iuv", "--npz",
               "--min-score", "0.5", "--quiet"])
    assert rc == 0
    dets = load_results(out / "results.json")  # the evaluator's reader accepts it
    with np.load(out / "000000000785.npz") as z:
        assert len(z["scores"]) == len(dets.score) and (z["scores"] >= 0.5).all()


def test_image_ids_from_coco_json(tmp_path, fake_model):
    inp = _images(tmp_path / "in")
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps({"images": [{"id": 42, "file_name": "val/second.png"}], "annotations": []}))
    out = tmp_path / "out"
    rc = main(["predict", str(inp), "--out", str(out), "--model", fake_model, "--json", "--coco-json", str(ann),
               "--min-score", "0.3", "--quiet"])
    assert rc == 0
    ids = {r["file_name"]: r["image_id"] for r in json.loads((out / "results.json").read_text())}
    assert ids == {"000000000785.jpg": 785, "second.png": 42}
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]  # --json alone writes only the JSON


def test_bf16_precision_close_to_fp32(tiny_model_file, one_thread):
    image = random_image(100, 140, 5)
    fp32 = densepose.api.load(tiny_model_file, min_score=0.0)
    bf16 = densepose.api.load(tiny_model_file, min_score=0.0, precision="bf16")
    with torch.inference_mode():
        batch = fp32.model.preprocess([fp32.to_tensor(image)], None)[0]
        f32 = fp32.model.backbone(batch)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            f16 = bf16.model.backbone(batch)[0].float()
    assert (f16 - f32).norm() / f32.norm() < 0.05
    people = bf16(image)
    assert all(p.labels.shape == p.u.shape and p.u.dtype == np.float32 for p in people)
    with pytest.raises(UserError, match="precision must be one of"):
        densepose.api.load(tiny_model_file, precision="fp8")


def test_cli_precision_choices_match_the_api():
    from densepose.cli import predict as cli_predict

    assert cli_predict.PRECISIONS == densepose.api.PRECISIONS


def test_rerun_never_overwrites_unless_exist_ok(tmp_path, fake_model, capsys):
    inp = _images(tmp_path / "in", 1)
    out = tmp_path / "densepose_out"
    for _ in range(3):
        assert main(["predict", str(inp), "--out", str(out), "--model", fake_model]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("densepose_out")) == [
        "densepose_out", "densepose_out2", "densepose_out3"]
    printed = capsys.readouterr().out
    assert f"written to {tmp_path / 'densepose_out3'}" in printed
    marker = out / "000000000785_IUV.png"
    before = marker.stat().st_mtime_ns
    assert main(["predict", str(inp), "--out", str(out), "--exist-ok", "--model", fake_model, "--quiet"]) == 0
    assert marker.stat().st_mtime_ns >= before and not (tmp_path / "densepose_out4").exists()


def test_console_lines_per_input_and_summary(tmp_path, fake_model, capsys):
    inp = _images(tmp_path / "in")
    (inp / "text.jpg").write_text("hello")
    rc = main(["predict", str(inp), "--out", str(tmp_path / "o"), "--model", fake_model, "--min-score", "0.3",
               "--threads", "1"])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert rc == 1 and "1 thread(s)" in lines[0] and "people from score 0.3;" in lines[0]
    assert any(line.startswith("image 1/3 ") and "000000000785.jpg: 160x120, 2 people, " in line and line.endswith(" ms")
               for line in lines)
    assert any("second.png: 100x90, 2 people" in line for line in lines)
    assert "2 input(s) done, 1 failed; 2 image(s)/frame(s), 4 people found" in captured.out
    assert "ms inference" in captured.out and "ms write" in captured.out
    assert "text.jpg: not a readable image" in captured.err
    assert main(["predict", str(inp), "--out", str(tmp_path / "o2"), "--model", fake_model, "--threads", "0"]) == 2


def test_layered_and_separate_pictures(tmp_path, fake_model):
    inp = _images(tmp_path / "in", 1)
    out = tmp_path / "o"
    assert main(["predict", str(inp), "--out", str(out), "--model", fake_model, "--vis", "parts,contours,boxes",
                 "--vis", "texture", "--no-legend", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000000785_parts_contours_boxes.jpg", "000000000785_texture.jpg"]
    with Image.open(out / "000000000785_texture.jpg") as im:
        assert im.size == (160, 120)  # no legend panel


def test_cli_constants_match_the_library():
    from densepose.cli import predict as cli_predict
    from densepose.predict.readers import IUV_LAYOUTS
    from densepose.vis.render import VIS_KINDS

    assert cli_predict.VIS_KINDS == VIS_KINDS and cli_predict.IUV_LAYOUTS == IUV_LAYOUTS


def test_video_support_is_in_the_default_install():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert any(dep.replace(" ", "").startswith("av>=") for dep in project["dependencies"])


def test_predict_at_several_sizes_and_a_bad_size(tmp_path, tiny_model_file, capsys, one_thread):
    inp = _images(tmp_path / "in", n=1)
    out = tmp_path / "out"
    args = ["predict", str(inp), "--out", str(out), "--model", str(tiny_model_file), "--min-score", "0", "--quiet"]
    assert main(args + ["--size", "96", "64", "--json"]) == 0
    assert (out / "results.json").is_file()
    assert main(args + ["--size", "0"]) == 2
    assert "test sizes must be positive integers" in capsys.readouterr().err


def test_predict_with_the_flip_test(tmp_path, tiny_model_file, capsys, one_thread):
    inp = _images(tmp_path / "in", n=1)
    out = tmp_path / "out"
    assert main(["predict", str(inp), "--out", str(out), "--model", str(tiny_model_file), "--min-score", "0",
                 "--flip", "--json"]) == 0
    assert "flip test;" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())
    photo = inp / "000000000785.jpg"
    assert main(["demo", "--out", str(tmp_path / "demo"), "--model", str(tiny_model_file), "--image", str(photo),
                 "--min-score", "0", "--flip"]) == 0
    assert (tmp_path / "demo" / "000000000785_demo.png").is_file()


def test_the_flip_test_on_a_model_without_it_is_a_one_line_error(tmp_path, fake_model, capsys):
    # The fake model takes the per-call settings but has no flip test.
    assert main(["predict", str(_images(tmp_path / "in", n=1)), "--out", str(tmp_path / "out"), "--model", fake_model,
                 "--flip"]) == 2
    err = capsys.readouterr().err
    assert "has no flip test" in err and "Traceback" not in err
