"""Offset-shell garments: a piece of the body surface pushed out along its normals.

Each builder sets a per-vertex "level" from hem thresholds on the template coordinates
(:mod:`densepose.synth.garments_template`), in metres along the body, and keeps the body where
the level is >= 0, cutting the boundary faces exactly along level 0 (so hems are smooth lines
while the garment has the body's own triangles and winding). Every vertex is bound with a
:class:`ShellBinding` (a body vertex, or a point on a body edge, plus an offset along the
posed normal). Offsets are the garment's
distance from the skin: a few millimetres for tight clothes, centimetres for loose ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densepose.synth.garments_bind import FrameBinding, ShellBinding, clip_faces
from densepose.synth.garments_template import (
    FOOT_CHARTS,
    HAND_CHARTS,
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


ARM_LENGTH = 0.45  # metres per unit of arm_t / leg_t: turns hem fractions into distances along the limb
LEG_LENGTH = 0.8
OUTSIDE = -0.05  # level of body parts a garment does not cover (metres "outside" its hem)
SLEEVE_MAX = 0.97  # longest sleeve (arm_t): to the wrist, never over the hand
LEG_END_MAX = 0.93  # longest trouser leg (leg_t): to the ankle, never over the foot


CUT_CACHE_SIZE = 256  # cut shells kept per process (shoes, hair caps and hat crowns repeat often)
_cuts: dict = {}


def shell(t: BodyTemplate, kind: str, level, offset: np.ndarray | float, region: tuple[int, ...],
          cache_key: tuple | None = None) -> Garment | None:
    """The body where ``level`` (V,) >= 0, cut exactly along level 0 (smooth hems, not triangle
    edges), pushed out by ``offset`` (V,) or scalar metres.

    level: the (V,) array, or a function returning it (called only when the cut is not cached);
    region: charts the garment may cover (only faces touching them are cut); cache_key: the
    hashable parameters that determine ``level``, to reuse the cut.
    """
    cut = _cuts.get(cache_key) if cache_key is not None else None
    if cut is None:
        lv = level() if callable(level) else level
        ends, frac, faces = clip_faces(t.faces[t.faces_touching(region)], lv)
        main = ends[np.arange(len(ends)), (frac > 0.5).astype(np.int64)]
        cut = (ends, np.stack([1 - frac, frac], axis=1), faces, t.anchor_face[main], t.anchor_weight[main])
        if cache_key is not None:
            if len(_cuts) >= CUT_CACHE_SIZE:
                _cuts.clear()
            _cuts[cache_key] = cut
    ends, weight, faces, anchor_face, anchor_bary = cut
    if len(faces) == 0:
        return None
    off = np.broadcast_to(np.asarray(offset, dtype=np.float64), (len(t.vertices),))[ends]
    return Garment(kind, faces, ShellBinding(ends, weight, off), bool(off.max() <= TIGHT_MAX_OFFSET),
                   anchor_face, anchor_bary, (weight * np.abs(off)).sum(axis=1), two_sided=False)


def neckline(t: BodyTemplate, neck_drop: float, v_neck: bool) -> np.ndarray:
    """(V,) metres below a crew (scooped by ``neck_drop`` metres in front) or V neckline."""
    v = t.vertices
    neck_z = t.landmarks["neck"][2]
    width = 0.09
    front = v[:, 1] < t.landmarks["neck"][1]
    shape = np.clip(1 - np.abs(v[:, 0]) / width, 0, 1)
    drop = neck_drop * (shape if v_neck else np.sqrt(shape))
    return neck_z + 0.03 - np.where(front, drop, 0.0) - v[:, 2]


def top(t: BodyTemplate, sleeve: float, hem_z: float, neck_drop: float, v_neck: bool, offset: float,
        flare: float, kind: str = "top") -> Garment | None:
    """Shirt, T-shirt, sweater, tank top or coat body.

    sleeve: last arm_t covered (<= 0 sleeveless, ~0.45 elbow, >= 0.97 to the wrist); hem_z: lowest
    rest height covered; offset: distance from the skin; flare: extra offset gained towards the hem.
    """
    v = t.vertices
    torso = t.is_chart(TORSO_CHARTS)
    arm = t.is_chart(UPPER_ARM_CHARTS + LOWER_ARM_CHARTS + HAND_CHARTS)
    body_level = np.minimum(neckline(t, neck_drop, v_neck), v[:, 2] - hem_z)
    arm_level = (min(sleeve, SLEEVE_MAX) - np.nan_to_num(t.arm_t, nan=9.0)) * ARM_LENGTH
    level = np.where(torso, body_level, np.where(arm, arm_level, OUTSIDE))
    chest_z = t.landmarks["chest"][2]
    down = np.clip((chest_z - v[:, 2]) / max(chest_z - hem_z, 1e-3), 0, 1)
    return shell(t, kind, level, offset + flare * down * torso, TORSO_CHARTS + UPPER_ARM_CHARTS + LOWER_ARM_CHARTS)


def bottom(t: BodyTemplate, leg_end: float, waist_z: float, offset: float, flare: float) -> Garment | None:
    """Trousers (leg_end >= 0.93: to the ankle), capris, shorts (~0.3) from the waist down; flare
    widens towards the hem."""
    v = t.vertices
    legs = t.is_chart(UPPER_LEG_CHARTS + LOWER_LEG_CHARTS + FOOT_CHARTS)
    leg_level = (min(leg_end, LEG_END_MAX) - np.nan_to_num(t.leg_t, nan=9.0)) * LEG_LENGTH
    level = np.where(t.is_chart(TORSO_CHARTS), waist_z - v[:, 2], np.where(legs, leg_level, OUTSIDE))
    along = np.nan_to_num(np.clip(t.leg_t / max(leg_end, 1e-3), 0, 1))
    return shell(t, "bottom", level, offset + flare * along ** 2, TORSO_CHARTS + UPPER_LEG_CHARTS + LOWER_LEG_CHARTS)


def shoes(t: BodyTemplate, shaft: float, offset: float, sole: float) -> Garment | None:
    """Shoes (shaft ~0.93 of the leg) or boots (~0.7); ``sole`` extra metres under the foot."""
    shaft = round(shaft, 2)

    def level():
        return np.where(t.is_chart(FOOT_CHARTS), 0.05, np.where(
            t.is_chart(LOWER_LEG_CHARTS), (np.nan_to_num(t.leg_t, nan=0.0) - shaft) * LEG_LENGTH, OUTSIDE))

    under = np.clip(-t.normals[:, 2], 0, 1) ** 2
    return shell(t, "shoes", level, offset + sole * under, FOOT_CHARTS + LOWER_LEG_CHARTS, ("shoes", shaft))


def scalp(t: BodyTemplate, front_z: float, side_z: float, back_z: float) -> np.ndarray:
    """(V,) metres above a hairline at heights (relative to the head joint) front/side/back."""
    rel = t.vertices - t.landmarks["head"]
    r = np.hypot(rel[:, 0], rel[:, 1]) + 1e-9
    facing = -rel[:, 1] / r  # +1 at the face, -1 at the back of the head
    line = np.where(facing > 0, side_z + (front_z - side_z) * facing, side_z + (side_z - back_z) * facing)
    return np.where(t.is_chart(HEAD_CHARTS), rel[:, 2] - line, OUTSIDE)


def hair_cap(t: BodyTemplate, front_z: float, side_z: float, back_z: float, volume: float) -> Garment | None:
    """Short hair: the scalp pushed out by ``volume`` metres on top, about half that at the sides."""
    up = np.clip(t.normals[:, 2], 0, 1)
    line = (round(front_z, 2), round(side_z, 2), round(back_z, 2))
    return shell(t, "hair", lambda: scalp(t, *line), 0.003 + volume * (0.4 + 0.6 * up), HEAD_CHARTS,
                 ("scalp",) + line)


def hat_crown(t: BodyTemplate, rim_z: float, offset: float) -> Garment | None:
    """The crown of a hat or cap: the head above ``rim_z`` (relative to the head joint)."""
    rim_z = round(rim_z, 2)
    return shell(t, "hat", lambda: scalp(t, rim_z + 0.01, rim_z, rim_z - 0.01), offset, HEAD_CHARTS, ("crown", rim_z))
