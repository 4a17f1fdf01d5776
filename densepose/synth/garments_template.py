"""Per-vertex tables of the rest body that garments are cut from (computed once per process).

The rest body is Anny's default phenotype in its A-pose, pelvis at the origin (metres, Z up,
facing -Y, the person's left at +X): ``load_surface("anny").vertices``. Garment regions are
chosen with a few scalar coordinates per vertex, so a hem line is one threshold:

* ``arm_t`` - position along the arm: 0 at the shoulder joint, 1 at the wrist (NaN off the arms);
* ``leg_t`` - position down the leg: 0 at the hip joint, 1 at the ankle (NaN off the legs);
* ``z`` - height (torso, head), ``landmarks`` - joint heights and positions.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from densepose.synth.garments_bind import vertex_normal_operator, vertex_normals

TORSO_CHARTS = (1, 2)
HAND_CHARTS = (3, 4)
FOOT_CHARTS = (5, 6)
UPPER_LEG_CHARTS = (7, 8, 9, 10)
LOWER_LEG_CHARTS = (11, 12, 13, 14)
UPPER_ARM_CHARTS = (15, 16, 17, 18)
LOWER_ARM_CHARTS = (19, 20, 21, 22)
HEAD_CHARTS = (23, 24)
_LANDMARK_BONES = {
    "shoulder": "upperarm01.L", "elbow": "lowerarm01.L", "wrist": "wrist.L", "hip": "upperleg01.L",
    "knee": "lowerleg01.L", "ankle": "foot.L", "neck": "neck01", "head": "head", "chest": "spine01",
}


@dataclass
class BodyTemplate:
    """The rest body and its garment coordinates; every array is per body vertex (V, ...)."""

    vertices: np.ndarray      # (V, 3) rest positions
    faces: np.ndarray         # (F, 3) CCW from outside
    normals: np.ndarray       # (V, 3) unit rest normals
    chart: np.ndarray         # (V,) DensePose chart 1..24 of the vertex
    arm_t: np.ndarray         # (V,) 0 shoulder .. 1 wrist, NaN elsewhere
    leg_t: np.ndarray         # (V,) 0 hip .. 1 ankle, NaN elsewhere
    landmarks: dict           # name -> (3,) left-side joint position (right side: x negated)
    normal_op: sp.csr_matrix  # (V, F) for posed vertex normals
    anchor_face: np.ndarray   # (V,) one face incident to each vertex
    anchor_tri: np.ndarray    # (V, 3) corners of that face
    anchor_weight: np.ndarray  # (V, 3) one-hot barycentric weight of the vertex in that face
    chart_masks: dict = field(default_factory=dict)  # memo of is_chart and faces_touching

    def is_chart(self, charts: tuple[int, ...]) -> np.ndarray:
        """(V,) bool: the vertex belongs to one of ``charts`` (read-only, memoised)."""
        mask = self.chart_masks.get(charts)
        if mask is None:
            mask = np.isin(self.chart, charts)
            mask.flags.writeable = False
            self.chart_masks[charts] = mask
        return mask

    def faces_touching(self, charts: tuple[int, ...]) -> np.ndarray:
        """Indices of the faces with a vertex in one of ``charts`` (memoised)."""
        key = ("faces",) + charts
        ids = self.chart_masks.get(key)
        if ids is None:
            ids = np.flatnonzero(self.is_chart(charts)[self.faces].any(axis=1))
            self.chart_masks[key] = ids
        return ids

    def posed_normals(self, body: np.ndarray) -> np.ndarray:
        """Unit vertex normals (V, 3) of a posed body (V, 3)."""
        return vertex_normals(body, self.faces, self.normal_op)


@functools.lru_cache(maxsize=1)
def body_template() -> BodyTemplate:
    from densepose.surface import load_surface

    surface = load_surface("anny")
    v = np.asarray(surface.vertices, dtype=np.float64)
    faces = np.asarray(surface.faces, dtype=np.int64)
    # A vertex takes the chart of (one of) its faces; charts meet along vertex rows, so either is right.
    chart = np.zeros(len(v), dtype=np.int64)
    chart[faces.ravel()] = np.repeat(np.asarray(surface.face_part, dtype=np.int64), 3)
    marks = _landmarks()
    side = np.where(v[:, 0] >= 0, 1.0, -1.0)[:, None]
    mirror = np.array([1.0, 0.0, 0.0])

    def along(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # parameter of v on the segment a->b, per side
        a = a * (1 - mirror) + side * a * mirror
        b = b * (1 - mirror) + side * b * mirror
        d = b - a
        return ((v - a) * d).sum(axis=1) / (d * d).sum(axis=1)

    on_arm = np.isin(chart, UPPER_ARM_CHARTS + LOWER_ARM_CHARTS + HAND_CHARTS)
    on_leg = np.isin(chart, UPPER_LEG_CHARTS + LOWER_LEG_CHARTS + FOOT_CHARTS)
    arm_t = np.where(on_arm, along(marks["shoulder"], marks["wrist"]), np.nan)
    leg_t = np.where(on_leg, (marks["hip"][2] - v[:, 2]) / (marks["hip"][2] - marks["ankle"][2]), np.nan)
    op = vertex_normal_operator(faces, len(v))
    face_of = np.zeros(len(v), dtype=np.int64)
    corner_of = np.zeros(len(v), dtype=np.int64)
    face_of[faces.ravel()] = np.repeat(np.arange(len(faces)), 3)
    corner_of[faces.ravel()] = np.tile(np.arange(3), len(faces))
    return BodyTemplate(v, faces, vertex_normals(v, faces, op), chart, arm_t, leg_t, marks, op,
                        face_of, faces[face_of], np.eye(3)[corner_of])


def _landmarks() -> dict[str, np.ndarray]:
    """Rest joint positions of the default body (left side), from Anny's bone heads."""
    import torch

    from densepose.surface.anny import load_anny_model

    model = load_anny_model()
    pose = torch.eye(4)[None, None].repeat(1, model.bone_count, 1, 1)
    with torch.no_grad():
        heads = model(pose_parameters=pose)["bone_poses"][0, :, :3, 3].double().numpy()
    return {k: heads[model.bone_labels.index(b)] for k, b in _LANDMARK_BONES.items()}
