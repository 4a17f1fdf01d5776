"""Offset-shell garments: a piece of the body surface pushed out along its normals.

Each builder picks body vertices with hem thresholds on the template coordinates
(:mod:`densepose.synth.garments_template`), keeps the body faces inside that set (so the
garment has the body's own triangles and winding) and binds every vertex with a
:class:`ShellBinding` (vertex + offset along the posed normal). Offsets are the garment's
distance from the skin: a few millimetres for tight clothes, centimetres for loose ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densepose.synth.garments_bind import FrameBinding, ShellBinding
from densepose.synth.garments_template import (
    FOOT_CHARTS,
    HEAD_CHARTS,
    LOWER_ARM_CHARTS,
    LOWER_LEG_CHARTS,
    TORSO_CHARTS,
    UPPER_ARM_CHARTS,
    UPPER_LEG_CHARTS,
    BodyTemplate,
)

TIGHT_MAX_OFFSET = 0.012  # metres: a garment this close to the skin counts as tight


@dataclass
class Garment:
    """One piece of clothing or hair bound to the body.

    kind: "top", "bottom", "dress", "coat", "shoes", "hat", "hair"; faces (F, 3) index the
    garment's own vertices (CCW seen from outside); binding places those vertices on a posed body;
    anchor_face (G,), anchor_bary (G, 3): the body point each vertex hangs on (its "bound body
    point", a body face and barycentrics) and anchor_dist (G,) its rest distance from it in metres;
    two_sided: its inside can be seen (open cloth, hair cards); False for shells, whose inside
    only ever shows the body within (the renderer may cull their back faces).
    """

    kind: str
    faces: np.ndarray
    binding: ShellBinding | FrameBinding
    tight: bool
    anchor_face: np.ndarray
    anchor_bary: np.ndarray
    anchor_dist: np.ndarray
    two_sided: bool = True
    rest: np.ndarray | None = None  # (G, 3) on the rest template, kept for library assets

    def vertices(self, body: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """(G, 3) garment vertices on a posed body (V, 3) with unit vertex normals (V, 3)."""
        return self.binding.evaluate(body, normals)


def shell(t: BodyTemplate, kind: str, keep: np.ndarray, offset: np.ndarray | float) -> Garment | None:
    """The faces of the body inside ``keep`` (V,) bool, pushed out by ``offset`` (V,) or scalar metres."""
    face_ids = t.faces_within(keep)
    if len(face_ids) == 0:
        return None
    faces = t.faces[face_ids]
    nv = len(t.vertices)
    used = np.flatnonzero(np.bincount(faces.ravel(), minlength=nv))
    remap = np.zeros(nv, dtype=np.int64)
    remap[used] = np.arange(len(used))
    off = np.broadcast_to(np.asarray(offset, dtype=np.float64), (nv,))[used]
    return Garment(kind, remap[faces], ShellBinding(used, off.copy()), bool(off.max() <= TIGHT_MAX_OFFSET),
                   t.anchor_face[used], t.anchor_weight[used], np.abs(off), two_sided=False)


def torso_below_neckline(t: BodyTemplate, neck_drop: float, v_neck: bool) -> np.ndarray:
    """(V,) bool torso vertices under a crew (scooped by ``neck_drop`` metres in front) or V neckline."""
    v = t.vertices
    neck_z = t.landmarks["neck"][2]
    width = 0.09
    front = v[:, 1] < t.landmarks["neck"][1]
    shape = np.clip(1 - np.abs(v[:, 0]) / width, 0, 1)
    drop = neck_drop * (shape if v_neck else np.sqrt(shape))
    return t.is_chart(TORSO_CHARTS) & (v[:, 2] < neck_z + 0.03 - np.where(front, drop, 0.0))


def top(t: BodyTemplate, sleeve: float, hem_z: float, neck_drop: float, v_neck: bool, offset: float,
        flare: float, kind: str = "top") -> Garment | None:
    """Shirt, T-shirt, sweater, tank top or coat body.

    sleeve: last arm_t covered (<= 0 sleeveless, ~0.45 elbow, >= 1 to the wrist); hem_z: lowest
    rest height covered; offset: distance from the skin; flare: extra offset gained towards the hem.
    """
    v = t.vertices
    body = torso_below_neckline(t, neck_drop, v_neck) & (v[:, 2] >= hem_z)
    arms = t.is_chart(UPPER_ARM_CHARTS + LOWER_ARM_CHARTS) & (t.arm_t <= sleeve)
    keep = body | arms
    chest_z = t.landmarks["chest"][2]
    down = np.clip((chest_z - v[:, 2]) / max(chest_z - hem_z, 1e-3), 0, 1)
    return shell(t, kind, keep, offset + flare * down * body)


def bottom(t: BodyTemplate, leg_end: float, waist_z: float, offset: float, flare: float) -> Garment | None:
    """Trousers (leg_end ~1), capris, shorts (~0.3) from the waist down; flare widens towards the hem."""
    v = t.vertices
    keep = (t.is_chart(TORSO_CHARTS) & (v[:, 2] <= waist_z)) | (
        t.is_chart(UPPER_LEG_CHARTS + LOWER_LEG_CHARTS) & (t.leg_t <= leg_end))
    along = np.nan_to_num(np.clip(t.leg_t / max(leg_end, 1e-3), 0, 1))
    return shell(t, "bottom", keep, offset + flare * along ** 2)


def shoes(t: BodyTemplate, shaft: float, offset: float, sole: float) -> Garment | None:
    """Shoes (shaft ~0.93 of the leg) or boots (~0.7); ``sole`` extra metres under the foot."""
    keep = t.is_chart(FOOT_CHARTS) | (t.is_chart(LOWER_LEG_CHARTS) & (t.leg_t >= shaft))
    under = np.clip(-t.normals[:, 2], 0, 1) ** 2
    return shell(t, "shoes", keep, offset + sole * under)


def scalp(t: BodyTemplate, front_z: float, side_z: float, back_z: float) -> np.ndarray:
    """(V,) bool head vertices above a hairline at heights (relative to the head joint) front/side/back."""
    rel = t.vertices - t.landmarks["head"]
    r = np.hypot(rel[:, 0], rel[:, 1]) + 1e-9
    facing = -rel[:, 1] / r  # +1 at the face, -1 at the back of the head
    line = np.where(facing > 0, side_z + (front_z - side_z) * facing, side_z + (side_z - back_z) * facing)
    return t.is_chart(HEAD_CHARTS) & (rel[:, 2] > line)


def hair_cap(t: BodyTemplate, front_z: float, side_z: float, back_z: float, volume: float) -> Garment | None:
    """Short hair: the scalp pushed out by ``volume`` metres on top, about half that at the sides."""
    up = np.clip(t.normals[:, 2], 0, 1)
    return shell(t, "hair", scalp(t, front_z, side_z, back_z), 0.003 + volume * (0.4 + 0.6 * up))


def hat_crown(t: BodyTemplate, rim_z: float, offset: float) -> Garment | None:
    """The crown of a hat or cap: the head above ``rim_z`` (relative to the head joint)."""
    return shell(t, "hat", scalp(t, rim_z + 0.01, rim_z, rim_z - 0.01), offset)
