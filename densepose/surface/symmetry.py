"""Left/right symmetry of a chart: the tables that carry (U, V) through a horizontal flip.

Like the official ``UV_symmetry_transforms.mat``: for every chart i and every cell (row = V*255,
col = U*255) of a 256 x 256 grid, the (U', V') of the mirror-image point in chart CHART_FLIP[i].
The mirror image of a surface point is found through a mirror map of the mesh vertices (each
vertex's nearest vertex after x -> -x), which is exact on a symmetric template such as Anny's
(0.4 mm) or SMPL's. `write_symmetry_file` and `read_symmetry_file` keep tables in the official
file's layout, so detectron2 can train on this toolkit's charts and its models can take the flip test.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from densepose.cache import atomic_write_bytes
from densepose.errors import UserError
from densepose.io.mat_files import read_mat
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


# ---------------------------------------------------------------------- the official file
#: detectron2's name for the tables of the SMPL chart (its DensePose data files ship it).
SYMMETRY_FILE = "UV_symmetry_transforms.mat"


def write_symmetry_file(tables: np.ndarray, path: str | Path) -> Path:
    """Write (24, T, T, 2) tables as ``UV_symmetry_transforms.mat``: ``U_transforms`` and
    ``V_transforms``, each a 1 x 24 MATLAB cell array of (T, T) tables indexed [V * 255, U * 255],
    the layout detectron2 reads for its flip augmentation and test-time flip."""
    import scipy.io

    tables = _checked_tables(np.asarray(tables), str(path))
    cells = {key: np.empty((1, NUM_CHARTS), dtype=object) for key in ("U_transforms", "V_transforms")}
    for chart in range(NUM_CHARTS):
        cells["U_transforms"][0, chart] = tables[chart, :, :, 0].astype(np.float64)
        cells["V_transforms"][0, chart] = tables[chart, :, :, 1].astype(np.float64)
    buf = io.BytesIO()
    scipy.io.savemat(buf, cells)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def read_symmetry_file(path: str | Path) -> np.ndarray:
    """``UV_symmetry_transforms.mat`` (detectron2's, or one `write_symmetry_file` wrote) -> (24, T, T, 2) float32."""
    p = Path(path)
    mat = read_mat(p)
    planes = []
    for key in ("U_transforms", "V_transforms"):
        cells = mat.get(key)
        if not isinstance(cells, np.ndarray) or cells.size != NUM_CHARTS:
            raise UserError(f"{p}: expected {key} with {NUM_CHARTS} tables, one per chart (detectron2's layout)")
        try:
            planes.append(np.stack([np.asarray(t, dtype=np.float32) for t in cells.ravel()]))
        except ValueError:
            raise UserError(f"{p}: the {key} tables differ in size") from None
    return _checked_tables(np.stack(planes, axis=-1), str(p))


def _checked_tables(tables: np.ndarray, where: str) -> np.ndarray:
    if tables.ndim != 4 or tables.shape[0] != NUM_CHARTS or tables.shape[3] != 2 \
            or tables.shape[1] != tables.shape[2] or tables.shape[1] < 2:
        raise UserError(f"{where}: symmetry tables must be ({NUM_CHARTS}, T, T, 2), got {tables.shape}")
    if not np.isfinite(tables).all() or tables.min() < 0 or tables.max() > 1:
        raise UserError(f"{where}: symmetry tables must hold U, V in [0, 1]")
    return np.ascontiguousarray(tables, dtype=np.float32)
