"""Step 2's hand views tell the palm from the back of the hand (palms.py, views.part_face_colors)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from densepose.annotate.palms import palm_faces
from densepose.annotate.views import render_part_views
from densepose.surface.parts import CHART_TO_MASK_PART

RIGHT_HAND_CHART = 3


def box_mesh(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box: (8, 3) vertices, (12, 3) faces wound outward."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    v = np.array([[hi[i] if (k >> i) & 1 else lo[i] for i in range(3)] for k in range(8)])
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    faces = [f for a, b, c, d in quads for f in ((a, b, c), (a, c, d))]
    return v, np.array(faces)


def slab_hand():
    """A flat 'hand' (thin along Z) beside a block 'torso': the palm should be the lower face."""
    hv, hf = box_mesh((-0.5, -0.05, 0.0), (-0.4, 0.05, 0.02))
    tv, tf = box_mesh((-0.15, -0.1, -0.3), (0.15, 0.1, 0.3))
    verts = np.concatenate([hv, tv])
    faces = np.concatenate([hf, tf + len(hv)])
    face_part = np.array([RIGHT_HAND_CHART] * len(hf) + [1] * len(tf))
    return SimpleNamespace(vertices=verts, faces=faces, face_part=face_part)


def test_palm_is_the_hand_side_facing_down_and_is_drawn_lighter():
    s = slab_hand()
    palm = palm_faces(s.vertices, s.faces, s.face_part)
    tri = s.vertices[s.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert palm.tolist() == ((normal[:, 2] < 0) & (s.face_part == RIGHT_HAND_CHART)).tolist()
    views = {v.name: v for v in render_part_views(s, int(CHART_TO_MASK_PART[RIGHT_HAND_CHART]), size=96)}
    under, over = views["bottom"], views["top"]  # both face the camera squarely: same shading
    palm_px = under.rgb[palm[np.maximum(under.face, 0)] & (under.face >= 0)]
    back_px = over.rgb[~palm[np.maximum(over.face, 0)] & (over.face >= 0) & (s.face_part[np.maximum(over.face, 0)] == 3)]
    assert len(palm_px) > 100 and len(back_px) > 100
    lighter = palm_px.astype(int).mean(0) - back_px.astype(int).mean(0)
    assert lighter.min() > 5 and lighter.sum() > 100, lighter  # lighter in every channel


def test_anny_palms_face_down_and_toward_the_thighs(anny_surface):
    s = anny_surface
    palm = palm_faces(s.vertices, s.faces, s.face_part)
    verts, faces = np.asarray(s.vertices, float), np.asarray(s.faces)
    coarse = CHART_TO_MASK_PART[np.asarray(s.face_part)]
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    for part in (2, 3):  # right hand (x < 0), left hand (x > 0)
        mine = coarse == part
        side = np.sign(verts[np.unique(faces[mine])][:, 0].mean())
        n = normal[mine & palm].mean(0)
        assert n[2] < -0.2 and n[0] * side < -0.2  # down, and toward the body's midline
        assert 0.3 < palm[mine].mean() < 0.7
