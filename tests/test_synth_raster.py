"""The NumPy rasteriser: coverage, z-test, perspective-correct barycentrics, culling, multi-mesh."""
from __future__ import annotations

import numpy as np

from densepose.synth.raster import project, rasterize, rasterize_multi

K = np.array([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])


def _quad(z_left: float, z_right: float, half: float = 0.3):
    """A square facing the camera (counter-clockwise seen from it), depth varying left to right."""
    v = np.array([[-half, -half, z_left], [half, -half, z_right], [half, half, z_right], [-half, half, z_left]])
    # Seen from the camera (y down), this winding is counter-clockwise in the world sense.
    f = np.array([[0, 3, 2], [0, 2, 1]])
    return v, f


def test_covers_the_projected_square_and_nothing_else():
    v, f = _quad(1.0, 1.0)
    face, bary, depth = rasterize(v, f, K, 32, 32)
    # Square spans x, y in [16 - 12, 16 + 12) at depth 1: pixel centres c + 0.5 inside -> columns 4..27.
    inside = np.zeros((32, 32), bool)
    inside[4:28, 4:28] = True
    assert np.array_equal(face >= 0, inside)
    assert np.allclose(depth[inside], 1.0)
    assert np.all(depth[~inside] == np.inf)
    assert np.allclose(bary[inside].sum(-1), 1.0, atol=1e-6)


def test_perspective_correct_barycentrics_hit_the_pixel_centre():
    v, f = _quad(1.0, 3.0)  # strongly slanted: affine interpolation would be off
    face, bary, depth = rasterize(v, f, K, 32, 32)
    rows, cols = np.nonzero(face >= 0)
    p3 = np.einsum("nk,nkc->nc", bary[rows, cols].astype(np.float64), v[f[face[rows, cols]]])
    xy = project(p3, K)
    assert np.allclose(xy[:, 0], cols + 0.5, atol=1e-3)
    assert np.allclose(xy[:, 1], rows + 0.5, atol=1e-3)
    assert np.allclose(p3[:, 2], depth[rows, cols], atol=1e-5)


def test_z_test_keeps_the_nearest_and_multi_mesh_reports_instances():
    near, f = _quad(1.0, 1.0, half=0.1)
    far, _ = _quad(2.0, 2.0, half=0.5)
    inst, face, bary, depth = rasterize_multi([far, near], f, K, 32, 32)
    assert inst[16, 16] == 1 and np.isclose(depth[16, 16], 1.0)
    assert inst[16, 7] == 0 and np.isclose(depth[16, 7], 2.0)
    assert inst[0, 0] == -1 and face[0, 0] == -1
    assert set(np.unique(face[inst >= 0])) <= {0, 1}


def test_backfaces_are_culled_only_when_asked():
    v, f = _quad(1.0, 1.0)
    back = f[:, ::-1]
    assert (rasterize(v, back, K, 32, 32)[0] >= 0).sum() == 0
    assert (rasterize(v, back, K, 32, 32, cull_backfaces=False)[0] >= 0).sum() == 24 * 24


def test_triangles_behind_the_camera_and_outside_are_dropped():
    v, f = _quad(-1.0, -1.0)
    assert (rasterize(v, f, K, 32, 32, cull_backfaces=False)[0] >= 0).sum() == 0
    v, f = _quad(1.0, 1.0)
    v[:, 0] += 5.0  # far to the right: truncated entirely
    assert (rasterize(v, f, K, 32, 32)[0] >= 0).sum() == 0
