"""How garment vertices hang on the body: bindings that follow any pose and body shape.

Two kinds, both indexing the body's vertices (``body_vertex_ids`` order, the hm08 body):

* :class:`ShellBinding` - a vertex of an offset shell sits ``offset`` metres out along the body's
  smooth vertex normal at one body vertex, or between two such points where a hem cuts a body
  edge (tight tops, trousers, shoes, short hair).
* :class:`FrameBinding` - a vertex sits at a barycentric point of a triangle of body vertices plus
  an offset expressed in that triangle's own frame (edge, normal, their cross product), so the
  offset turns with the limb (MakeHuman ``.mhclo`` assets, skirts, long hair, hat brims). A vertex
  may blend several such anchors (a skirt hem between the two legs follows both).

Everything is vectorised NumPy; per person the work is a few gathers and cross products.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree


@dataclass
class ShellBinding:
    """N shell vertices, each a blend of two offset body vertices (equal ids away from hems).

    vertex (N, 2) body vertex ids; weight (N, 2) blend weights (sum 1); offset (N, 2) metres
    along each vertex's normal.
    """

    vertex: np.ndarray
    weight: np.ndarray
    offset: np.ndarray

    def evaluate(self, body: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Positions (N, 3) on the body ``body`` (V, 3) with unit vertex normals ``normals`` (V, 3)."""
        a, b = self.vertex[:, 0], self.vertex[:, 1]
        pa = np.take(body, a, axis=0) + self.offset[:, :1] * np.take(normals, a, axis=0)
        pb = np.take(body, b, axis=0) + self.offset[:, 1:] * np.take(normals, b, axis=0)
        return pa + self.weight[:, 1:] * (pb - pa)


@dataclass
class FrameBinding:
    """N vertices, each a blend of A anchors.

    tri (N, A, 3) body vertex ids; weight (N, A, 3) barycentric weights; local (N, A, 3) offset in
    the triangle frame (edge 0->1, in-plane perpendicular, normal); blend (N, A) sums to 1.
    """

    tri: np.ndarray
    weight: np.ndarray
    local: np.ndarray
    blend: np.ndarray
    size_pairs: np.ndarray | None = None  # (P, 2) body vertex pairs whose distance sizes the offsets
    size_ref: np.ndarray | None = None    # (P,) their distances where ``local`` was measured

    def evaluate(self, body: np.ndarray, normals: np.ndarray | None = None) -> np.ndarray:
        """Positions (N, 3) on the body ``body`` (V, 3) (``normals`` unused; same signature as shells).

        With ``size_pairs``, offsets grow and shrink with the body: times the mean ratio of the
        pairs' distances on ``body`` to ``size_ref`` (MakeHuman's scale references).
        """
        corners = np.take(body, self.tri, axis=0)  # (N, A, 3, 3)
        frame = triangle_frames(corners)  # (N, A, 3, 3) rows: e1, e2, n
        local = self.local
        if self.size_pairs is not None and len(self.size_pairs):
            d = np.linalg.norm(body[self.size_pairs[:, 0]] - body[self.size_pairs[:, 1]], axis=1)
            local = local * float(np.clip(np.mean(d / self.size_ref), 0.5, 2.0))
        pos = (self.weight[..., None] * corners + local[..., None] * frame).sum(axis=2)
        return (self.blend[..., None] * pos).sum(axis=1)

    @staticmethod
    def single(tri: np.ndarray, weight: np.ndarray, local: np.ndarray) -> "FrameBinding":
        """One anchor per vertex: tri, weight, local (N, 3)."""
        n = len(tri)
        return FrameBinding(tri[:, None], weight[:, None], local[:, None], np.ones((n, 1)))


