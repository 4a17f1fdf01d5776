"""Small people read at a larger size (`densepose.modeling.zoom`): only their DensePose maps change."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.zoom import (CROP_MARGIN, SMALL_FLIP_TABLE, Zoom, crop_around, small_flip_tables,
                                     zoomed_roi_features)
from densepose.modeling.transform import ImageBatch

DP_KEYS = ("coarse_segm", "fine_segm", "u", "v")


def _pool(feats, boxes):
    """A stand-in pooler: each row is (feature tag, x0, y0, x1, y1) of its box."""
    rows = torch.cat(boxes)
    return torch.cat([torch.full((rows.shape[0], 1), float(feats[0])), rows], 1)


def test_small_people_are_pooled_from_the_zoomed_features_at_scaled_boxes_in_order():
    boxes = [torch.tensor([[0.0, 0, 10, 50], [0, 0, 10, 200]]), torch.zeros(0, 4), torch.tensor([[5.0, 5, 9, 20]])]
    heights = [b[:, 3] - b[:, 1] for b in boxes]
    factors = [torch.tensor([1.5, 2.0, 1.5, 2.0]), torch.ones(4), torch.tensor([3.0, 3.0, 3.0, 3.0])]
    batch = ImageBatch(torch.zeros(3, 3, 8, 8), [(8, 8)] * 3, [(1.0, 1.0)] * 3, [(8, 8)] * 3)
    zoom = Zoom(lambda: batch, factors, max_height=100.0, backbone=lambda x: [torch.tensor(2.0)])
    out = zoomed_roi_features(_pool, [torch.tensor(1.0)], boxes, heights, zoom)
    assert out[:, 0].tolist() == [2.0, 1.0, 2.0]  # the small, the tall, the small person of image 3
    assert out[0, 1:].tolist() == [0, 0, 15, 100] and out[1, 1:].tolist() == [0, 0, 10, 200]
    assert out[2, 1:].tolist() == [15, 15, 27, 60]
    assert zoomed_roi_features(_pool, [torch.tensor(1.0)], boxes, heights, None)[:, 0].tolist() == [1.0] * 3
    tall = Zoom(lambda: pytest.fail("no small person: the images are not even resized"), factors, max_height=1.0,
                backbone=lambda x: pytest.fail("no small person: no zoomed pass"))
    assert zoomed_roi_features(_pool, [torch.tensor(1.0)], boxes, heights, tall)[:, 0].tolist() == [1.0] * 3


def test_the_zoomed_pass_reads_only_a_crop_around_the_small_people_on_the_trunk_s_stride():
    assert CROP_MARGIN == 64
    # 64 px around x 100..120, y 100..150, widened to multiples of 32: x 32..192, y 32..224.
    assert crop_around(torch.tensor([[100.0, 100, 120, 150]]), (256, 384), 64, 32) == (32, 32, 192, 224)
    # Two people: the crop holds both; it stops at the image's edges.
    both = torch.tensor([[10.0, 20, 30, 60], [300, 200, 350, 250]])
    assert crop_around(both, (256, 384), 64, 32) == (0, 0, 384, 256)
    assert crop_around(torch.tensor([[5.0, 5, 5.5, 5.5]]), (256, 384), 0, 32) == (0, 0, 32, 32)

    crops = []

    def backbone(x):
        crops.append(tuple(x.shape))
        return [torch.tensor(2.0)]

    batch = ImageBatch(torch.rand(2, 3, 256, 384), [(256, 384)] * 2, [(1.0, 1.0)] * 2, [(256, 384)] * 2)
    zoom = Zoom(lambda: batch, [torch.ones(4)] * 2, max_height=100.0, backbone=backbone, stride=32)
    boxes = [torch.tensor([[100.0, 100, 120, 150]]), torch.zeros(0, 4)]
    out = zoomed_roi_features(_pool, [torch.tensor(1.0)], boxes, [b[:, 3] - b[:, 1] for b in boxes], zoom)
    assert crops == [(1, 3, 192, 160)]  # one pass, for the one image with a small person, on its crop
    # The mirror of the mirror images is the images (each resized once, from the zoom it mirrors).
    torch.testing.assert_close(zoom.mirrored().mirrored().batch.tensor, zoom.batch.tensor)
    assert out.tolist() == [[2.0, 68, 68, 88, 118]]  # pooled from the crop's features, the box in its pixels


@pytest.mark.parametrize("flip", [False, True])
def test_zoom_changes_only_the_maps_of_the_people_under_the_height(flip):
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, detections_per_image=30, dp_margin_x=0.1, dp_margin_y=0.05)
    model = DensePoseRCNN(cfg).eval()
    image = torch.rand(3, cfg.min_size_test, cfg.min_size_test * 4 // 3) * 255  # tested as it is: scale 1
    flip_uv = None
    if flip:
        from densepose.modeling.flip_test import flip_tables
        flip_uv = flip_tables("anny")
    with torch.no_grad():
        plain = model([image], flip_uv=flip_uv)[0]
        heights = plain["boxes"][:, 3] - plain["boxes"][:, 1]
        cut = float(heights.median())
        model.cfg = dataclasses.replace(cfg, dp_zoom_max_height=cut)
        passes = []
        backbone_forward = model.backbone.forward
        model.backbone.forward = lambda x: passes.append(tuple(x.shape[-2:])) or backbone_forward(x)
        zoomed = model([image], flip_uv=flip_uv, dp_zoom_size=2 * cfg.min_size_test)[0]
        del model.backbone.forward
        off = model([image], flip_uv=flip_uv, dp_zoom_size=0)[0]
    small = heights < cut
    # The test size, then the larger one; with the flip test both again for the mirror images.
    sizes = [(128, 192), (256, 352)]
    assert passes == (sizes * 2 if flip else sizes), passes
    assert 0 < int(small.sum()) < len(heights)
    for key in ("boxes", "scores", "dp_boxes"):
        torch.testing.assert_close(zoomed[key], plain[key])
    for key in DP_KEYS:
        torch.testing.assert_close(zoomed[key][~small], plain[key][~small])
        torch.testing.assert_close(off[key], plain[key])
        per_row = (zoomed[key][small] - plain[key][small]).flatten(1).abs().amax(1)
        assert bool((per_row > 1e-4).all()), key


def test_zoom_is_a_larger_shorter_side_or_off():
    from densepose.predict.predictor import Predictor

    model = DensePoseRCNN(tiny_config())
    with pytest.raises(UserError, match="--zoom"):
        Predictor(model, zoom=-5)
    image = torch.rand(3, 128, 160) * 255
    assert len(Predictor(model, zoom=0).predict_batch([image.permute(1, 2, 0).byte().numpy()])) == 1
    with torch.no_grad(), pytest.raises(UserError, match=r"\(128\) must be larger than the largest test size \(128\)"):
        model.eval()([image], dp_zoom_size=128)


def test_a_model_file_s_zoom_size_is_off_or_an_image_side():
    from densepose.modeling.model_file import model_config_from_dict

    base = tiny_config().to_dict()
    assert model_config_from_dict(base, "f").dp_zoom_size == 0
    assert model_config_from_dict({**base, "dp_zoom_size": 768}, "f").dp_zoom_size == 768
    with pytest.raises(UserError, match="dp_zoom_size"):
        model_config_from_dict({**base, "dp_zoom_size": 10**6}, "f")  # a hostile file's endless allocation


def test_the_flip_test_of_the_small_people_alone_is_the_flip_test_on_their_rows():
    """``dp_zoom_flip``: the people read at the larger size get exactly the flip test's answer (their
    maps averaged with those of the mirror image of their crop), everyone else their plain one."""
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, detections_per_image=30, dp_margin_x=0.1, dp_margin_y=0.05,
                      dp_zoom_flip=True)
    model = DensePoseRCNN(cfg).eval()
    tables = torch.rand(24, SMALL_FLIP_TABLE, SMALL_FLIP_TABLE, 2)
    model.zoom_flip_uv.copy_(tables)
    image = torch.rand(3, cfg.min_size_test, cfg.min_size_test * 4 // 3) * 255
    zoom = 2 * cfg.min_size_test
    with torch.no_grad():
        heights = (lambda b: b[:, 3] - b[:, 1])(model([image])[0]["boxes"])
        cut = float(heights.median())
        model.cfg = dataclasses.replace(cfg, dp_zoom_max_height=cut)
        small_flipped = model([image], dp_zoom_size=zoom)[0]
        everyone_flipped = model([image], dp_zoom_size=zoom, flip_uv=tables)[0]
        model.cfg = dataclasses.replace(cfg, dp_zoom_max_height=cut, dp_zoom_flip=False)
        zoomed = model([image], dp_zoom_size=zoom)[0]
    small = heights < cut
    assert 0 < int(small.sum()) < len(heights)
    torch.testing.assert_close(small_flipped["boxes"], zoomed["boxes"])
    for key in DP_KEYS:
        torch.testing.assert_close(small_flipped[key][~small], zoomed[key][~small])
        torch.testing.assert_close(small_flipped[key][small], everyone_flipped[key][small], atol=1e-5, rtol=1e-5)
        assert bool(((small_flipped[key][small] - zoomed[key][small]).flatten(1).abs().amax(1) > 1e-4).all()), key


def test_small_flip_tables_keep_the_nearest_cells_and_export_adds_them(tmp_path, monkeypatch):
    from densepose.cli.main import main
    from densepose.modeling import flip_test
    from densepose.modeling.model_file import load_model_file

    full = torch.rand(24, 256, 256, 2)
    small = small_flip_tables(full)
    assert small.shape == (24, 64, 64, 2)
    torch.testing.assert_close(small[:, 0, 0], full[:, 0, 0])
    torch.testing.assert_close(small[:, 63, 63], full[:, 255, 255])
    torch.testing.assert_close(small[:, 21, 42], full[:, 85, 170])  # 21 * 255 / 63 = 85

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.save({"config": {"model": tiny_config().to_dict()}, "model": DensePoseRCNN(tiny_config()).state_dict()}, path)
    monkeypatch.setattr(flip_test, "flip_tables", lambda chart: full)  # the Anny chart's, without building it
    out = tmp_path / "flipped.pt"
    assert main(["export", str(path), "--out", str(out), "--set", "dp_zoom_size=256", "dp_zoom_flip=true"]) == 0
    model = load_model_file(out)
    assert model.cfg.dp_zoom_flip and model.cfg.dp_zoom_size == 256
    torch.testing.assert_close(model.zoom_flip_uv, small)
    assert main(["export", str(out), "--out", str(tmp_path / "off.pt"), "--set", "dp_zoom_flip=false"]) == 0
    assert not hasattr(load_model_file(tmp_path / "off.pt"), "zoom_flip_uv")
    with pytest.raises(UserError, match="dp_zoom_flip"):
        tiny_config(dp_zoom_flip=True, cascade=True)
