"""Vectorised NumPy z-buffer rasteriser: exact face ids and perspective-correct barycentrics.

Camera convention (OpenCV): x right, y down, z forward; a point (X, Y, Z) lands at continuous
pixel position ``K @ (X/Z, Y/Z, 1)``; pixel (row r, col c) covers [c, c+1) x [r, r+1) and is
sampled at its centre (c + 0.5, r + 0.5). No anti-aliasing: every pixel gets exactly one face.

How: every triangle's pixel bounding box is expanded into candidate pixels with a ragged
``repeat``/``arange``; edge functions keep the candidates inside the triangle; one sort on
(pixel, depth) keeps the nearest candidate per pixel.
"""
from __future__ import annotations

import numpy as np

NEAR = 1e-3  # metres; triangles with a corner closer than this are dropped (no clipping)


def project(verts_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-space points (N, 3) -> continuous pixel positions (N, 2)."""
    z = verts_cam[:, 2:3]
    xy = verts_cam[:, :2] / np.where(np.abs(z) < 1e-12, 1e-12, z)
    return xy @ K[:2, :2].T + K[:2, 2]


def interpolate(values_t: np.ndarray, corners: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Barycentric interpolation of per-vertex values at N surface points.

    Args:
        values_t: (C, V) per-vertex values, channel-major (one contiguous row per channel:
            ``take`` on 1-D rows is several times faster than gathering (N, 3, C) blocks).
        corners: (N, 3) vertex indices of each point's face; bary: (N, 3) weights.
    Returns: (N, C) in the dtype of ``values_t``.
    """
    out = np.empty((len(corners), len(values_t)), dtype=values_t.dtype)
    b = bary.astype(values_t.dtype, copy=False)
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    for c, row in enumerate(values_t):
        t = row.take(corners)
        out[:, c] = b0 * t[:, 0] + b1 * t[:, 1] + b2 * t[:, 2]
    return out


def rasterize(
    verts_cam: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    cull_backfaces: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise one triangle mesh.

    Args:
        verts_cam: (V, 3) vertices in camera coordinates (metres, z forward).
        faces: (F, 3) vertex indices, counter-clockwise seen from outside (Anny's winding).
        K: (3, 3) intrinsics.
        cull_backfaces: skip triangles facing away (right for closed meshes; halves the work).

    Returns:
        face_id (H, W) int32, -1 for background; bary (H, W, 3) float32 perspective-correct
        barycentrics of the pixel centre in that face (0 on background); depth (H, W) float32
        camera z (inf on background).
    """
    verts_cam = np.asarray(verts_cam, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    hit_face, hit_pix, hit_bary, hit_z = _visible_fragments(verts_cam, faces, K, height, width, cull_backfaces)
    return _dense(height, width, hit_pix, hit_face, hit_bary, hit_z)


def _dense(height: int, width: int, pix: np.ndarray, face: np.ndarray, bary: np.ndarray, depth: np.ndarray):
    """Sparse fragments at flat pixels ``pix`` -> dense face_id (H, W) int32 (-1 background),
    bary (H, W, 3) float32 and depth (H, W) float32 (inf background)."""
    face_d = np.full(height * width, -1, dtype=np.int32)
    bary_d = np.zeros((height * width, 3), dtype=np.float32)
    depth_d = np.full(height * width, np.inf, dtype=np.float32)
    face_d[pix], bary_d[pix], depth_d[pix] = face, bary, depth
    return face_d.reshape(height, width), bary_d.reshape(height, width, 3), depth_d.reshape(height, width)


def fragments_multi(
    verts_cam: list[np.ndarray],
    faces: np.ndarray | list[np.ndarray],
    K: np.ndarray,
    height: int,
    width: int,
    cull_backfaces: bool | list[bool] = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The visible fragment of every covered pixel of several meshes in one z-buffer (sparse output).

    ``cull_backfaces`` is one flag for all meshes or one per mesh (closed meshes culled, open
    cloth two-sided, in one pass).

    Returns (P = covered pixels, in increasing flat pixel order): pixel (P,) flat index
    ``row * width + col``; instance (P,) index of the mesh; face (P,) face inside that mesh;
    bary (P, 3) float64; depth (P,) float64.
    """
    n = len(verts_cam)
    face_list = [faces] * n if isinstance(faces, np.ndarray) else list(faces)
    if len(face_list) != n:
        raise ValueError(f"{n} meshes but {len(face_list)} face arrays")
    if n == 0:
        return (np.zeros(0, np.int64),) * 3 + (np.zeros((0, 3)), np.zeros(0))
    v_off = np.cumsum([0] + [len(v) for v in verts_cam])
    f_off = np.cumsum([0] + [len(f) for f in face_list])
    all_verts = np.concatenate([np.asarray(v, dtype=np.float64) for v in verts_cam])
    all_faces = np.concatenate([np.asarray(f, dtype=np.int64) + v_off[k] for k, f in enumerate(face_list)])
    if not isinstance(cull_backfaces, bool):
        if len(cull_backfaces) != n:
            raise ValueError(f"{n} meshes but {len(cull_backfaces)} culling flags")
        cull_backfaces = np.repeat(np.asarray(cull_backfaces, dtype=bool), np.diff(f_off))
    gface, pix, bary, z = _visible_fragments(all_verts, all_faces, K, height, width, cull_backfaces)
    inst = np.searchsorted(f_off, gface, side="right") - 1
    return pix, inst, gface - f_off[inst], bary, z


def rasterize_multi(
    verts_cam: list[np.ndarray],
    faces: np.ndarray | list[np.ndarray],
    K: np.ndarray,
    height: int,
    width: int,
    cull_backfaces: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise several meshes into one z-buffer (people occluding each other).

    Args:
        verts_cam: list of (V_k, 3) camera-space vertices, one per mesh.
        faces: one (F, 3) array shared by all meshes, or a list of (F_k, 3).

    Returns:
        instance (H, W) int32: index of the mesh in ``verts_cam``, -1 for background;
        face_id (H, W) int32: face index inside that mesh (-1 background); bary, depth as
        in :func:`rasterize`.
    """
    pix, inst, face, b, z = fragments_multi(verts_cam, faces, K, height, width, cull_backfaces)
    instance = np.full(height * width, -1, dtype=np.int32)
    instance[pix] = inst
    return (instance.reshape(height, width),) + _dense(height, width, pix, face, b, z)


def _visible_fragments(verts_cam, faces, K, height, width, cull_backfaces):
    """Nearest fragment per covered pixel: (face (P,), flat pixel (P,), bary (P, 3), z (P,)).

    ``cull_backfaces``: bool, or (F,) bool per face.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))
    if len(faces) == 0:
        return empty
    xy = project(verts_cam, K)
    # Shift so that pixel centres sit on integer coordinates: centre of column c is c + 0.5.
    px, py, z = xy[:, 0] - 0.5, xy[:, 1] - 0.5, verts_cam[:, 2]
    f0, f1, f2 = faces[:, 0], faces[:, 1], faces[:, 2]
    xa, xb, xc = px[f0], px[f1], px[f2]
    ya, yb, yc = py[f0], py[f1], py[f2]
    # Twice the signed screen area; with y down, a counter-clockwise (front-facing) triangle is negative.
    area = (xb - xa) * (yc - ya) - (xc - xa) * (yb - ya)
    x0 = np.ceil(np.minimum(np.minimum(xa, xb), xc))
    x1 = np.floor(np.maximum(np.maximum(xa, xb), xc))
    y0 = np.ceil(np.minimum(np.minimum(ya, yb), yc))
    y1 = np.floor(np.maximum(np.maximum(ya, yb), yc))
    keep = np.minimum(np.minimum(z[f0], z[f1]), z[f2]) > NEAR
    per_face = not isinstance(cull_backfaces, (bool, np.bool_))
    if per_face:
        keep &= np.where(cull_backfaces, area < 0, area != 0)
    else:
        keep &= area < 0 if cull_backfaces else area != 0
    keep &= (x1 >= 0) & (y1 >= 0) & (x0 <= width - 1) & (y0 <= height - 1) & (x0 <= x1) & (y0 <= y1)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return empty
    x0 = np.maximum(x0[idx], 0).astype(np.int64)
    x1 = np.minimum(x1[idx], width - 1).astype(np.int64)
    y0 = np.maximum(y0[idx], 0).astype(np.int64)
    y1 = np.minimum(y1[idx], height - 1).astype(np.int64)
    nx = x1 - x0 + 1
    count = nx * (y1 - y0 + 1)
    # Ragged expansion: candidate j of triangle t is pixel (x0 + j % nx, y0 + j // nx).
    tri = np.repeat(idx, count)
    start = np.repeat(np.cumsum(count) - count, count)
    j = np.arange(len(tri)) - start
    nxt = np.repeat(nx, count)
    cy, cx = np.divmod(j, nxt)
    cx += np.repeat(x0, count)
    cy += np.repeat(y0, count)
    # Edge functions: w_k is the (signed) area opposite corner k; all share the sign of `area`.
    xa, xb, xc, ya, yb, yc = xa[tri], xb[tri], xc[tri], ya[tri], yb[tri], yc[tri]
    w0 = (xc - xb) * (cy - yb) - (yc - yb) * (cx - xb)
    w1 = (xa - xc) * (cy - yc) - (ya - yc) * (cx - xc)
    w2 = (xb - xa) * (cy - ya) - (yb - ya) * (cx - xa)
    if per_face or not cull_backfaces:
        s = np.sign(area[tri])
        inside = np.flatnonzero((w0 * s >= 0) & (w1 * s >= 0) & (w2 * s >= 0))
    else:  # all culled, area < 0: inside means every w <= 0
        inside = np.flatnonzero((w0 <= 0) & (w1 <= 0) & (w2 <= 0))
    tri, pix = tri[inside], cy[inside] * width + cx[inside]
    # Perspective-correct barycentrics: screen-space weights divided by depth, renormalised.
    inv_z = np.stack([w0[inside] / z[faces[tri, 0]], w1[inside] / z[faces[tri, 1]], w2[inside] / z[faces[tri, 2]]], 1)
    norm = inv_z.sum(axis=1)
    frag_z = area[tri] / norm
    # Z-test without sorting: the nearest depth per pixel by an unbuffered minimum, then per pixel
    # the first candidate at that depth (ties on shared edges), then pixels in increasing order.
    zbuf = np.full(height * width, np.inf)
    np.minimum.at(zbuf, pix, frag_z)
    win = np.flatnonzero(frag_z == zbuf[pix])
    pick = np.full(height * width, len(frag_z), dtype=np.int64)
    np.minimum.at(pick, pix[win], win)
    first = pick[pick < len(frag_z)]
    bary = inv_z[first] / norm[first, None]
    return tri[first], pix[first], bary, frag_z[first]
