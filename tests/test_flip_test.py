"""The flip test (`densepose.modeling.flip_test`): the DensePose head on the mirrored image too, averaged."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.flip_test import flip_tables, mirror_boxes, mirror_images, unmirror_outputs
from densepose.modeling.roi_heads import Detected
from densepose.predict.predictor import Predictor
from densepose.surface.parts import CHART_FLIP


def _quantising_tables(size: int = 256) -> torch.Tensor:
    """Tables that take every chart's (U, V) to the same cell of its mirror chart: applied twice
    they give the cell's (U, V) back, so the flip test must answer alike for an image and its mirror."""
    cell = (torch.arange(size, dtype=torch.float32) + 0.5).div(size - 1).clamp(max=1)
    u = cell[None, :].expand(size, size)
    v = cell[:, None].expand(size, size)
    return torch.stack([u, v], dim=-1)[None].expand(24, size, size, 2).clone()


def test_mirror_images_mirrors_each_image_inside_its_own_size():
    images = torch.zeros(2, 3, 4, 6)
    images[0, :, :4, :6] = torch.arange(24.0).reshape(4, 6)
    images[1, :, :3, :5] = torch.arange(15.0).reshape(3, 5) + 100  # padded to 4 x 6
    out = mirror_images(images, [(4, 6), (3, 5)])
    torch.testing.assert_close(out[0], images[0].flip(-1))
    torch.testing.assert_close(out[1, :, :3, :5], images[1, :, :3, :5].flip(-1))
    assert (out[1, :, 3] == 0).all() and (out[1, :, :, 5] == 0).all()  # the padding stays where it was
    torch.testing.assert_close(mirror_images(out, [(4, 6), (3, 5)]), images)


def test_a_mirrored_box_holds_the_mirrored_pixels():
    image = torch.rand(1, 20, 30, generator=torch.Generator().manual_seed(0))
    box = torch.tensor([[3.0, 4.0, 11.0, 15.0]])
    (x0, y0, x1, y1), = mirror_boxes(box, 30).long().tolist()
    torch.testing.assert_close(image.flip(-1)[:, y0:y1, x0:x1], image[:, 4:15, 3:11].flip(-1))
    torch.testing.assert_close(mirror_boxes(mirror_boxes(box, 30), 30), box)


def test_unmirror_reverses_columns_takes_each_chart_from_its_mirror_chart_and_carries_uv():
    g = torch.Generator().manual_seed(1)
    k, s, t = 2, 5, 8
    out = {"coarse_segm": torch.randn(k, 2, s, s, generator=g), "fine_segm": torch.randn(k, 25, s, s, generator=g),
           "u": torch.rand(k, 25, s, s, generator=g), "v": torch.rand(k, 25, s, s, generator=g)}
    tables = torch.rand(24, t, t, 2, generator=g)
    back = unmirror_outputs(out, tables)
    torch.testing.assert_close(back["coarse_segm"], out["coarse_segm"].flip(-1))
    for n in range(k):
        for c in range(25):
            p = int(CHART_FLIP[c])
            torch.testing.assert_close(back["fine_segm"][n, c], out["fine_segm"][n, p].flip(-1))
            for y in range(s):
                for x in range(s):
                    u, v = float(out["u"][n, p, y, s - 1 - x]), float(out["v"][n, p, y, s - 1 - x])
                    want = (u, v) if c == 0 else tuple(tables[p - 1, int(v * (t - 1)), int(u * (t - 1))].tolist())
                    got = (float(back["u"][n, c, y, x]), float(back["v"][n, c, y, x]))
                    assert got == pytest.approx(want), (n, c, y, x)


def _model(**overrides) -> DensePoseRCNN:
    torch.manual_seed(0)
    return DensePoseRCNN(tiny_config(score_thresh_test=0.0, **overrides)).eval()


