"""Bodies under clothes: which surface a pixel shows and which body point labels it.

Ground-truth rule (DensePose annotators mark the body surface under the clothing). A pixel of a
person's garment or hair has two candidate body points:

* the *ray point*: the first body surface behind the cloth along the pixel's view ray, when it is
  the same person's body at most ``MAX_GAP`` metres behind the cloth;
* the *bound point*: the body point that the nearest garment vertex hangs on, when the garment
  is bound at most ``MAX_GAP`` from it (a shell's offset, a skirt's ease and flare).

The pixel takes the ray point, unless the bound point exists and lies on another coarse part
(the edge of a sleeve in front of the chest belongs to the arm, not to the chest behind it) or
there is no ray point (the edge of loose cloth past the body's outline): then the bound point.
With neither (a skirt hem far from the legs, the ends of long hair) the pixel stays in the
person's instance mask and box, as COCO masks include clothes and hair, but gets I = 0 and no
DensePose point. Where the body itself is visible its I, U, V is the body's own, so a scene
rendered with and without clothes agrees wherever the body shows in both.

The renderer rasterises two z-buffers with :func:`densepose.synth.raster.fragments_multi`: the
bodies alone, and everything else ("covers": garments, hair, props). Both passes hold each
triangle once, so this costs what one combined pass costs, and the body buffer is exactly the
first body surface along every ray.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_GAP = 0.10  # metres along the view ray between a cloth surface and the body point that labels it

Fragments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pix, mesh, face, bary, depth


@dataclass
class Layers:
    """Per covered pixel (P,), in increasing flat pixel order (``row * width + col``).

    pix: flat pixel; depth: camera z of the visible surface; on_cover: the visible surface is a
    cover mesh (else a body); person: index of the person the pixel belongs to (-1: a prop on top);
    cover_mesh, cover_face (-1 where no cover fragment), cover_bary (P, 3): the nearest cover
    fragment; body_person, body_face (-1 where the ray meets no body), body_bary (P, 3): the first
    body surface along the ray; gap: metres from the visible surface back to that body point
    (0 on a visible body, inf without one); labelled: the pixel's I, U, V are those of
    (body_face, body_bary) under the rule above.
    """

    pix: np.ndarray
    depth: np.ndarray
    on_cover: np.ndarray
    person: np.ndarray
    cover_mesh: np.ndarray
    cover_face: np.ndarray
    cover_bary: np.ndarray
    body_person: np.ndarray
    body_face: np.ndarray
    body_bary: np.ndarray
    gap: np.ndarray
    labelled: np.ndarray
    bound: np.ndarray


def ray_lengths(K: np.ndarray, pix: np.ndarray, width: int) -> np.ndarray:
    """Metres along the view ray per metre of camera depth at flat pixels ``pix`` (P,) (pixel centres)."""
    row, col = np.divmod(pix, width)
    x = (col + 0.5 - K[0, 2]) / K[0, 0]
    y = (row + 0.5 - K[1, 2]) / K[1, 1]
    return np.sqrt(1.0 + x * x + y * y)


def compose_layers(body: Fragments, cover: Fragments, cover_owner: np.ndarray, K: np.ndarray, height: int,
                   width: int, max_gap: float = MAX_GAP, garments: list | None = None,
                   body_face_part: np.ndarray | None = None) -> Layers:
    """Merge the body and cover z-buffers and apply the ground-truth rule.

    Args:
        body: ``fragments_multi`` output of the bodies alone (mesh index = person index).
        cover: ``fragments_multi`` output of the cover meshes (garments, hair, props).
        cover_owner: (M,) person index of each cover mesh, -1 for props.
        K: (3, 3) intrinsics; height, width: image size.
        garments: (M,) per cover mesh its ``GarmentMesh`` (faces and bound body points) or None
            (props); without it only ray points label cloth.
        body_face_part: (F,) DensePose chart of each body face (``surface.face_part``); without it
            a ray point is never overruled by the bound point.
    """
    b_pix, b_inst, b_face, b_bary, b_z = body
    c_pix, c_inst, c_face, c_bary, c_z = cover
    cover_owner = np.asarray(cover_owner, dtype=np.int64)
    # Dense pixel -> fragment maps (a scatter is ~10x cheaper than a sorted union of the pixel lists).
    slot_b = np.full(height * width, -1, dtype=np.int64)
    slot_c = np.full(height * width, -1, dtype=np.int64)
    slot_b[b_pix] = np.arange(len(b_pix))
    slot_c[c_pix] = np.arange(len(c_pix))
    pix = np.flatnonzero((slot_b >= 0) | (slot_c >= 0))
    P = len(pix)
    bi, ci = slot_b[pix], slot_c[pix]
    at_b, at_c = np.flatnonzero(bi >= 0), np.flatnonzero(ci >= 0)  # pixels with a body / cover fragment
    bi, ci = bi[at_b], ci[at_c]

    def gather(values, at, idx, fill, dtype):
        out = np.full((P,) + values.shape[1:], fill, dtype=dtype)
        _rows(out)[at] = _rows(values.astype(dtype, copy=False)).take(idx)
        return out

    body_z = gather(b_z, at_b, bi, np.inf, np.float64)
    cover_z = gather(c_z, at_c, ci, np.inf, np.float64)
    on_cover = cover_z < body_z
    body_person = gather(b_inst, at_b, bi, -1, np.int64)
    body_face = gather(b_face, at_b, bi, -1, np.int64)
    body_bary = gather(b_bary, at_b, bi, 0.0, np.float64)
    cover_mesh = gather(c_inst, at_c, ci, -1, np.int64)
    cover_face = gather(c_face, at_c, ci, -1, np.int64)
    cover_bary = gather(c_bary, at_c, ci, 0.0, np.float64)
    person = body_person.copy()
    cov = np.flatnonzero(on_cover)
    person[cov] = cover_owner[cover_mesh[cov]]
    depth = np.minimum(body_z, cover_z)
    gap = np.zeros(P)
    gap[cov] = (body_z[cov] - cover_z[cov]) * ray_lengths(K, pix[cov], width)  # inf where no body behind
    gap[body_person < 0] = np.inf
    labelled = (person >= 0) & (body_person == person) & (gap <= max_gap)
    bound = np.zeros(P, dtype=bool)
    if garments is not None:
        cloth = cov[person[cov] >= 0]
        body_face, body_bary, labelled, bound = _with_bound_points(
            garments, cover_mesh, cover_face, cover_bary, cloth, body_face, body_bary, labelled, max_gap,
            body_face_part)
    return Layers(pix, depth, on_cover, person, cover_mesh, cover_face, cover_bary, body_person, body_face,
                  body_bary, gap, labelled, bound)


def _rows(x: np.ndarray) -> np.ndarray:
    """A contiguous (N, ...) array seen as N opaque rows: gathers and scatters of whole rows then run
    as 1-D copies (several times faster than NumPy's fancy indexing of 2-D rows)."""
    width = int(np.prod(x.shape[1:], dtype=np.int64))
    return x.reshape(len(x), width).view(np.dtype((np.void, x.itemsize * width))).ravel()


def _with_bound_points(garments, cover_mesh, cover_face, cover_bary, cloth, body_face, body_bary, labelled, max_gap,
                       body_face_part):
    """Apply the bound-point half of the rule to the person-cloth pixels ``cloth`` (indices)."""
    from densepose.surface.parts import CHART_TO_MASK_PART

    bound = np.zeros(len(labelled), dtype=bool)
    mesh = cover_mesh[cloth]
    order = np.argsort(mesh, kind="stable")
    cloth, mesh = cloth[order], mesh[order]
    n = len(cloth)
    a_face = np.zeros(n, dtype=np.int64)
    a_dist = np.full(n, np.inf)
    a_mesh_vertex = np.zeros(n, dtype=np.int64)  # vertex inside its garment
    corner = np.take(cover_bary, cloth, axis=0).argmax(axis=1)
    face = cover_face[cloth]
    starts = np.searchsorted(mesh, np.arange(len(garments) + 1))
    for k, g in enumerate(garments):
        lo, hi = starts[k], starts[k + 1]
        if g is None or lo == hi:
            continue
        vertex = g.faces[face[lo:hi], corner[lo:hi]]  # the nearest corner of the cloth triangle
        a_mesh_vertex[lo:hi] = vertex
        a_face[lo:hi] = g.anchor_face[vertex]
        a_dist[lo:hi] = g.anchor_dist[vertex]
    near = a_dist <= max_gap
    ray = labelled[cloth]
    use = near & ~ray
    if body_face_part is not None:  # a ray point on another coarse part than the cloth's own
        coarse = CHART_TO_MASK_PART[body_face_part]
        check = np.flatnonzero(near & ray)
        other = coarse[body_face[cloth[check]]] != coarse[a_face[check]]
        use[check[other]] = True
    idx = cloth[use]
    bound[idx] = True
    labelled[idx] = True
    body_face[idx] = a_face[use]
    for k in np.unique(mesh[use]):  # barycentrics of the bound points, garment by garment
        lo, hi = starts[k], starts[k + 1]
        sel = lo + np.flatnonzero(use[lo:hi])
        _rows(body_bary)[cloth[sel]] = _rows(np.ascontiguousarray(garments[k].anchor_bary, dtype=np.float64)).take(
            a_mesh_vertex[sel])
    return body_face, body_bary, labelled, bound
