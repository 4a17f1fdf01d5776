"""`BodySurface`: one body mesh cut into the 24 DensePose charts, with (U, V) per chart.

Every chart provider (the open Anny chart, the official SMPL chart) builds one of these. All
conversions are batched NumPy: inputs are arrays of N items, outputs arrays of N items.

Terms
-----
mesh vertex   a vertex of the 3D mesh, ``vertices[k]``.
chart vertex  a (mesh vertex, chart) pair with its (U, V); a seam vertex appears once per chart
              it belongs to (as in the official ``UV_Processed.mat``).
surface point a face index and barycentric weights (N,), (N, 3) on that face.
IUV           a chart index I in 1..24 and (U, V) in [0, 1]^2 inside that chart.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from scipy.spatial import cKDTree

from densepose.surface.parts import CHART_FLIP, CHART_TO_KAPPA_GROUP, NUM_CHARTS, PAPER_KAPPA

if TYPE_CHECKING:
    from densepose.surface.geodesics import GeodesicDistance

@dataclass
class BodySurface:
    """A body mesh with 24 DensePose charts.

    Attributes:
        name: "anny" or "smpl" (or a user name).
        vertices: (V, 3) float64 rest-pose positions in metres.
        faces: (F, 3) int64 mesh-vertex indices.
        face_part: (F,) int64 chart index 1..24 of every face.
        chart_faces: (F, 3) int64 chart-vertex indices of every face's corners (in chart ``face_part``).
        chart_uv: (M, 2) float64 (U, V) of every chart vertex, in [0, 1].
        chart_vertex_mesh: (M,) int64 mesh vertex of every chart vertex.
        kappa_groups: (9,) float64 per-part kappa of the 8 coarse groups on this surface
            (index 0 unused), the later official protocol's ``Mean_Distances``.
        flip_uv: (24, 256, 256, 2) float32 or None; ``flip_uv[i-1, row, col]`` is the (U', V') in
            chart ``CHART_FLIP[i]`` of the mirror image of the point (U=col/255, V=row/255) of chart i.
        geodesic_factory: builds the geodesic distance object on first use (it can be costly).
        flip_factory: builds ``flip_uv`` on first use when it is not given.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray
    chart_faces: np.ndarray
    chart_uv: np.ndarray
    chart_vertex_mesh: np.ndarray
    kappa_groups: np.ndarray | None = None
    flip_uv: np.ndarray | None = None
    geodesic_factory: Callable[["BodySurface"], "GeodesicDistance"] | None = None
    flip_factory: Callable[["BodySurface"], np.ndarray] | None = None
    _geodesics: "GeodesicDistance | None" = field(default=None, repr=False)
    _kdtrees: dict = field(default_factory=dict, repr=False)
    _chart_vertex_part: np.ndarray | None = field(default=None, repr=False)
    _incident: tuple | None = field(default=None, repr=False)
    _snap_table: np.ndarray | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ basic properties
    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @property
    def chart_vertex_part(self) -> np.ndarray:
        """(M,) int64 chart of every chart vertex (derived from the faces once)."""
        if self._chart_vertex_part is None:
            part = np.zeros(len(self.chart_uv), dtype=np.int64)
            part[self.chart_faces.ravel()] = np.repeat(self.face_part, 3)
            self._chart_vertex_part = part
        return self._chart_vertex_part

    @property
    def geodesics(self) -> "GeodesicDistance":
        """The geodesic distance object, built (and cached on disk by the factory) on first use."""
        if self._geodesics is None:
            if self.geodesic_factory is None:
                raise RuntimeError(f"surface {self.name!r} has no geometry for geodesics")
            self._geodesics = self.geodesic_factory(self)
        return self._geodesics

    # ------------------------------------------------------------------ surface point -> IUV
    def iuv_from_points(self, face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surface points -> (I (N,) int64, UV (N, 2) float64)."""
        face = np.asarray(face, dtype=np.int64)
        uv = np.einsum("nk,nkc->nc", np.asarray(bary, dtype=np.float64), self.chart_uv[self.chart_faces[face]])
        return self.face_part[face], uv

    def xyz_from_points(self, face: np.ndarray, bary: np.ndarray, vertices: np.ndarray | None = None) -> np.ndarray:
        """Surface points -> (N, 3) positions on ``vertices`` (default: the rest pose)."""
        verts = self.vertices if vertices is None else np.asarray(vertices)
        return np.einsum("nk,nkc->nc", np.asarray(bary, dtype=np.float64), verts[self.faces[np.asarray(face)]])

    # ------------------------------------------------------------------ IUV -> surface point
    def points_from_iuv(self, charts: np.ndarray, uv: np.ndarray, candidates: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """IUV -> the exact surface point: the triangle of chart I that contains (U, V).

        Candidate triangles are those around the ``candidates`` chart vertices nearest in UV, which
        stays fast however unevenly a chart is sampled. A (U, V) in a gap of the chart goes to the
        best candidate with its barycentrics clamped onto it. Returns (face (N,) int64, bary (N, 3)).
        """
        charts = np.asarray(charts, dtype=np.int64).ravel()
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        self._check_charts(charts)
        start, incident = self._incident_faces()
        face = np.zeros(len(uv), dtype=np.int64)
        bary = np.zeros((len(uv), 3))
        for part in np.unique(charts):
            sel = np.flatnonzero(charts == part)
            tree, ids = self._chart_kdtree(int(part))
            k = min(candidates, len(ids))
            _, near = tree.query(uv[sel], k=k)
            verts = ids[np.asarray(near).reshape(len(sel), k)].ravel()
            counts = start[verts + 1] - start[verts]
            owner = np.repeat(np.repeat(np.arange(len(sel)), k), counts)
            offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            cand = incident[np.repeat(start[verts], counts) + offs]
            b = _barycentric_2d(uv[sel][owner], self.chart_uv[self.chart_faces[cand]])
            score = b.min(axis=1)  # >= 0 inside the triangle
            first = _first_argmax_per_group(score, owner, len(sel))
            face[sel[owner[first]]] = cand[first]
            best = np.clip(b[first], 0.0, None)
            bary[sel[owner[first]]] = best / best.sum(axis=1, keepdims=True)
        return face, bary

    def nearest_chart_vertex(self, charts: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """IUV -> the chart vertex of chart I nearest to (U, V) in UV space (N,) int64.

        This is the snapping of the official evaluator (``findAllClosestVertsUV``).
        """
        charts = np.asarray(charts, dtype=np.int64)
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        self._check_charts(charts)
        out = np.zeros(len(charts), dtype=np.int64)
        for part in np.unique(charts):
            tree, ids = self._chart_kdtree(int(part))
            sel = charts == part
            _, j = tree.query(uv[sel])
            out[sel] = ids[j]
        return out

    def snap_to_mesh_vertex(self, charts: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """IUV -> mesh vertex (N,) int64 of the nearest chart vertex (the official evaluator's snap)."""
        return self.chart_vertex_mesh[self.nearest_chart_vertex(charts, uv)]

    def snap_table(self, build: bool = True) -> np.ndarray | None:
        """(24, 256, 256) int32: ``nearest_chart_vertex`` of every uint8-quantised IUV, built once.

        ``table[I - 1, v8, u8]`` is the chart vertex nearest to (U, V) = (u8 / 255, v8 / 255) in
        chart I (row = V, column = U, as ``flip_uv``). Predictions come as uint8 (U, V), so their
        snap becomes a lookup; the values are those of the k-d tree query, bit for bit. A chart
        without vertices on this surface has -1. Building it takes ~0.6 s on Anny (1.6 M k-d tree
        queries); with ``build=False`` it is returned only if already built, else None.
        """
        if self._snap_table is None and build:
            q = np.arange(256, dtype=np.float64) / 255.0
            uv = np.stack([np.tile(q, 256), np.repeat(q, 256)], axis=1)  # row-major (v8, u8)
            table = np.full((NUM_CHARTS, 256, 256), -1, dtype=np.int32)
            present = set(np.unique(self.chart_vertex_part).tolist())
            for part in range(1, NUM_CHARTS + 1):
                if part in present:
                    table[part - 1] = self.nearest_chart_vertex(np.full(len(uv), part), uv).reshape(256, 256)
            self._snap_table = table
        return self._snap_table

    # ------------------------------------------------------------------ symmetry
    def symmetry_tables(self) -> np.ndarray:
        """``flip_uv`` (24, 256, 256, 2), built by ``flip_factory`` on first use."""
        if self.flip_uv is None and self.flip_factory is not None:
            self.flip_uv = self.flip_factory(self)
        if self.flip_uv is None:
            raise RuntimeError(f"surface {self.name!r} has no symmetry tables")
        return self.flip_uv

    def flip_iuv(self, charts: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mirror left/right: (I, UV) of a point -> (I', UV') of its mirror image on the body.

        Background (I = 0) stays background with its UV untouched.
        """
        tables = self.symmetry_tables()
        charts = np.asarray(charts, dtype=np.int64)
        uv = np.asarray(uv, dtype=np.float64)
        flat_c = charts.reshape(-1)
        flat_uv = uv.reshape(-1, 2).copy()
        fg = flat_c > 0
        col = np.clip((flat_uv[fg, 0] * 255).astype(np.int64), 0, 255)
        row = np.clip((flat_uv[fg, 1] * 255).astype(np.int64), 0, 255)
        flat_uv[fg] = tables[flat_c[fg] - 1, row, col]
        return CHART_FLIP[charts], flat_uv.reshape(uv.shape)

    # ------------------------------------------------------------------ kappa
    def kappa_per_chart(self, mode: str = "per-part") -> np.ndarray:
        """(25,) float64 kappa normaliser for each chart (index 0 unused).

        ``mode`` is "per-part" (the later official protocol, computed on this surface) or
        "paper" (the fixed 0.255 of the CVPR 2018 paper).
        """
        if mode == "paper":
            k = np.full(NUM_CHARTS + 1, PAPER_KAPPA)
        elif mode == "per-part":
            if self.kappa_groups is None:
                raise RuntimeError(f"surface {self.name!r} has no per-part kappa")
            k = np.asarray(self.kappa_groups, dtype=np.float64)[CHART_TO_KAPPA_GROUP]
        else:
            raise ValueError(f"kappa mode must be 'per-part' or 'paper', got {mode!r}")
        k[0] = np.inf
        return k

    # ------------------------------------------------------------------ internals
    def _check_charts(self, charts: np.ndarray) -> None:
        if charts.size and (charts.min() < 1 or charts.max() > NUM_CHARTS):
            raise ValueError(f"chart indices must be in 1..{NUM_CHARTS}, got {charts.min()}..{charts.max()}")

    def _chart_kdtree(self, part: int) -> tuple[cKDTree, np.ndarray]:
        if part not in self._kdtrees:
            ids = np.flatnonzero(self.chart_vertex_part == part)
            self._kdtrees[part] = (cKDTree(self.chart_uv[ids]), ids)
        return self._kdtrees[part]

    def _incident_faces(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR lists of the faces around every chart vertex."""
        if self._incident is None:
            flat = self.chart_faces.ravel()
            order = np.argsort(flat, kind="stable")
            counts = np.bincount(flat, minlength=len(self.chart_uv))
            self._incident = (np.r_[0, np.cumsum(counts)], order // 3)
        return self._incident


def _first_argmax_per_group(score: np.ndarray, group: np.ndarray, num_groups: int) -> np.ndarray:
    """Index of the best score of each group; ``group`` is sorted and covers 0..num_groups-1."""
    starts = np.searchsorted(group, np.arange(num_groups))
    best = np.maximum.reduceat(score, starts)
    hit = np.flatnonzero(score == best[group])
    _, first = np.unique(group[hit], return_index=True)
    return hit[first]


def _barycentric_2d(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, 3) of points p (N, 2) in triangles tri (N, 3, 2)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-300, 1e-300, den)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.stack([1.0 - w1 - w2, w1, w2], axis=1)
