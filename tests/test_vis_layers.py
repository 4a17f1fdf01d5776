"""Layered pictures with a colour legend, result objects' plot/save/to_json, the surface sheet layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from densepose.surface.parts import CHART_COLORS
from densepose.vis.render import parse_kinds, render_layers, visualize
from test_predict_common import FakeModel, random_image


def _maps(h=120, w=160):
    yy, xx = np.mgrid[:h, :w]
    labels = np.zeros((h, w), np.uint8)
    labels[20:100, 30:80] = 2
    labels[20:100, 80:130] = 15
    return labels, (xx / w).astype(np.float32), (yy / h).astype(np.float32)


def _has_color(picture: np.ndarray, rgb) -> bool:
    return bool((picture.reshape(-1, 3) == np.asarray(rgb, np.uint8)).all(1).any())


def test_layers_in_one_picture_with_a_legend():
    image = random_image(120, 160, 0)
    labels, u, v = _maps()
    boxes = np.array([[30, 20, 130, 100]], np.float32)
    pic = render_layers(image, labels, u, v, ("parts", "contours", "boxes"), boxes=boxes, scores=[0.9])
    bare = render_layers(image, labels, u, v, ("parts", "contours", "boxes"), boxes=boxes, scores=[0.9], legend=None)
    assert bare.shape == image.shape and pic.shape[0] == 120 and pic.shape[1] > 160  # legend panel on the right
    assert (pic[:, :160] == bare).all()
    legend = pic[:, 160:]
    for chart in (2, 15):  # swatches of the parts present, exactly their colours
        assert _has_color(legend, CHART_COLORS[chart])
    assert not _has_color(legend, CHART_COLORS[7])  # absent parts are not listed
    assert _has_color(legend, (0, 255, 0))  # the box colour
    # All three layers are in the one picture: part colour blend, isolines, the box outline.
    assert _has_color(bare, (0, 255, 0)) and (bare[labels > 0] != visualize(image, labels, u, v, "parts")[labels > 0]).any()
    contours = visualize(image, labels, u, v, "contours")
    assert (bare[60, 30:130] != contours[60, 30:130]).any()


def test_fixed_legend_for_video_frames_and_kind_parsing():
    image = random_image(200, 160, 1)
    labels, u, v = _maps(200, 160)
    a = render_layers(image, labels, u, v, ("parts",), legend="all")
    b = render_layers(image, np.zeros_like(labels), u, v, ("parts",), legend="all")
    assert a.shape == b.shape  # the same width whatever is found: frames of one MP4 must match
    assert parse_kinds("parts, contours,boxes") == ("parts", "contours", "boxes")
    with pytest.raises(ValueError, match="unknown visualisation 'nope'"):
        parse_kinds("parts,nope")


def test_image_result_plot_save_to_json(tmp_path):
    from densepose.evaluation.results import parse_results
    from densepose.predict import Predictor

    image = random_image(120, 160, 2)
    res = Predictor(FakeModel(), min_score=0.3)(image)
    assert len(res) == 2 and res[0].score == pytest.approx(0.9)  # still a list of people
    pic = res.plot("parts,contours,boxes")
    assert pic.shape[0] == 120 and pic.shape[1] > 160 and pic.dtype == np.uint8
    assert res.plot(("parts",), legend=False).shape == image.shape
    for name in ("a.png", "b.jpg"):
        path = res.save(tmp_path / name)
        with Image.open(path) as im:
            assert im.size == (pic.shape[1], pic.shape[0])
    records = json.loads(res.to_json(image_id=7, file_name="x.jpg"))
    assert [r["image_id"] for r in records] == [7, 7] and records[0]["file_name"] == "x.jpg"
    assert len(parse_results(records).score) == 2


def test_surface_sheet_layout(sphere_surface):
    from densepose.vis.surface_sheet import surface_sheet

    size = 128
    sheet = surface_sheet(sphere_surface, size=size)
    assert sheet.shape[1] == 4 * size
    h = sheet.shape[0]
    lower_right = sheet[h // 2:, 2 * size:]
    assert (lower_right != 255).any(axis=-1).mean() > 0.2  # charts fill the lower half, no blank canvas


def test_plot_draws_boxes_where_the_people_are_when_the_frame_is_larger():
    """Results of a smaller decode of a picture are in the picture's pixels (``frame_sizes``);
    their plot on the smaller image must put boxes where the people are, as the maps are."""
    from densepose.predict import Predictor

    image = random_image(120, 160, 2)
    predictor = Predictor(FakeModel(), min_score=0.3)
    same = predictor(image)
    framed = predictor.predict_batch([image], frame_sizes=[(240, 320)])[0]
    assert np.allclose(framed[0].box, 2 * same[0].box, atol=1e-3)  # results in the frame's pixels
    for kinds in ("boxes", "parts,boxes"):
        a, b = same.plot(kinds, legend=False), framed.plot(kinds, legend=False)
        assert a.shape == b.shape == image.shape
        assert (np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 0).mean() < 0.01
