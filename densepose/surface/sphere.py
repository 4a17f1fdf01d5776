"""A sphere cut into 24 charts, with exact (great-circle) geodesics: a test surface.

Charts 1 and 2 are the polar caps (mirror-symmetric, like the torso charts); the band between
them is cut into 22 sectors of longitude, paired across the plane x = 0 like the left and right
charts of a body. Everything builds in milliseconds, so tests of the metric, the model targets
and the flips can run without building the Anny surface.
"""
from __future__ import annotations

import numpy as np

from densepose.surface.base import BodySurface
from densepose.surface.charts import signed_areas
from densepose.surface.kappa import compute_kappa_groups
from densepose.surface.parts import CHART_FLIP


class SphereGeodesics:
    """Exact geodesic distances on a sphere of radius ``radius`` centred at the origin."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, radius: float):
        self.vertices, self.faces, self.radius = vertices, faces, radius

    def _arc(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        return self.radius * np.arccos(np.clip(np.einsum("ij,ij->i", p, q), -1.0, 1.0))

    def between_vertices(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._arc(self.vertices[np.asarray(a).ravel()], self.vertices[np.asarray(b).ravel()])

    def between_points(self, face_a, bary_a, face_b, bary_b) -> np.ndarray:
        pa = np.einsum("nk,nkc->nc", np.asarray(bary_a).reshape(-1, 3), self.vertices[self.faces[np.asarray(face_a).ravel()]])
        pb = np.einsum("nk,nkc->nc", np.asarray(bary_b).reshape(-1, 3), self.vertices[self.faces[np.asarray(face_b).ravel()]])
        return self._arc(pa, pb)


def sphere_surface(radius: float = 0.3, rings: int = 24, sectors_per_chart: int = 2, cap_rings: int = 4) -> BodySurface:
    """The 24-chart sphere. ``rings`` latitude bands; caps are the first/last ``cap_rings`` bands."""
    from densepose.surface.symmetry import build_flip_tables

    nlon = 22 * sectors_per_chart
    colat = np.linspace(0, np.pi, rings + 1)[1:-1]
    lon = np.arange(nlon) * 2 * np.pi / nlon
    ring = np.stack([np.outer(np.sin(colat), np.sin(lon)), np.outer(np.sin(colat), np.cos(lon)),
                     np.repeat(np.cos(colat)[:, None], nlon, axis=1)], axis=-1).reshape(-1, 3)
    verts = radius * np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]])
    north, south = 0, len(verts) - 1

    def vid(i, j):  # ring i (0-based), column j
        return 1 + i * nlon + (j % nlon)

    faces = []
    for j in range(nlon):
        faces.append([north, vid(0, j), vid(0, j + 1)])
        faces.append([south, vid(rings - 2, j + 1), vid(rings - 2, j)])
    for i in range(rings - 2):
        for j in range(nlon):
            faces.append([vid(i, j), vid(i + 1, j), vid(i + 1, j + 1)])
            faces.append([vid(i, j), vid(i + 1, j + 1), vid(i, j + 1)])
    faces = np.array(faces, dtype=np.int64)
    # Orient outwards.
    c = verts[faces].mean(axis=1)
    n = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    inward = np.einsum("ij,ij->i", n, c) < 0
    faces[inward] = faces[inward][:, ::-1]

    # Labels: caps by the band of the centroid, band sectors by longitude (measured from +Y towards +X).
    c = verts[faces].mean(axis=1) / radius
    band = np.arccos(np.clip(c[:, 2] / np.linalg.norm(c, axis=1), -1, 1)) / np.pi * rings
    lon_c = np.mod(np.arctan2(c[:, 0], c[:, 1]), 2 * np.pi)
    sector = np.floor(lon_c / (2 * np.pi / 22)).astype(np.int64)
    pairs = [(p, CHART_FLIP[p]) for p in range(3, 25, 2)]
    sector_chart = np.zeros(22, dtype=np.int64)
    for k, (a, b) in enumerate(pairs):
        sector_chart[k], sector_chart[21 - k] = a, b
    face_part = np.where(band < cap_rings, 1, np.where(band > rings - cap_rings, 2, sector_chart[sector]))

    # Charts: caps by orthographic projection, sectors by (longitude, height).
    chart_faces = np.zeros_like(faces)
    uvs, meshes, offset = [], [], 0
    zc = np.cos(np.pi * cap_rings / rings)
    for p in range(1, 25):
        fsel = np.flatnonzero(face_part == p)
        local, inv = np.unique(faces[fsel], return_inverse=True)
        q = verts[local] / radius
        if p in (1, 2):
            r = np.sqrt(1 - zc**2)
            uv = np.stack([0.5 + 0.49 * q[:, 0] / r, 0.5 + 0.49 * q[:, 1] / r], axis=1)
        else:
            k = int(np.flatnonzero(sector_chart == p)[0])
            start = k * 2 * np.pi / 22
            rel = np.mod(np.arctan2(q[:, 0], q[:, 1]) - start + np.pi, 2 * np.pi) - np.pi  # seam-safe
            uv = np.stack([0.01 + 0.98 * rel / (2 * np.pi / 22), 0.5 + 0.49 * q[:, 2] / zc], axis=1)
        uv = np.clip(uv, 0, 1)
        if signed_areas(uv, inv.reshape(-1, 3)).sum() < 0:
            uv[:, 0] = 1 - uv[:, 0]
        uvs.append(uv)
        meshes.append(local)
        chart_faces[fsel] = inv.reshape(-1, 3) + offset
        offset += len(local)
    surface = BodySurface(
        name="sphere", vertices=verts, faces=faces, face_part=face_part, chart_faces=chart_faces,
        chart_uv=np.concatenate(uvs), chart_vertex_mesh=np.concatenate(meshes),
        geodesic_factory=lambda s: SphereGeodesics(s.vertices, s.faces, radius), flip_factory=build_flip_tables,
    )
    surface.kappa_groups = compute_kappa_groups(surface, pairs=2000)
    return surface