@pytest.mark.parametrize("flip", [True, False])
def test_the_flip_test_answers_alike_for_an_image_and_its_mirror(flip):
    """With the flip test, the maps of a box equal the unmirrored maps of the mirrored box in the
    mirrored image (both average the same two passes); without it a model is not mirror-symmetric."""
    # The cascade reads mask and keypoint features of the mirrored detection boxes, the DensePose
    # head the mirrored grown boxes.
    model = _model(mask_on=True, keypoint_on=True, cascade=True, dp_margin_x=0.1, dp_margin_y=0.05)
    with torch.no_grad():  # U, V inside [0, 1], as a trained head gives them (the tables read them clamped)
        for layer in (model.dp_predictor2.u_lowres, model.dp_predictor2.v_lowres):
            layer.weight.mul_(1e-3)
            layer.bias.fill_(0.5)
    image = torch.rand(3, 128, 160, generator=torch.Generator().manual_seed(2)) * 255
    tables = _quantising_tables() if flip else None
    boxes = torch.tensor([[10.0, 20.0, 60.0, 90.0], [50.0, 5.0, 120.0, 80.0]])
    scores = torch.tensor([0.9, 0.8])
    answers = []
    with torch.no_grad():
        for pixels, b in ((image, boxes), (image.flip(-1), mirror_boxes(boxes, 160))):
            batch = model.transform([pixels], None)
            assert batch.sizes == [(128, 160)]  # 128 px is the tiny model's test size: no resize
            answers.append(model._heads(model.backbone(batch.tensor), [Detected(b, scores, b)], batch.tensor, batch.sizes,
                                        None, tables)[0])
    direct, mirrored = answers
    back = unmirror_outputs(mirrored, _quantising_tables())
    same_segm = all(torch.allclose(back[key], direct[key], atol=1e-4) for key in ("coarse_segm", "fine_segm"))
    assert same_segm == flip
    if flip:  # each (U, V) went through the tables once more: one cell of them at most
        for key in ("u", "v"):
            assert (back[key][:, 1:] - direct[key][:, 1:]).abs().max() <= 1 / 255 + 1e-5


def test_predictor_flip_changes_the_maps_and_keeps_the_people():
    image = (np.random.default_rng(3).random((96, 128, 3)) * 255).astype(np.uint8)
    model = _model()
    model.chart = "anny"
    plain = Predictor(model, min_score=0.0, precision="fp32").forward([torch.from_numpy(image).permute(2, 0, 1).float()])[0]
    predictor = Predictor(model, min_score=0.0, precision="fp32", flip=True)
    assert predictor.flip_uv.shape == (24, 256, 256, 2)
    flipped = predictor.forward([predictor.to_tensor(image)])[0]
    assert len(plain["boxes"]) > 0
    torch.testing.assert_close(flipped["boxes"], plain["boxes"])
    torch.testing.assert_close(flipped["scores"], plain["scores"])
    assert not torch.allclose(flipped["fine_segm"], plain["fine_segm"])
    assert len(predictor(image)) == len(plain["boxes"])


def test_flip_needs_a_model_and_a_chart_that_have_it():
    class NoFlip(torch.nn.Module):
        def forward(self, images, min_size=None, max_size=None, score_thresh=None):
            return []

    with pytest.raises(UserError, match="has no flip test"):
        Predictor(NoFlip(), flip=True)
    with pytest.raises(UserError, match="symmetry tables of the 'smpl' chart"):
        flip_tables("smpl")


# ---------------------------------------------------------------------- UV_symmetry_transforms.mat
def _random_tables(size: int = 8, seed: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).random((24, size, size, 2)).astype(np.float32)


def test_symmetry_file_is_in_detectron2s_layout_and_reads_back(tmp_path):
    import scipy.io

    from densepose.surface.symmetry import read_symmetry_file, write_symmetry_file

    tables = _random_tables()
    path = write_symmetry_file(tables, tmp_path / "UV_symmetry_transforms.mat")
    np.testing.assert_array_equal(read_symmetry_file(path), tables)
    # detectron2 (DensePoseTransformData.load): map_src[0, i] per chart, read at [V * 255, U * 255]
    mat = scipy.io.loadmat(str(path))
    assert mat["U_transforms"].shape == mat["V_transforms"].shape == (1, 24)
    for chart in (0, 5, 23):
        np.testing.assert_array_equal(mat["U_transforms"][0, chart][3, 6], tables[chart, 3, 6, 0])
        np.testing.assert_array_equal(mat["V_transforms"][0, chart][3, 6], tables[chart, 3, 6, 1])


