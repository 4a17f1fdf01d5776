"""Flattening one chart (a disc-like patch of triangles) to the plane, and measuring the result.

``flatten_chart`` tries least-squares conformal maps (LSCM, Lévy et al. 2002: low angle
distortion, free boundary) and keeps them if no triangle flips and the boundary does not cross
itself; otherwise it falls back to a Tutte embedding with mean-value weights on a circle, which is
injective for any disc (Floater 2003), at the cost of more area distortion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve


@dataclass
class ChartStats:
    """Distortion of one chart; the charts are scaled so that total UV area / 3D area = 1."""

    method: str              # "lscm" or "tutte"
    num_faces: int
    euler: int               # V - E + F of the patch (1 for a disc)
    flipped: int             # UV triangles with non-positive signed area
    area_distortion: float   # mean |log2(uv area / 3D area)| over triangles, area-weighted
    angle_distortion: float  # mean conformal distortion sigma_max / sigma_min, area-weighted (1 = conformal)
    angle_distortion_p95: float


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered boundary vertex loops of a triangle patch (local vertex ids)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = e[cnt[inv.ravel()] == 1]  # directed boundary edges, consistently oriented
    nxt = dict(zip(boundary[:, 0].tolist(), boundary[:, 1].tolist()))
    loops, seen = [], set()
    for start in boundary[:, 0].tolist():
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.array(loop))
    return sorted(loops, key=len, reverse=True)


def euler_characteristic(faces: np.ndarray) -> int:
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    return len(np.unique(faces)) - len(edges) + len(faces)


def lscm(verts: np.ndarray, faces: np.ndarray, pin: tuple[int, int]) -> np.ndarray:
    """Least-squares conformal map of a patch with two pinned vertices -> (V, 2) UV."""
    n = len(verts)
    p0, p1, p2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    # Local orthonormal frame per triangle.
    ex = p1 - p0
    ex /= np.linalg.norm(ex, axis=1, keepdims=True) + 1e-30
    nrm = np.cross(p1 - p0, p2 - p0)
    area2 = np.linalg.norm(nrm, axis=1) + 1e-30
    ey = np.cross(nrm / area2[:, None], ex)
    x = np.stack([np.zeros(len(faces)), np.einsum("ij,ij->i", p1 - p0, ex), np.einsum("ij,ij->i", p2 - p0, ex)], 1)
    y = np.stack([np.zeros(len(faces)), np.zeros(len(faces)), np.einsum("ij,ij->i", p2 - p0, ey)], 1)
    # W_j = (x_{j+2} - x_{j+1}) + i (y_{j+2} - y_{j+1}) / sqrt(2 area)
    wr = (np.roll(x, -2, axis=1) - np.roll(x, -1, axis=1)) / np.sqrt(area2)[:, None]
    wi = (np.roll(y, -2, axis=1) - np.roll(y, -1, axis=1)) / np.sqrt(area2)[:, None]
    rows = np.repeat(np.arange(len(faces)), 3)
    cols = faces.ravel()
    mr = sp.csr_matrix((wr.ravel(), (rows, cols)), shape=(len(faces), n))
    mi = sp.csr_matrix((wi.ravel(), (rows, cols)), shape=(len(faces), n))
    a = sp.vstack([sp.hstack([mr, -mi]), sp.hstack([mi, mr])]).tocsc()  # unknowns [u; v]
    pinned = np.array([pin[0], pin[1], pin[0] + n, pin[1] + n])
    pinned_val = np.array([0.0, 1.0, 0.0, 0.0])
    free = np.setdiff1d(np.arange(2 * n), pinned)
    af, ap = a[:, free], a[:, pinned]
    rhs = -(ap @ pinned_val)
    sol = spsolve((af.T @ af).tocsc(), af.T @ rhs)
    out = np.zeros(2 * n)
    out[free], out[pinned] = sol, pinned_val
    return np.stack([out[:n], out[n:]], axis=1)


def tutte_mean_value(verts: np.ndarray, faces: np.ndarray, loop: np.ndarray) -> np.ndarray:
    """Tutte embedding with mean-value weights, boundary on the unit circle by arc length -> (V, 2)."""
    n = len(verts)
    seg = np.linalg.norm(verts[np.roll(loop, -1)] - verts[loop], axis=1)
    t = np.r_[0.0, np.cumsum(seg)[:-1]] / seg.sum() * 2 * np.pi
    rows, cols, vals = [], [], []
    for k in range(3):  # mean-value weight tan(a/2)/|e| for the two edges at each corner
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        eij, eil = verts[j] - verts[i], verts[l] - verts[i]
        lij, lil = np.linalg.norm(eij, axis=1) + 1e-30, np.linalg.norm(eil, axis=1) + 1e-30
        cos = np.clip(np.einsum("ij,ij->i", eij, eil) / (lij * lil), -1, 1)
        half_tan = np.tan(np.arccos(cos) / 2)
        rows += [i, i]
        cols += [j, l]
        vals += [half_tan / lij, half_tan / lil]
    w = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    lap = sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w
    interior = np.setdiff1d(np.arange(n), loop)
    fixed = np.stack([np.cos(t), np.sin(t)], axis=1)
    uv = np.zeros((n, 2))
    uv[loop] = fixed
    a = lap[interior][:, interior].tocsc()
    b = -(lap[interior][:, loop] @ fixed)
    uv[interior] = np.stack([spsolve(a, b[:, 0]), spsolve(a, b[:, 1])], axis=1)
    return uv


def signed_areas(uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


def _segments_cross(loop_uv: np.ndarray) -> bool:
    """True if the closed polyline crosses itself (O(n^2) vectorised; boundaries have < 2k edges)."""
    a, b = loop_uv, np.roll(loop_uv, -1, axis=0)
    n = len(a)
    d = b - a

    def orient(p, q, r):
        return np.sign((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))

    A, B = a[:, None], b[:, None]
    C, D = a[None, :], b[None, :]
    o1, o2 = orient(A, B, C), orient(A, B, D)
    o3, o4 = orient(C, D, A), orient(C, D, B)
    cross = (o1 * o2 < 0) & (o3 * o4 < 0)
    idx = np.arange(n)
    adjacent = (np.abs(idx[:, None] - idx[None, :]) <= 1) | (np.abs(idx[:, None] - idx[None, :]) == n - 1)
    del d
    return bool((cross & ~adjacent).any())


def distortion(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> tuple[float, float, float]:
    """(area distortion, mean angle distortion, p95 angle distortion), area-weighted over triangles."""
    p0, p1, p2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    area3 = 0.5 * np.linalg.norm(np.cross(p1 - p0, p2 - p0), axis=1) + 1e-30
    area2 = np.abs(signed_areas(uv, faces)) + 1e-30
    scale = area2.sum() / area3.sum()
    w = area3 / area3.sum()
    area_dist = float(np.sum(w * np.abs(np.log2(area2 / (area3 * scale)))))
    # Jacobian of the map from the triangle's local 2D frame to UV; ratio of its singular values.
    ex = (p1 - p0) / (np.linalg.norm(p1 - p0, axis=1, keepdims=True) + 1e-30)
    nrm = np.cross(p1 - p0, p2 - p0)
    ey = np.cross(nrm / (np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-30), ex)
    e1 = np.stack([np.einsum("ij,ij->i", p1 - p0, ex), np.zeros(len(faces))], 1)
    e2 = np.stack([np.einsum("ij,ij->i", p2 - p0, ex), np.einsum("ij,ij->i", p2 - p0, ey)], 1)
    src = np.stack([e1, e2], axis=2)  # (F, 2, 2) columns are edges
    dst = np.stack([uv[faces[:, 1]] - uv[faces[:, 0]], uv[faces[:, 2]] - uv[faces[:, 0]]], axis=2)
    jac = dst @ np.linalg.pinv(src)
    s = np.linalg.svd(jac, compute_uv=False)
    ratio = s[:, 0] / np.maximum(s[:, 1], 1e-30)
    order = np.argsort(ratio)
    cdf = np.cumsum(w[order])
    p95 = float(ratio[order][np.searchsorted(cdf, 0.95)])
    return area_dist, float(np.sum(w * ratio)), p95


def flatten_chart(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, ChartStats]:
    """Flatten one patch. ``faces`` index ``verts`` (local ids, every vertex used).

    Returns UV (V, 2), oriented so that every triangle has positive signed area, and its stats.
    """
    loops = boundary_loops(faces)
    if not loops:
        raise ValueError("chart has no boundary (a closed surface cannot be flattened)")
    loop = loops[0]
    # LSCM pins: the two boundary vertices farthest apart.
    bpos = verts[loop]
    i = int(np.argmax(np.linalg.norm(bpos - bpos[0], axis=1)))
    j = int(np.argmax(np.linalg.norm(bpos - bpos[i], axis=1)))
    method = "lscm"
    uv = lscm(verts, faces, (int(loop[i]), int(loop[j])))
    sa = signed_areas(uv, faces)
    if sa.sum() < 0:
        uv[:, 0] = -uv[:, 0]
        sa = -sa
    if (sa <= 0).any() or len(loops) > 1 or _segments_cross(uv[loop]) or not np.isfinite(uv).all():
        method = "tutte"
        uv = tutte_mean_value(verts, faces, loop)
        sa = signed_areas(uv, faces)
        if sa.sum() < 0:
            uv[:, 0] = -uv[:, 0]
            sa = -sa
    area_d, angle_d, angle_p95 = distortion(verts, faces, uv)
    stats = ChartStats(method, len(faces), euler_characteristic(faces), int((sa <= 0).sum()), area_d, angle_d, angle_p95)
    return uv, stats


def fit_unit_square(uv: np.ndarray, faces: np.ndarray, margin: float = 0.01) -> np.ndarray:
    """Rotate to the principal axes (major axis along V) and scale uniformly into [margin, 1-margin]^2.

    Keeps the orientation (positive signed areas stay positive).
    """
    centred = uv - uv.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rot = (centred @ vt.T)[:, ::-1].copy()  # major axis -> V
    if signed_areas(rot, faces).sum() < 0:
        rot[:, 0] = -rot[:, 0]
    lo, hi = rot.min(axis=0), rot.max(axis=0)
    scale = (1 - 2 * margin) / (hi - lo).max()
    return (rot - (lo + hi) / 2) * scale + 0.5


def chart_vertices_with_cuts(faces: np.ndarray, cut_edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chart vertices of a patch whose mesh is slit open along ``cut_edges``.

    Corners of one mesh vertex share a chart vertex when their faces meet across an edge of the
    patch that is not cut; so a vertex on a cut gets one chart vertex per side.

    Args:
        faces: (T, 3) mesh-vertex ids of the patch's faces.
        cut_edges: (C, 2) mesh-vertex pairs to cut along, or None.
    Returns:
        local_faces (T, 3) chart-vertex ids, and chart_vertex_mesh (M,) the mesh vertex of each.
    """
    from scipy.sparse.csgraph import connected_components

    t = len(faces)
    corner = np.arange(3 * t).reshape(t, 3)
    e_v = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e_c = np.concatenate([corner[:, [0, 1]], corner[:, [1, 2]], corner[:, [2, 0]]])
    key = np.sort(e_v, axis=1)
    swapped = e_v[:, 0] > e_v[:, 1]
    e_c = np.where(swapped[:, None], e_c[:, ::-1], e_c)  # corners ordered like the sorted key
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, e_c = key[order], e_c[order]
    pair = np.flatnonzero((key[1:] == key[:-1]).all(axis=1))  # interior edges: rows pair, pair+1
    if cut_edges is not None and len(cut_edges):
        cut = np.sort(np.asarray(cut_edges), axis=1)
        n = int(max(faces.max(), cut.max())) + 1
        is_cut = np.isin(key[pair, 0] * n + key[pair, 1], cut[:, 0] * n + cut[:, 1])
        pair = pair[~is_cut]
    a = np.concatenate([e_c[pair, 0], e_c[pair, 1]])
    b = np.concatenate([e_c[pair + 1, 0], e_c[pair + 1, 1]])
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(3 * t, 3 * t))
    _, comp = connected_components(graph, directed=False)
    _, local = np.unique(comp, return_inverse=True)
    local_faces = local.reshape(t, 3)
    mesh = np.zeros(local.max() + 1, dtype=np.int64)
    mesh[local_faces.ravel()] = faces.ravel()
    return local_faces, mesh
