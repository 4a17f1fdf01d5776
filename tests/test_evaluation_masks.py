"""``zoom_mask`` must equal scipy's ``zoom(order=1, prefilter=False) > 0.5`` bit for bit."""
import numpy as np
import pytest
from scipy.ndimage import zoom

from densepose.evaluation.masks import zoom_mask, zoom_shape


def _masks(rng):
    yy, xx = np.ogrid[:256, :256]
    yield "random", rng.random((256, 256)) < 0.5
    yield "checker", (np.add.outer(np.arange(256), np.arange(256)) % 2).astype(bool)  # values of exactly 0.5
    yield "stripes", np.tile(rng.random(256) < 0.5, (256, 1))
    yield "diagonal", np.add.outer(np.arange(256), np.arange(256)) < 256
    yield "ellipse", (yy - 120) ** 2 / 3 + (xx - 140) ** 2 < 6000
    yield "empty", np.zeros((256, 256), dtype=bool)
    yield "full", np.ones((256, 256), dtype=bool)


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (2, 2), (37.6, 511.0), (511, 257), (255, 256), (256, 256),
                                  (512, 129), (640.2, 3.4), (123.5, 77.49), (1000, 999)])
def test_zoom_mask_matches_scipy(size):
    rng = np.random.default_rng(int(size[0] * 7 + size[1]))
    h, w = size
    scale = (max(h, 1.0) / 256, max(w, 1.0) / 256)
    for name, m in _masks(rng):
        ref = zoom(m.astype(np.float64), scale, order=1, prefilter=False) > 0.5
        got = zoom_mask(m.astype(np.uint8), *zoom_shape(m.shape, scale))
        assert got.dtype == bool and got.shape == ref.shape, name
        assert np.array_equal(got, ref), (name, size, int((got != ref).sum()))


def test_zoom_mask_matches_scipy_random_sizes():
    rng = np.random.default_rng(0)
    for _ in range(40):
        m = rng.random((256, 256)) < rng.uniform(0.05, 0.95)
        if rng.random() < 0.5:  # blocky masks have long runs, like real part masks
            m = np.kron(rng.random((16, 16)) < 0.5, np.ones((16, 16), dtype=bool))
        scale = (rng.uniform(1, 700) / 256, rng.integers(1, 700) / 256)
        ref = zoom(m.astype(np.float64), scale, order=1, prefilter=False) > 0.5
        assert np.array_equal(zoom_mask(m, *zoom_shape(m.shape, scale)), ref)


def test_snap_table_equals_kdtree_snap(sphere_surface):
    """The prediction snap lookup is the k-d tree snap of the quantised (U, V), bit for bit."""
    table = sphere_surface.snap_table()
    assert table.shape == (24, 256, 256) and table.dtype == np.int32
    rng = np.random.default_rng(0)
    I, u8, v8 = rng.integers(1, 25, 5000), rng.integers(0, 256, 5000), rng.integers(0, 256, 5000)
    ref = sphere_surface.nearest_chart_vertex(I, np.stack([u8, v8], 1) / 255.0)
    assert np.array_equal(table[I - 1, v8, u8], ref)
    assert sphere_surface.snap_table() is table  # cached