def clip_faces(faces: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The part of a triangle mesh where a per-vertex field is >= 0, cut exactly along its zero line.

    Args:
        faces: (F, 3) CCW triangles; level: (V,) field (metres, so that the cut is geometric).
    Returns:
        ends (N, 2) vertex ids and t (N,) in [0, 1): the N vertices of the clipped mesh lie at
        ``(1 - t) * vertex[ends[:, 0]] + t * vertex[ends[:, 1]]`` (t = 0 for original vertices);
        tris (T, 3) triangles over those N vertices, same winding.
    """
    inside = level >= 0
    flags = inside.view(np.uint8)[faces]  # (F, 3)
    n_in = flags.sum(axis=1, dtype=np.int8)
    whole = faces[n_in == 3]
    is_cut = (n_in == 1) | (n_in == 2)
    cut, flags, n_cut = faces[is_cut], flags[is_cut], n_in[is_cut]
    # Rotate each cut face so that the vertex alone on its side comes first (keeps the winding).
    odd = np.where(n_cut == 1, np.argmax(flags, axis=1), np.argmin(flags, axis=1))
    rows = np.arange(len(cut))[:, None]
    cut = cut[rows, (odd[:, None] + np.arange(3)) % 3]
    one = inside[cut[:, 0]]  # True: one vertex inside; False: two inside
    # Crossing points, one per cut edge (shared by the two faces of the edge).
    edges = np.concatenate([cut[:, [0, 1]], cut[:, [0, 2]]])
    key = np.sort(edges, axis=1)
    uniq, inv = np.unique(key[:, 0] * (level.size + 1) + key[:, 1], return_inverse=True)
    ea, eb = uniq // (level.size + 1), uniq % (level.size + 1)
    orig = np.flatnonzero(np.bincount(np.concatenate([whole.ravel(), cut[one, 0], cut[~one][:, 1:].ravel()]),
                                      minlength=level.size))
    remap = np.zeros(level.size, dtype=np.int64)
    remap[orig] = np.arange(len(orig))
    x01 = len(orig) + inv[: len(cut)]
    x02 = len(orig) + inv[len(cut):]
    c0, c1, c2 = remap[cut[:, 0]], remap[cut[:, 1]], remap[cut[:, 2]]
    tris = np.concatenate([
        remap[whole],
        np.stack([c0, x01, x02], axis=1)[one],
        np.stack([x01, c1, c2], axis=1)[~one],
        np.stack([x01, c2, x02], axis=1)[~one],
    ])
    # Inside end first, t from it towards the outside end.
    a_in = inside[ea]
    e0, e1 = np.where(a_in, ea, eb), np.where(a_in, eb, ea)
    t = np.clip(level[e0] / (level[e0] - level[e1] + 1e-12), 0.0, 0.999)
    ends = np.concatenate([np.stack([orig, orig], axis=1), np.stack([e0, e1], axis=1)])
    return ends, np.concatenate([np.zeros(len(orig)), t]), tris


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (several times faster than ``np.cross`` on small rows)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt((x * x).sum(axis=-1, keepdims=True)) + 1e-12)


def triangle_frames(corners: np.ndarray) -> np.ndarray:
    """Orthonormal frames (..., 3, 3) (rows e1, e2, n) of triangles with corners (..., 3, 3)."""
    a = corners[..., 1, :] - corners[..., 0, :]
    b = corners[..., 2, :] - corners[..., 0, :]
    e1 = _unit(a)
    n = _unit(cross(a, b))
    return np.stack([e1, cross(n, e1), n], axis=-2)


def bind_to_frames(points: np.ndarray, rest: np.ndarray, tri: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Local offsets (N, 3) that put ``points`` (N, 3) at their anchors (tri, weight (N, 3)) on ``rest``."""
    corners = rest[tri]
    frame = triangle_frames(corners)
    delta = points - (weight[..., None] * corners).sum(axis=1)
    return (frame * delta[:, None, :]).sum(axis=2)


def vertex_normal_operator(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """(V, F) incidence matrix: ``op @ face_normals`` sums area-weighted face normals per vertex."""
    nf = len(faces)
    return sp.csr_matrix(
        (np.ones(3 * nf), (faces.ravel(), np.repeat(np.arange(nf), 3))), shape=(num_vertices, nf)
    )


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, op: sp.csr_matrix) -> np.ndarray:
    """Unit smooth vertex normals (V, 3) of a mesh; ``op`` from :func:`vertex_normal_operator`."""
    # Channel-major gathers (1-D ``take``) are several times faster than gathering (F, 3) rows.
    vt = np.ascontiguousarray(vertices.T)
    ft = np.ascontiguousarray(faces.T)
    a = np.stack([vt[c].take(ft[1]) - vt[c].take(ft[0]) for c in range(3)], axis=1)
    b = np.stack([vt[c].take(ft[2]) - vt[c].take(ft[0]) for c in range(3)], axis=1)
    return _unit(op @ cross(a, b))


def closest_points(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, k: int = 12
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest surface point of a triangle mesh for each query point.

    Candidates are the faces around the ``k`` nearest vertices (exact for meshes whose triangles
    are small against the query distance, as the body is).
    Returns face (N,) int64, barycentric weights (N, 3), distance (N,).
    """
    n = len(points)
    vf = sp.csr_matrix((np.ones(faces.size), (faces.ravel(), np.repeat(np.arange(len(faces)), 3))),
                       shape=(len(vertices), len(faces)))
    _, near = cKDTree(vertices).query(points, k=k)
    # Candidate faces per query: the union of faces around its k nearest vertices (ragged -> padded).
    rows = vf[near.ravel()]
    counts = np.diff(rows.indptr).reshape(n, k).sum(axis=1)
    cand_face = rows.indices
    cand_query = np.repeat(np.arange(n), counts)
    bary, dist = _closest_on_triangles(points[cand_query], vertices[faces[cand_face]])
    order = np.lexsort((dist, cand_query))
    first = order[np.r_[True, cand_query[order][1:] != cand_query[order][:-1]]]
    return cand_face[first], bary[first], dist[first]


def height_over_surface(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray):
    """Nearest surface point of each point and how far the point sits outside the surface.

    Returns face (N,) and bary (N, 3) of the nearest surface point, foot (N, 3) its position,
    normal (N, 3) the outward unit normal of its face (CCW winding), height (N,) the signed
    distance along that normal (negative: inside).
    """
    face, bary, _ = closest_points(points, vertices, faces)
    corners = vertices[faces[face]]
    foot = (bary[..., None] * corners).sum(axis=1)
    normal = triangle_frames(corners)[:, 2]
    return face, bary, foot, normal, ((points - foot) * normal).sum(axis=1)


def _closest_on_triangles(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentrics (N, 3) of the closest point of triangle ``tri`` (N, 3, 3) to ``p`` (N, 3) and its distance."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac = b - a, c - a
    # Unconstrained projection onto the plane, then clamp by checking the three edges.
    d00 = (ab * ab).sum(1)
    d01 = (ab * ac).sum(1)
    d11 = (ac * ac).sum(1)
    ap = p - a
    d20 = (ap * ab).sum(1)
    d21 = (ap * ac).sum(1)
    den = d00 * d11 - d01 * d01 + 1e-20
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    bary = np.stack([1 - v - w, v, w], axis=1)
    inside = (bary >= 0).all(axis=1)
    best = np.where(inside[:, None], bary, 0.0)
    best_d = np.where(inside, np.linalg.norm(p - (a + v[:, None] * ab + w[:, None] * ac), axis=1), np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):  # closest point on each edge
        e0, e1 = tri[:, i], tri[:, j]
        e = e1 - e0
        t = np.clip(((p - e0) * e).sum(1) / ((e * e).sum(1) + 1e-20), 0, 1)
        d = np.linalg.norm(p - (e0 + t[:, None] * e), axis=1)
        better = ~inside & (d < best_d)
        cand = np.zeros_like(bary)
        cand[:, i] = 1 - t
        cand[:, j] = t
        best = np.where(better[:, None], cand, best)
        best_d = np.where(better, d, best_d)
    return best, best_d
