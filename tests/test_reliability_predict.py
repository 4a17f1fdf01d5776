"""`densepose predict` gives the same answer however it is asked (rerunnable reliability cases).

Each case reproduces a way the command used to give a wrong answer without a word: batching
images of different sizes, colliding or mismatched image ids, outputs of huge files in the
downscaled frame, the IUV PNG channel order, an untested precision switch, a predictor that
rewrote the model's config.
"""
from __future__ import annotations

import json
import stat
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

import densepose.api
from densepose.cli.main import main
from densepose.predict import Predictor, read_iuv_png
from densepose.predict.image_ids import assign_image_ids, name_id
from test_predict_common import BOXES, random_image


@pytest.fixture(scope="module")
def tiny_model():
    """A random GroupNorm DensePoseRCNN (GroupNorm statistics are what padding used to disturb)."""
    from densepose.modeling import DensePoseRCNN, tiny_config

    torch.manual_seed(0)
    return DensePoseRCNN(tiny_config()).eval()


def _same_people(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.box, q.box, atol=1e-3)
        assert p.score == pytest.approx(q.score, abs=1e-5)
        assert p.labels.shape == q.labels.shape
        assert (p.labels == q.labels).mean() > 0.999  # float noise may flip a rare tie


# ------------------------------------------------------------------------------------- batching
def test_batch_of_different_sizes_equals_one_at_a_time(tiny_model, one_thread):
    """Two images whose padded sizes differ: the batch must not change either answer."""
    images = [random_image(100, 150, 1), random_image(170, 120, 2)]
    predictor = Predictor(tiny_model, min_score=0.0)
    alone = [predictor(im) for im in images]
    together = predictor.predict_batch(images)
    assert sum(len(p) for p in alone) > 0
    for a, b in zip(alone, together):
        _same_people(a, b)


def test_batch_with_small_people_read_larger_equals_one_at_a_time(tiny_model, one_thread):
    """`--zoom`: two images padded alike at the test size (128 x 192) but not at the zoom size (256 x
    352 and 256 x 384) must not share a zoomed batch: its GroupNorm statistics would see the padding."""
    images = [random_image(128, 166, 3), random_image(128, 180, 4)]
    predictor = Predictor(tiny_model, min_score=0.0, zoom=256)
    alone = [predictor(im) for im in images]
    together = predictor.predict_batch(images)
    assert sum(len(p) for p in alone) > 0
    for a, b in zip(alone, together):
        _same_people(a, b)


def test_batch_of_shared_photos_equals_one_at_a_time(shared_dir, one_thread):
    photos = [shared_dir / "data" / "photos" / name for name in ("basketball1.png", "coco_000000000785.jpg")]
    predictor = densepose.api.load()
    alone = [predictor(p) for p in photos]
    together = predictor.predict_batch(photos)
    assert all(len(a) for a in alone)
    for a, b in zip(alone, together):
        _same_people(a, b)


# ------------------------------------------------------------------------------------- image ids
def test_image_ids_are_unique_and_stable(tmp_path):
    names = ["astronaut.png", "basketball1.png", "000000000785.jpg", "785.png", "camera.png"]
    paths = [tmp_path / n for n in names]
    ids, _ = assign_image_ids(paths)
    assert len(set(ids.values())) == len(names)  # astronaut and basketball1 both got 1 before
    assert ids[tmp_path / "000000000785.jpg"] == 785  # COCO names keep their number
    assert name_id("COCO_val2014_000000000397.jpg") == 397 and name_id("frame_12.png") != 12
    again, _ = assign_image_ids(list(reversed(paths)) + [tmp_path / "new.png"])
    assert all(again[p] == ids[p] for p in paths)  # the same in every run, whatever else is there
    assert ids[tmp_path / "camera.png"] == name_id("camera.png")


def test_synth_folder_ids_match_its_annotations(tmp_path, fake_model):
    """A `densepose synth` folder: images/00000000.jpg has id 1 in annotations.json, not 0."""
    root = tmp_path / "synth"
    (root / "images").mkdir(parents=True)
    for k in range(2):
        Image.fromarray(random_image(60, 80, k)).save(root / "images" / f"{k:08d}.jpg")
    images = [{"id": k + 1, "file_name": f"{k:08d}.jpg", "height": 60, "width": 80} for k in range(2)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    out = tmp_path / "out"
    assert main(["predict", str(root / "images"), "--out", str(out), "--json", "--model", fake_model,
                 "--min-score", "0.3", "--quiet"]) == 0
    ids = {r["file_name"]: r["image_id"] for r in json.loads((out / "results.json").read_text())}
    assert ids == {"00000000.jpg": 1, "00000001.jpg": 2}


# ------------------------------------------------------------------------------------- huge files
def test_outputs_of_a_huge_file_are_in_its_pixels(tmp_path, fake_model):
    """A 5000 x 300 PNG is decoded at 4096 px wide; boxes, JSON and PNGs must use the file's 5000 px."""
    W, H = 5000, 300
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)).save(tmp_path / "wide.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "wide.png"), "--out", str(out), "--json", "--iuv", "--inds", "--npz",
                 "--vis", "parts", "--model", fake_model, "--min-score", "0.3", "--quiet"]) == 0
    records = json.loads((out / "results.json").read_text())
    expected = BOXES[:2] * np.array([W, H, W, H])
    got = np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in records)])
    np.testing.assert_allclose(got, expected, atol=2.0)
    for name in ("wide_IUV.png", "wide_INDS.png"):
        with Image.open(out / name) as im:
            assert im.size == (W, H)
    with np.load(out / "wide.npz") as z:
        assert z["image_size"].tolist() == [H, W]
        np.testing.assert_allclose(z["boxes"], expected, atol=2.0)
    with Image.open(out / "wide_parts.jpg") as im:
        assert im.size[1] == 4096 * H // W or abs(im.size[1] - 4096 * H / W) <= 1  # picture drawn on the decode


