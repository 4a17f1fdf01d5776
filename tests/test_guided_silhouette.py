"""densepose.modeling.guided_silhouette: each person's silhouette moved onto the image's edges."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from densepose.errors import UserError
from densepose.modeling.config import efficientnet_lite_config
from densepose.modeling.guided_silhouette import (nearest_body, radius_in_image, snap_silhouette,
                                                  snap_with_settings)


def _person_photo(h: int = 60, w: int = 50) -> np.ndarray:
    """A grey photo with an orange person at rows 10..49, columns 15..34."""
    image = np.full((h, w, 3), 90, dtype=np.uint8)
    image[10:50, 15:35] = (230, 120, 40)
    return image


def _labels_too_wide(origin: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Labels over the map box at ``origin``: the person drawn one pixel too wide on the left
    (chart 2) and one too narrow on the right, the legs (rows 30..49) chart 9."""
    x0, y0 = origin
    labels = np.zeros(shape, dtype=np.uint8)
    labels[10 - y0 : 30 - y0, 14 - x0 : 34 - x0] = 2
    labels[30 - y0 : 50 - y0, 14 - x0 : 34 - x0] = 9
    return labels


def test_the_outline_moves_onto_the_persons_edges():
    origin, shape = (5, 2), (55, 40)  # the map box: x 5..44, y 2..56
    labels = _labels_too_wide(origin, shape)
    u = np.where(labels > 0, 0.25, 0).astype(np.float32)
    u[:, 33 - origin[0]] = np.where(labels[:, 33 - origin[0]] > 0, 0.75, 0)  # the labels' last column
    snapped, (u_out,) = snap_silhouette(_person_photo(), (60, 50), labels, (u,), origin, 2, 1e-3, 0.5)
    body = np.zeros((60, 50), dtype=bool)
    body[origin[1] : origin[1] + shape[0], origin[0] : origin[0] + shape[1]] = snapped > 0
    person = np.zeros((60, 50), dtype=bool)
    person[10:50, 15:35] = True
    assert np.array_equal(body, person)
    # The added column (34) takes its nearest body pixel's chart and U; the torso and legs keep theirs.
    column = 34 - origin[0]
    assert np.array_equal(snapped[10 - origin[1] : 30 - origin[1], column], np.full(20, 2))
    assert np.array_equal(snapped[30 - origin[1] : 50 - origin[1], column], np.full(20, 9))
    assert np.all(u_out[10 - origin[1] : 50 - origin[1], column] == 0.75)
    assert snapped.dtype == labels.dtype and u_out.dtype == u.dtype
    assert labels[20 - origin[1], 14 - origin[0]] == 2  # the input is not changed


def test_a_smaller_decode_of_the_frame_guides_the_same_way():
    """The image may be a half-size decode of the frame the labels are in (`read_image`)."""
    big = np.repeat(np.repeat(_person_photo(), 2, axis=0), 2, axis=1)  # the frame, 120 x 100
    origin = (10, 4)
    labels = np.zeros((110, 80), dtype=np.uint8)
    labels[20 - 4 : 100 - 4, 29 - 10 : 70 - 10] = 3  # one pixel too wide on the left, at frame size
    from_big, _ = snap_silhouette(big, (120, 100), labels, (), origin, 3, 1e-3, 0.5)
    from_small, _ = snap_silhouette(big[::2, ::2], (120, 100), labels, (), origin, 3, 1e-3, 0.5)
    assert np.array_equal(from_big, from_small)
    assert not from_big[:, : 30 - 10].any() and from_big[40 - 4, 30 - 10 : 70 - 10].all()


def test_maps_outside_the_frame_and_empty_maps_stay():
    labels = np.zeros((30, 30), dtype=np.uint8)
    same, _ = snap_silhouette(_person_photo(), (60, 50), labels, (), (10, 10), 2, 1e-3, 0.5)
    assert same is labels
    labels[:, :] = 4
    outside, _ = snap_silhouette(_person_photo(), (60, 50), labels, (), (60, 70), 2, 1e-3, 0.5)
    assert outside is labels


def test_nearest_body_pixel():
    body = np.zeros((9, 9), dtype=bool)
    body[4, 4] = body[0, 8] = True
    ys, xs = nearest_body(body, np.array([4, 1, 8]), np.array([6, 7, 0]), reach=3)
    assert ys.tolist() == [4, 0, 8] and xs.tolist() == [4, 8, 0]  # the last has none within 3: itself


def test_the_radius_follows_the_image_size():
    assert radius_in_image(4, (512, 640), 512, 853) == 4
    assert radius_in_image(4, (1024, 1280), 512, 853) == 8
    assert radius_in_image(4, (300, 3000), 512, 853) == 14  # the longer side limits the resize
    assert radius_in_image(4, (64, 64), 512, 853) == 1


def test_settings_switch_it_on_and_off():
    cfg = efficientnet_lite_config(backbone_weights=None)
    origin, shape = (5, 2), (55, 40)
    labels = _labels_too_wide(origin, shape)
    off, _ = snap_with_settings(cfg, _person_photo(), (60, 50), labels, (), origin)
    assert off is labels  # guided_radius 0: off
    assert snap_with_settings(None, _person_photo(), (60, 50), labels, (), origin)[0] is labels  # no settings
    on, _ = snap_with_settings(replace(cfg, guided_radius=1), _person_photo(), (60, 50), labels, (), origin)
    assert not np.array_equal(on, labels)


@pytest.mark.parametrize("key, value", [("guided_radius", -1), ("guided_eps", 0.0), ("guided_threshold", 1.5)])
def test_model_file_settings_are_checked(key, value):
    from densepose.modeling.model_file import model_config_from_dict

    values = efficientnet_lite_config(backbone_weights=None).to_dict()
    values[key] = value
    with pytest.raises(UserError, match=key):
        model_config_from_dict(values, "m.pt")


def test_export_says_that_the_graph_keeps_the_heads_silhouettes(tmp_path, caplog):
    import torch

    from densepose.engine.export_graph import export_graph
    from densepose.modeling import DensePoseRCNN, tiny_config

    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(guided_radius=4, backbone_width=8, fpn_channels=16)).eval()
    with caplog.at_level("WARNING"):
        export_graph(model, tmp_path / "m.ts", "torchscript", example=torch.rand(3, 80, 100) * 255)
    assert "guided_radius 4" in caplog.text and (tmp_path / "m.ts").is_file()
