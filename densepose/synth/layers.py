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
    has_body, has_cover = bi >= 0, ci >= 0
    bi, ci = np.maximum(bi, 0), np.maximum(ci, 0)

    body_z = np.where(has_body, b_z[bi] if len(b_z) else 0.0, np.inf)
    cover_z = np.where(has_cover, c_z[ci] if len(c_z) else 0.0, np.inf)
    on_cover = has_cover & (cover_z < body_z)
    body_person = np.where(has_body, b_inst[bi] if len(b_inst) else 0, -1)
    body_face = np.where(has_body, b_face[bi] if len(b_face) else 0, -1)
    body_bary = np.where(has_body[:, None], b_bary[bi] if len(b_bary) else 0.0, 0.0)
    cover_mesh = np.where(has_cover, c_inst[ci] if len(c_inst) else 0, -1)
    cover_face = np.where(has_cover, c_face[ci] if len(c_face) else 0, -1)
    cover_bary = np.where(has_cover[:, None], c_bary[ci] if len(c_bary) else 0.0, 0.0)
    owner = cover_owner[np.maximum(cover_mesh, 0)] if len(cover_owner) else np.full(P, -1)
    person = np.where(on_cover, owner, body_person)
    depth = np.minimum(body_z, cover_z)
    gap = np.where(on_cover, (body_z - cover_z) * ray_lengths(K, pix, width), 0.0)
    gap = np.where(has_body, gap, np.inf)
    labelled = (person >= 0) & (body_person == person) & (gap <= max_gap)
    bound = np.zeros(P, dtype=bool)
    if garments is not None:
        body_face, body_bary, labelled, bound = _with_bound_points(
            garments, cover_mesh, cover_face, cover_bary, on_cover & (person >= 0), body_face, body_bary, labelled,
            max_gap, body_face_part)
    return Layers(pix, depth, on_cover, person, cover_mesh, cover_face, cover_bary, body_person, body_face,
                  body_bary, gap, labelled, bound)


def _with_bound_points(garments, cover_mesh, cover_face, cover_bary, cloth, body_face, body_bary, labelled, max_gap,
                       body_face_part):
    """Apply the bound-point half of the rule to the person-cloth pixels ``cloth`` (P,) bool."""
    from densepose.surface.parts import CHART_TO_MASK_PART

    sizes = [len(g.faces) if g is not None else 0 for g in garments]
    if sum(sizes) == 0:
        return body_face, body_bary, labelled, np.zeros(len(cloth), dtype=bool)
    real = [g for g in garments if g is not None]
    v_off = np.cumsum([0] + [len(g.anchor_face) for g in real])
    faces = np.concatenate([g.faces + v_off[k] for k, g in enumerate(real)])
    anchor_face = np.concatenate([g.anchor_face for g in real])
    anchor_bary = np.concatenate([g.anchor_bary for g in real])
    anchor_dist = np.concatenate([g.anchor_dist for g in real])
    f_off = np.cumsum([0] + sizes)
    sel = np.flatnonzero(cloth & (cover_mesh >= 0))
    sel = sel[np.asarray([g is not None for g in garments])[cover_mesh[sel]]]
    vertex = faces[f_off[cover_mesh[sel]] + cover_face[sel], cover_bary[sel].argmax(axis=1)]  # nearest corner
    near = anchor_dist[vertex] <= max_gap
    use = near & ~labelled[sel]
    if body_face_part is not None:  # a ray point on another coarse part than the cloth's own
        ray_part = CHART_TO_MASK_PART[body_face_part[np.maximum(body_face[sel], 0)]]
        own_part = CHART_TO_MASK_PART[body_face_part[anchor_face[vertex]]]
        use |= near & labelled[sel] & (ray_part != own_part)
    idx = sel[use]
    body_face, body_bary, labelled = body_face.copy(), body_bary.copy(), labelled.copy()
    body_face[idx] = anchor_face[vertex[use]]
    body_bary[idx] = anchor_bary[vertex[use]]
    labelled[idx] = True
    bound = np.zeros(len(cloth), dtype=bool)
    bound[idx] = True
    return body_face, body_bary, labelled, bound
