"""Palm or back of the hand: the hand charts are one chart each, so the side is read from the surface.

In the rest pose each hand is a flat slab; its thinnest principal axis is the palm's normal up to a
sign. We sign it to point down (-Z, toward the ground): in Anny's A-like rest pose the arms hang
out and down with the palms turned down and in, toward the thighs. A hand face is on the palm side
when its outward normal has a positive component along that direction.
"""
from __future__ import annotations

import numpy as np

from densepose.surface.parts import CHART_TO_MASK_PART

HAND_PARTS = (2, 3)  # coarse parts "right hand", "left hand"


def palm_direction(vertices: np.ndarray) -> np.ndarray:
    """(3,) unit palm normal of one hand's rest-pose vertices (N, 3): the thinnest principal axis, pointing down."""
    centred = vertices - vertices.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][-1]
    return -axis if axis[2] > 0 else axis


def palm_faces(vertices: np.ndarray, faces: np.ndarray, face_part: np.ndarray) -> np.ndarray:
    """(F,) bool: hand faces on the palm side (outward normal along ``palm_direction``), False elsewhere.

    vertices (V, 3) rest pose, faces (F, 3) wound outward, face_part (F,) chart index 1..24.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    coarse = CHART_TO_MASK_PART[np.asarray(face_part, dtype=np.int64)]
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros(len(faces), dtype=bool)
    for part in HAND_PARTS:
        mine = coarse == part
        if not mine.any():
            continue
        palm = palm_direction(vertices[np.unique(faces[mine])])
        out[mine] = normal[mine] @ palm > 0
    return out
