"""Left/right symmetry of a chart: the tables that carry (U, V) through a horizontal flip.

Like the official ``UV_symmetry_transforms.mat``: for every chart i and every cell (row = V*255,
col = U*255) of a 256 x 256 grid, the (U', V') of the mirror-image point in chart CHART_FLIP[i].
The mirror image of a surface point is found through a mirror map of the mesh vertices (each
vertex's nearest vertex after x -> -x), which is exact on a symmetric template such as Anny's
(0.4 mm) or SMPL's.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial import cKDTree

from densepose.surface.base import BodySurface
from densepose.surface.parts import CHART_FLIP, NUM_CHARTS

TABLE_SIZE = 256


def mirror_vertex_map(vertices: np.ndarray, axis: int = 0, tolerance: float = 5e-3) -> np.ndarray:
    """(V,) index of the vertex nearest to each vertex's mirror image across the plane x = 0."""
    mirrored = vertices.copy()
    mirrored[:, axis] = -mirrored[:, axis]
    dist, idx = cKDTree(vertices).query(mirrored)
    if dist.max() > tolerance:
        warnings.warn(f"mesh is not mirror-symmetric: worst vertex is {dist.max() * 1000:.1f} mm off", stacklevel=2)
    return idx


def mirror_face_map(faces: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(F,) index of the face made of the mirrored vertices of each face, -1 where there is none."""
    key = np.sort(faces, axis=1)
    mkey = np.sort(mirror[faces], axis=1)
    both = np.concatenate([key, mkey])
    _, inv = np.unique(both, axis=0, return_inverse=True)
    inv = inv.ravel()
    slot = np.full(inv.max() + 1, -1, dtype=np.int64)
    slot[inv[: len(faces)]] = np.arange(len(faces))
    return slot[inv[len(faces):]]


def build_flip_tables(surface: BodySurface, axis: int = 0) -> np.ndarray:
    """(24, 256, 256, 2) float32 flip tables for ``surface`` (see the module docstring).

    A point (face, barycentrics) maps to the mirrored face with the barycentrics carried to the
    mirrored corners, and its (U', V') is interpolated from that face's own chart corners, which is
    right even where a chart is slit open (a cut vertex has one chart vertex per side).
    """
    mirror = mirror_vertex_map(surface.vertices, axis)
    mface = mirror_face_map(surface.faces, mirror)
    # fallback for faces without an exact mirror: chart vertex of (mesh vertex, chart)
    lookup = np.full((surface.num_vertices, NUM_CHARTS + 1), -1, dtype=np.int64)
    lookup[surface.chart_vertex_mesh, surface.chart_vertex_part] = np.arange(len(surface.chart_uv))
    grid = (np.stack(np.meshgrid(np.arange(TABLE_SIZE), np.arange(TABLE_SIZE)), axis=-1).reshape(-1, 2)) / 255.0
    tables = np.zeros((NUM_CHARTS, TABLE_SIZE, TABLE_SIZE, 2), dtype=np.float32)
    for chart in range(1, NUM_CHARTS + 1):
        target = CHART_FLIP[chart]
        face, bary = surface.points_from_iuv(np.full(len(grid), chart), grid)
        corners = mirror[surface.faces[face]]  # (N, 3) mirrored mesh vertices
        cv = lookup[corners, target]
        mf = mface[face]
        ok = (mf >= 0) & (surface.face_part[np.maximum(mf, 0)] == target)
        if ok.any():  # position of each mirrored corner inside the mirrored face
            mverts = surface.faces[mf[ok]]  # (n, 3)
            pos = np.argmax(mverts[:, None, :] == corners[ok][:, :, None], axis=2)  # (n, 3)
            cv[ok] = np.take_along_axis(surface.chart_faces[mf[ok]], pos, axis=1)
        missing = cv < 0
        if missing.any():  # a mirrored corner off the target chart: use its nearest chart vertex there
            ids = np.flatnonzero(surface.chart_vertex_part == target)
            tree = cKDTree(surface.vertices[surface.chart_vertex_mesh[ids]])
            _, j = tree.query(surface.vertices[corners[missing]])
            cv[missing] = ids[j]
        uv = np.einsum("nk,nkc->nc", bary, surface.chart_uv[cv])
        tables[chart - 1] = uv.reshape(TABLE_SIZE, TABLE_SIZE, 2)
    return tables