def test_bad_symmetry_files_give_one_line_errors(tmp_path):
    import scipy.io

    from densepose.surface.symmetry import read_symmetry_file, write_symmetry_file

    with pytest.raises(UserError, match="no such file"):
        read_symmetry_file(tmp_path / "missing.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(UserError, match="not a readable MATLAB .mat file"):
        read_symmetry_file(tmp_path / "junk.mat")
    scipy.io.savemat(str(tmp_path / "other.mat"), {"U_transforms": np.zeros((1, 3))})
    with pytest.raises(UserError, match="expected U_transforms with 24 tables"):
        read_symmetry_file(tmp_path / "other.mat")
    with pytest.raises(UserError, match=r"U, V in \[0, 1\]"):
        write_symmetry_file(_random_tables() * 3, tmp_path / "far.mat")
    with pytest.raises(UserError, match=r"must be \(24, T, T, 2\)"):
        write_symmetry_file(np.zeros((24, 4, 5, 2)), tmp_path / "wrong.mat")
    assert not (tmp_path / "far.mat").exists() and not (tmp_path / "wrong.mat").exists()


def test_unmirror_takes_each_legacy_mask_part_from_its_mirror_part():
    from densepose.surface.parts import MASK_PART_FLIP

    g = torch.Generator().manual_seed(5)
    out = {"coarse_segm": torch.randn(1, 15, 4, 4, generator=g), "fine_segm": torch.randn(1, 25, 4, 4, generator=g),
           "u": torch.rand(1, 25, 4, 4, generator=g), "v": torch.rand(1, 25, 4, 4, generator=g)}
    back = unmirror_outputs(out, torch.rand(24, 8, 8, 2, generator=g))
    for part in range(15):  # the left hand's channel (3) from the right hand's (2), and so on
        torch.testing.assert_close(back["coarse_segm"][0, part], out["coarse_segm"][0, int(MASK_PART_FLIP[part])].flip(-1))


def test_detectron2_files_take_the_flip_test_with_the_smpl_charts_tables(detectron2_legacy_file, tmp_path):
    """The boxes of the plain pass; coarse, fine, U, V averaged with the head on the mirrored image."""
    import densepose.api
    from densepose.modeling.flip_test import average_outputs
    from densepose.surface.symmetry import write_symmetry_file

    settings = dict(min_score=0.05, min_size=96, max_size=128, precision="fp32")
    with pytest.raises(UserError, match="UV_symmetry_transforms.mat"):
        densepose.api.load(detectron2_legacy_file, flip=True, **settings)
    tables = write_symmetry_file(_quantising_tables().numpy(), tmp_path / "UV_symmetry_transforms.mat")
    plain = densepose.api.load(detectron2_legacy_file, **settings)
    flipped = densepose.api.load(detectron2_legacy_file, flip=True, symmetry_file=tables, **settings)
    image = (np.random.default_rng(2).random((96, 128, 3)) * 255).astype(np.uint8)
    a, b = (p.forward([p.to_tensor(image)])[0] for p in (plain, flipped))
    assert len(a["boxes"]) > 0 and a["coarse_segm"].shape[1] == 15
    torch.testing.assert_close(b["boxes"], a["boxes"])
    torch.testing.assert_close(b["sigma_2"], a["sigma_2"])  # confidences stay the plain pass's
    # the mirrored pass, by hand: the head on the mirrored image at the mirrored boxes
    model = plain.model
    with torch.no_grad():
        batch = model.transform([plain.to_tensor(image)], None, 96, 128)
        assert batch.sizes == [(96, 128)]  # not resized: the boxes are in the network's pixels
        mirrored = model.densepose(model.features(mirror_images(batch.tensor, batch.sizes)),
                                   [mirror_boxes(a["boxes"], 128)])
    want = average_outputs(a, unmirror_outputs(mirrored, _quantising_tables()))
    for key in ("coarse_segm", "fine_segm", "u", "v"):
        torch.testing.assert_close(b[key], want[key], atol=1e-4, rtol=1e-4)
    assert len(flipped(image)) == len(a["boxes"])
    with pytest.raises(UserError, match="flip test only"):
        densepose.api.load(detectron2_legacy_file, symmetry_file=tables, **settings)


def test_cli_writes_a_charts_tables_and_predict_reads_them(detectron2_legacy_file, tmp_path, capsys):
    from PIL import Image

    from densepose.cli.main import main
    from densepose.surface.symmetry import read_symmetry_file, write_symmetry_file

    written = tmp_path / "anny_symmetry.mat"
    assert main(["surface", "symmetry", "--out", str(written)]) == 0
    np.testing.assert_array_equal(read_symmetry_file(written), flip_tables("anny").numpy())
    tables = write_symmetry_file(_quantising_tables().numpy(), tmp_path / "UV_symmetry_transforms.mat")
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(2).random((96, 128, 3)) * 255).astype(np.uint8)).save(photo)
    common = [str(photo), "--model", str(detectron2_legacy_file), "--size", "96", "--max-size", "128",
              "--min-score", "0.05", "--precision", "fp32", "--quiet"]
    assert main(["predict", *common, "--flip", "--flip-tables", str(tables), "--json", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "results.json").is_file()
    capsys.readouterr()
    assert main(["predict", *common, "--flip-tables", str(tables), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--flip" in err and len(err.splitlines()) == 1
