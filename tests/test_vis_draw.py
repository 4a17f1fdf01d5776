"""densepose.vis: colours, overlays, isolines, boxes, grids, texture atlas sampling."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densepose.errors import UserError
from densepose.surface.parts import CHART_COLORS
from densepose.vis import (
    VIS_KINDS, colorize_parts, default_atlas, draw_boxes, draw_isolines, load_atlas, make_grid, overlay,
    sample_atlas, texture_transfer, uv_to_rgb, visualize,
)
from densepose.vis.draw import isoline_mask


def test_colorize_parts_uses_chart_colors():
    labels = np.arange(25, dtype=np.uint8).reshape(5, 5)
    rgb = colorize_parts(labels)
    assert rgb.shape == (5, 5, 3) and rgb.dtype == np.uint8
    assert (rgb.reshape(25, 3) == CHART_COLORS).all()


def test_uv_to_rgb_channels_and_background():
    u = np.array([[0.0, 1.0]], np.float32)
    v = np.array([[1.0, 0.0]], np.float32)
    rgb = uv_to_rgb(u, v, labels=np.array([[3, 0]]))
    assert tuple(rgb[0, 0]) == (0, 255, 128)
    assert tuple(rgb[0, 1]) == (0, 0, 0)  # background


def test_overlay_blends_only_inside_mask():
    image = np.full((4, 4, 3), 100, np.uint8)
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = 200
    out = overlay(image, rgb, alpha=0.25)
    assert (out[:2] == 125).all() and (out[2:] == 100).all()
    with pytest.raises(ValueError):
        overlay(image, rgb[:3])


def test_isolines_count_and_part_independence():
    h, w, levels = 20, 100, 10
    labels = np.full((h, w), 2, np.uint8)
    u = np.tile((np.arange(w) + 0.5) / w, (h, 1)).astype(np.float32)
    v = np.zeros((h, w), np.float32)
    mask, level = isoline_mask(labels, u, levels)
    cols = np.nonzero(mask.any(axis=0))[0]
    assert len(cols) == levels - 1  # one line per interior step
    assert sorted(set(level[mask].tolist())) == list(range(1, levels))
    # A part boundary exactly at a step is not an isoline of either part.
    labels[:, 50:] = 15
    mask2, _ = isoline_mask(labels, u, levels)
    assert mask2.any(axis=0).sum() == levels - 2
    out = draw_isolines(np.zeros((h, w, 3), np.uint8), labels, u, v, levels=levels)
    assert (out[:, 50] == 255).all()  # white part boundary
    assert out[:, cols[0]].any()
    thick = draw_isolines(np.zeros((h, w, 3), np.uint8), labels, u, v, levels=levels, thickness=3)
    assert thick.any(axis=-1).sum() > out.any(axis=-1).sum()


def test_draw_boxes_marks_edges():
    image = np.zeros((50, 60, 3), np.uint8)
    out = draw_boxes(image, np.array([[10, 20, 40, 45]]), scores=[0.87], color=(0, 255, 0), width=1)
    assert tuple(out[30, 10]) == (0, 255, 0) and tuple(out[45, 25]) == (0, 255, 0)
    assert tuple(out[30, 25]) == (0, 0, 0)  # inside untouched
    assert (image == 0).all()  # input not modified


def test_make_grid_layout():
    a = np.full((10, 20, 3), 1, np.uint8)
    b = np.full((15, 5, 3), 2, np.uint8)
    grid = make_grid([a, b, a], ncols=2, pad=2, background=255)
    assert grid.shape == (2 * 15 + 3 * 2, 2 * 20 + 3 * 2, 3)
    assert (grid[2:12, 2:22] == 1).all() and (grid[2:17, 24:29] == 2).all()
    assert make_grid([a], titles=["x"]).shape[0] > a.shape[0]


def _tile_atlas(n: int) -> np.ndarray:
    """Every tile filled with its chart number in R."""
    atlas = np.zeros((6 * n, 4 * n, 3), np.uint8)
    for chart in range(1, 25):
        row, col = (chart - 1) % 6, (chart - 1) // 6
        atlas[row * n : (row + 1) * n, col * n : (col + 1) * n, 0] = chart
    return atlas


def test_atlas_layout_tile_for_chart():
    n = 8
    atlas = _tile_atlas(n)
    labels = np.arange(1, 25, dtype=np.uint8)[None]
    rgb, alpha = sample_atlas(atlas, labels, np.full((1, 24), 0.5, np.float32), np.full((1, 24), 0.5, np.float32))
    assert (rgb[0, :, 0] == np.arange(1, 25)).all() and (alpha == 1).all()
    # Within a tile: x = U*(N-1), y = (1-V)*(N-1).
    grad = np.zeros((6 * n, 4 * n, 3), np.uint8)
    grad[:, :, 1] = np.arange(4 * n)[None, :]
    grad[:, :, 2] = np.arange(6 * n)[:, None]
    chart = 8  # row 1, col 1
    rgb, _ = sample_atlas(grad, np.array([[chart, chart]]), np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert tuple(rgb[0, 0, 1:]) == (n, n)  # U=0, V=1 -> tile's top-left
    assert tuple(rgb[0, 1, 1:]) == (2 * n - 1, 2 * n - 1)  # U=1, V=0 -> bottom-right


def test_texture_transfer_background_and_alpha():
    n = 4
    atlas = np.dstack([_tile_atlas(n), np.full((6 * n, 4 * n), 255, np.uint8)])
    atlas[..., 3][: n, : n] = 0  # chart 1 transparent
    image = np.full((2, 2, 3), 77, np.uint8)
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    uv = np.full((2, 2), 0.5, np.float32)
    out = texture_transfer(image, labels, uv, uv, atlas)
    assert tuple(out[0, 0]) == (77, 77, 77) and tuple(out[0, 1]) == (77, 77, 77)
    assert tuple(out[1, 0]) == (2, 0, 0) and tuple(out[1, 1]) == (3, 0, 0)


def test_default_atlas_and_load_atlas(tmp_path):
    atlas = default_atlas(16)
    assert atlas.shape == (96, 64, 3)
    for chart in (1, 7, 24):  # every tile tinted by its chart colour, not empty
        row, col = (chart - 1) % 6, (chart - 1) // 6
        assert atlas[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16].mean() > 20
    Image.fromarray(atlas).save(tmp_path / "a.png")
    assert load_atlas(tmp_path / "a.png").shape == (96, 64, 3)
    Image.fromarray(atlas[:90]).save(tmp_path / "bad.png")
    with pytest.raises(UserError, match="6N x 4N"):
        load_atlas(tmp_path / "bad.png")


@pytest.mark.parametrize("kind", VIS_KINDS)
def test_visualize_every_kind(kind):
    h, w = 40, 50
    labels = np.zeros((h, w), np.uint8)
    labels[10:30, 10:40] = 2
    u = np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))
    image = np.full((h, w, 3), 128, np.uint8)
    out = visualize(image, labels, u, 1 - u, kind, boxes=np.array([[10, 10, 40, 30]]), scores=[0.9])
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    if kind != "boxes":
        assert (out[20, 20] != 128).any()  # the body is painted
    with pytest.raises(ValueError):
        visualize(image, labels, u, u, "nope")