# ------------------------------------------------------------------------------------- IUV layout
def test_iuv_png_default_is_the_detectron_file(tmp_path, fake_model):
    """Detectron saved [I, U*255, V*255] with OpenCV: an RGB reader sees V, U, I."""
    Image.fromarray(random_image(90, 120, 3)).save(tmp_path / "p.png")
    for layout, out in ((None, tmp_path / "d"), ("rgb", tmp_path / "r")):
        args = ["predict", str(tmp_path / "p.png"), "--out", str(out), "--iuv", "--npz", "--model", fake_model,
                "--min-score", "0.3", "--quiet"] + (["--iuv-layout", layout] if layout else [])
        assert main(args) == 0
    from densepose.predict import compose, read_npz

    people, meta = read_npz(tmp_path / "d" / "p.npz")
    labels, u, v, _ = compose(people, *meta["image_size"].tolist())
    with Image.open(tmp_path / "d" / "p_IUV.png") as im:
        detectron = np.asarray(im.convert("RGB"))
    with Image.open(tmp_path / "r" / "p_IUV.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    assert (detectron[..., 2] == labels).all() and (detectron[..., 0] == np.round(v * 255)).all()
    assert (rgb[..., 0] == labels).all() and (rgb[..., 2] == np.round(v * 255)).all()
    for path in (tmp_path / "d" / "p_IUV.png", tmp_path / "r" / "p_IUV.png"):
        L, U, V = read_iuv_png(path)  # layout detected
        assert (L == labels).all() and np.abs(V - v).max() <= 0.5 / 255 + 1e-6
    L, _, _ = read_iuv_png(tmp_path / "r" / "p_IUV.png", "detectron")  # told the wrong layout: V read as I
    assert (L == rgb[..., 2]).all()


# ------------------------------------------------------------------------------------- precision
def test_precision_switch_through_the_public_api(tiny_model, one_thread):
    """bf16 must really run in bf16 (differs slightly from fp32); auto is one of the two, by the CPU."""
    from densepose.predict.cpu import cpu_has_fast_bf16

    image = random_image(110, 140, 7)
    runs = {}
    for precision in ("fp32", "bf16", "auto"):
        predictor = Predictor(tiny_model, min_score=0.0, precision=precision)
        runs[precision] = predictor.forward([predictor.to_tensor(image)])[0]
        assert predictor.precision == (precision if precision != "auto" else ("bf16" if cpu_has_fast_bf16() else "fp32"))
    f32, b16 = runs["fp32"], runs["bf16"]
    assert len(f32["scores"]) > 0 and all(v.dtype == torch.float32 for v in b16.values())
    diff = (f32["fine_segm"][:1] - b16["fine_segm"][:1]).abs().max() if len(b16["scores"]) else torch.tensor(1.0)
    assert diff > 0, "bf16 gave exactly the fp32 result: autocast is not applied"
    assert (b16["scores"][:1] - f32["scores"][:1]).abs().max() < 0.05  # close
    expected = runs["bf16" if cpu_has_fast_bf16() else "fp32"]
    assert torch.equal(runs["auto"]["scores"], expected["scores"])


# ------------------------------------------------------------------------------------- config
def test_predictor_never_changes_the_model_config(tiny_model, one_thread):
    before = asdict(tiny_model.cfg)
    predictor = Predictor(tiny_model, min_score=0.7, min_size=96, max_size=200)
    predictor(random_image(100, 120, 9))
    assert asdict(tiny_model.cfg) == before
    # Its settings act per call: another predictor on the same model sees the model's own defaults.
    sizes = []
    hook = tiny_model.backbone.register_forward_hook(lambda m, inp, out: sizes.append(tuple(inp[0].shape[-2:])))
    try:
        Predictor(tiny_model, min_score=0.0)(random_image(100, 120, 9))
        predictor(random_image(100, 120, 9))
    finally:
        hook.remove()
    assert sizes == [(128, 160), (96, 128)]  # 128 = tiny_config's min_size_test, then this predictor's 96


# ------------------------------------------------------------------------------------- files
def test_written_files_are_world_readable(tmp_path, fake_model):
    """Every writer goes through one atomic helper that gives files 0666 minus the umask (results
    NPZ and MP4 used to keep mkstemp's 0600)."""
    from densepose.cache import _UMASK
    from densepose.evaluation.results import write_results_npz

    expected = 0o666 & ~_UMASK
    write_results_npz(tmp_path / "r.npz", [1], [[0, 0, 2, 2]], [0.9], [np.zeros((3, 2, 2), np.uint8)])
    assert stat.S_IMODE((tmp_path / "r.npz").stat().st_mode) == expected
    Image.fromarray(random_image(60, 80, 4)).save(tmp_path / "p.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "p.png"), "--out", str(out), "--all", "--model", fake_model, "--quiet"]) == 0
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name
    assert not list(tmp_path.rglob(".*.tmp"))


def test_annotated_video_is_world_readable(tmp_path):
    pytest.importorskip("av")
    from densepose.cache import _UMASK
    from densepose.io.video import Mp4Writer

    with Mp4Writer(tmp_path / "v.mp4", fps=5) as w:
        for k in range(2):
            w.write(random_image(32, 48, k))
    assert stat.S_IMODE((tmp_path / "v.mp4").stat().st_mode) == 0o666 & ~_UMASK
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
