"""Garments that hang away from the skin: skirts, dress and coat tails, long hair, hat brims.

A wrap is a grid of rings (rows at given rest heights, columns at given angles around a
vertical axis). Each ring point lies on the outline of a group of body vertices (the farthest
one in that direction within a thin height slab) plus a margin, so the ring hugs the hips and
then hangs straight or flares. Every point is bound (:class:`FrameBinding`) to the outline vertex
it came from; with two groups (left and right leg) it blends both anchors, weighted by which leg
shapes the outline there, so a hem between the legs follows both when they part.
"""
from __future__ import annotations

import functools

import numpy as np

from densepose.synth.garments_bind import FrameBinding, bind_to_frames
from densepose.synth.garments_shells import Garment
from densepose.synth.garments_template import (
    HEAD_CHARTS,
    LOWER_LEG_CHARTS,
    TORSO_CHARTS,
    UPPER_LEG_CHARTS,
    BodyTemplate,
    body_template,
)

SLAB = 0.02  # metres: half-height of the slab of body vertices that shapes one ring


def wrap(t: BodyTemplate, kind: str, groups: tuple[str, ...], rows_z: np.ndarray, margin: np.ndarray,
         angles: np.ndarray, closed: bool, row_weight: np.ndarray | None = None, tight: bool = False,
         hem_lift: np.ndarray | None = None) -> Garment | None:
    """A ring-grid garment around body vertex groups.

    Args:
        groups: G names of body vertex groups (:func:`_by_height`) that shape the outline (and
            carry the cloth).
        rows_z: (R,) rest heights from top to bottom; margin: (R,) metres outside the outline.
        angles: (A,) radians around +Z (0 = the person's left, pi/2 = the back); closed: wrap around.
        row_weight: (R, G) fixed anchor weights per row; None blends by which group shapes the outline.
        hem_lift: (A,) metres: column a ends that far above the last row (a curved, stepped hem).
    """
    v = t.vertices
    R, A, G = len(rows_z), len(angles), len(groups)
    rows_z = np.round(rows_z, 3)  # the outline is cached per rounded shape
    found = _outline(groups, tuple(rows_z.tolist()), tuple(np.round(angles, 4).tolist()))
    if found is None:
        return None
    anchor_vertex, support, centre = found
    support = support.copy()
    direction = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (A, 2)
    if row_weight is not None:  # a group with no weight on a row does not shape it
        support[np.asarray(row_weight)[:, None, :].repeat(A, axis=1) <= 0] = -np.inf
    reach = support.max(axis=2)  # (R, A) outline distance from the centre
    ring = centre[:, None, :] + (reach + margin[:, None])[..., None] * direction[None]
    points = np.concatenate([ring, np.broadcast_to(rows_z[:, None, None], (R, A, 1))], axis=2).reshape(-1, 3)
    if row_weight is None:  # the group that shapes the outline carries the cloth; ties share it
        gap = np.where(np.isfinite(support), support - reach[..., None], -1.0)
        blend = np.exp(gap / 0.01)
    else:
        blend = np.broadcast_to(np.asarray(row_weight, dtype=np.float64)[:, None, :], (R, A, G)).copy()
        blend[~np.isfinite(support)] = 0.0
    blend = (blend / blend.sum(axis=2, keepdims=True)).reshape(-1, G)
    av = anchor_vertex.reshape(-1, G)
    tri, weight = t.anchor_tri[av], t.anchor_weight[av]  # (N, G, 3)
    local = np.stack([bind_to_frames(points, v, tri[:, g], weight[:, g]) for g in range(G)], axis=1)
    faces = _grid_faces(R, A, closed)
    if hem_lift is not None:  # drop the cells below each column's hem
        low = points[faces, 2].min(axis=1)
        col = faces % A
        faces = faces[(low >= rows_z[-1] + np.asarray(hem_lift)[col].max(axis=1) - 1e-9)]
    # Wind the faces counter-clockwise seen from outside (away from the ring centre).
    p = points[faces]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    outward = p.mean(axis=1)[:, :2] - centre[faces[:, 0] // A]
    if ((normal[:, :2] * outward).sum(axis=1) < 0).mean() > 0.5:
        faces = faces[:, ::-1]
    main = blend.argmax(axis=1)  # the anchor that carries most of each vertex
    rows = np.arange(len(points))
    main_vertex = av[rows, main]
    return Garment(kind, faces, FrameBinding(tri, weight, local, blend), tight, t.anchor_face[main_vertex],
                   t.anchor_weight[main_vertex], np.linalg.norm(local[rows, main], axis=1))


@functools.lru_cache(maxsize=256)
def _outline(groups: tuple[str, ...], rows_z: tuple[float, ...], angles: tuple[float, ...]):
    """Per row and angle, each group's outermost vertex (R, A, G) and its distance from the ring
    centre (R, A, G) (-inf where a group has no vertex), and the ring centres (R, 2); None when a
    row meets no vertex. Read-only, cached."""
    v = body_template().vertices
    ids_of = [_by_height(g) for g in groups]
    heights = [v[ids, 2] for ids in ids_of]
    R, A, G = len(rows_z), len(angles), len(groups)
    direction = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (A, 2)
    anchor_vertex = np.zeros((R, A, G), dtype=np.int64)
    support = np.full((R, A, G), -np.inf)
    centre = np.zeros((R, 2))
    for r, z in enumerate(rows_z):
        members = []
        for ids, zs in zip(ids_of, heights):
            half = SLAB
            lo, hi = np.searchsorted(zs, [z - half, z + half])
            while hi - lo < 3 and half < 0.2:  # thin parts: widen the slab
                half *= 2
                lo, hi = np.searchsorted(zs, [z - half, z + half])
            members.append(ids[lo:hi])
        everyone = np.concatenate(members)
        if len(everyone) == 0:
            return None
        centre[r] = v[everyone, :2].mean(axis=0)
        for g, idx in enumerate(members):
            if len(idx) == 0:
                continue
            proj = (v[idx, :2] - centre[r]) @ direction.T  # (n, A)
            best = proj.argmax(axis=0)
            anchor_vertex[r, :, g] = idx[best]
            support[r, :, g] = proj[best, np.arange(A)]
    for a in (anchor_vertex, support, centre):
        a.flags.writeable = False
    return anchor_vertex, support, centre


@functools.lru_cache(maxsize=None)
def _by_height(name: str) -> np.ndarray:
    """Body vertex ids of a named wrap group, sorted by rest height (computed once)."""
    t = body_template()
    v = t.vertices
    if name in ("legs left", "legs right"):
        side = v[:, 0] >= 0 if name == "legs left" else v[:, 0] <= 0
        mask = t.is_chart(TORSO_CHARTS + UPPER_LEG_CHARTS + LOWER_LEG_CHARTS) & side
    elif name == "head":
        mask = t.is_chart(HEAD_CHARTS)
    elif name == "back of head":  # behind the ears, so that hair falls past them
        mask = t.is_chart(HEAD_CHARTS) & (v[:, 1] > t.landmarks["head"][1] + 0.02)
    elif name == "upper back":  # torso and shoulders within a hair's width of the spine
        narrow = np.abs(v[:, 0]) < 0.08 + 0.04 * np.clip((t.landmarks["head"][2] - v[:, 2]) / 0.15, 0, 1)
        mask = t.is_chart(TORSO_CHARTS) & narrow
    else:
        raise ValueError(f"unknown wrap group {name!r}")
    ids = np.flatnonzero(mask)
    return ids[np.argsort(v[ids, 2], kind="stable")]


def _grid_faces(rows: int, cols: int, closed: bool) -> np.ndarray:
    """Two triangles per grid cell of a rows x cols vertex grid (row-major), wrapping columns if closed."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols if closed else cols - 1), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d, e = a + cols, b + cols
    return np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3), np.stack([b, d, e], -1).reshape(-1, 3)]) \
        .reshape(2, -1, 3).transpose(1, 0, 2).reshape(-1, 3)


def skirt(t: BodyTemplate, kind: str, top_z: float, hem_t: float, ease: float, flare: float,
          rows: int = 10, cols: int = 48) -> Garment | None:
    """Skirt or the tail of a dress or coat: from rest height ``top_z`` to ``hem_t`` down the leg.

    ease: metres between the outline and the cloth at the top; flare: extra metres at the hem.
    """
    hip, ankle = t.landmarks["hip"][2], t.landmarks["ankle"][2]
    top_z, hem_z = round(top_z, 2), round(hip - hem_t * (hip - ankle), 2)  # centimetre steps: cached outlines
    rows_z = np.linspace(top_z, hem_z, rows)
    s = (rows_z - top_z) / (hem_z - top_z)
    groups = ("legs left", "legs right")
    angles = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    return wrap(t, kind, groups, rows_z, ease + flare * s ** 1.5, angles, closed=True)


def long_hair(t: BodyTemplate, length_z: float, volume: float, spread: float, lift: float = 0.0,
              rows: int = 14, cols: int = 28) -> Garment | None:
    """A curtain of hair down the back, from above the ears to rest height ``length_z``.

    spread: radians the curtain reaches round the sides from straight behind (up to ~2.2 = to the cheeks);
    lift: metres the ends rise towards the sides (a rounded, layered hem instead of a straight cut).
    """
    head = t.landmarks["head"]
    top_z = head[2] + 0.07
    length_z, spread = round(length_z, 2), round(spread, 1)  # coarse steps: cached outlines
    rows_z = np.linspace(top_z, length_z, rows)
    groups = ("back of head", "upper back")
    neck = t.landmarks["neck"][2]
    w_head = np.clip((rows_z - neck) / (top_z - neck), 0, 1)
    angles = np.pi / 2 + np.linspace(-spread, spread, cols)
    margin = volume * (0.6 + 0.4 * np.linspace(0, 1, rows))
    return wrap(t, "hair", groups, rows_z, margin, angles, closed=False,
                row_weight=np.stack([w_head, 1 - w_head], axis=1),
                hem_lift=lift * np.linspace(-1, 1, cols) ** 2)


def brim(t: BodyTemplate, rim_z: float, offset: float, width: float, front_only: bool,
         cols: int = 40) -> Garment | None:
    """A hat brim (all round) or a cap's peak (front only) at head-relative height ``rim_z``."""
    rim_z, width = round(rim_z, 2), round(width, 2)  # centimetre steps: cached outlines
    z = t.landmarks["head"][2] + rim_z
    if front_only:
        angles = -np.pi / 2 + np.linspace(-1.0, 1.0, cols)
    else:
        angles = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    rows_z = np.array([z, z - 0.15 * width])
    margin = np.array([offset, offset + width])
    return wrap(t, "hat", ("head",), rows_z, margin, angles, closed=not front_only)
