"""Random body poses for Anny: pose families with joint-angle ranges, not uniform noise.

Each family (standing, walking, running, sitting, crouching, arms raised, bending; and for the
realistic renders also lying, arms crossed, hands on hips, holding something up to the face,
sports: kicks, throws, jumps, lunges) samples a handful of anatomical angles (hip flexion, knee flexion, shoulder raise, ...) inside ranges that
keep the joints within their limits and the limbs out of the body. The angles become Anny
"local-ref" pose deltas: a rotation about the bone's head in world-aligned axes, composed along
the chain. Axes are derived from the rest skeleton (Z up, the person faces -Y, their left is +X).
"""
from __future__ import annotations

import numpy as np
import torch

FAMILIES = ("standing", "walking", "running", "sitting", "crouching", "arms_raised", "bending")
FAMILY_WEIGHTS = np.array([0.24, 0.18, 0.12, 0.12, 0.08, 0.14, 0.12])
#: Families of the realistic renders and their weights.
REALISTIC_FAMILIES = FAMILIES + ("lying", "arms_crossed", "hands_on_hips", "holding", "sports")
REALISTIC_WEIGHTS = np.array([0.17, 0.14, 0.08, 0.1, 0.06, 0.07, 0.06, 0.05, 0.05, 0.05, 0.07, 0.10])

SIDES = ("L", "R")
SPINE = ("spine04", "spine03", "spine02", "spine01")
UP = np.array([0.0, 0.0, 1.0])
FORWARD = np.array([0.0, -1.0, 0.0])
BACKWARD = -FORWARD


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector (3,) -> (3, 3)."""
    theta = float(np.linalg.norm(rotvec))
    if theta < 1e-12:
        return np.eye(3)
    k = rotvec / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross has a large per-call overhead for single 3-vectors.
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def swing(direction: np.ndarray, target: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation (3, 3) that turns ``direction`` towards ``target`` by ``degrees`` (negative: away)."""
    axis = _cross(direction, target)
    n = np.linalg.norm(axis)
    if n < 1e-9:
        return np.eye(3)
    return rotvec_to_matrix(axis / n * np.radians(degrees))


def twist(direction: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation (3, 3) about the bone axis ``direction``."""
    return rotvec_to_matrix(direction / np.linalg.norm(direction) * np.radians(degrees))


_DIRECTIONS: dict[int, dict[str, np.ndarray]] = {}


def rest_directions(model) -> dict[str, np.ndarray]:
    """Unit rest directions of the bones we pose, from the default-phenotype rest skeleton (cached)."""
    if id(model) not in _DIRECTIONS:
        _DIRECTIONS[id(model)] = _compute_rest_directions(model)
    return _DIRECTIONS[id(model)]


def _compute_rest_directions(model) -> dict[str, np.ndarray]:
    with torch.no_grad():
        heads = model()["rest_bone_heads"][0].double().numpy()
    index = {name: i for i, name in enumerate(model.bone_labels)}

    def direction(a: str, b: str) -> np.ndarray:
        d = heads[index[b]] - heads[index[a]]
        return d / np.linalg.norm(d)

    dirs = {}
    for s in SIDES:
        dirs[f"thigh.{s}"] = direction(f"upperleg01.{s}", f"lowerleg01.{s}")
        dirs[f"shin.{s}"] = direction(f"lowerleg01.{s}", f"foot.{s}")
        dirs[f"upperarm.{s}"] = direction(f"upperarm01.{s}", f"lowerarm01.{s}")
        dirs[f"forearm.{s}"] = direction(f"lowerarm01.{s}", f"wrist.{s}")
        for f in range(1, 6):
            for j in (1, 2):
                dirs[f"finger{f}-{j}.{s}"] = direction(f"finger{f}-{j}.{s}", f"finger{f}-{j + 1}.{s}")
            dirs[f"finger{f}-3.{s}"] = dirs[f"finger{f}-2.{s}"]
    dirs["spine"] = direction("spine05", "spine01")
    dirs["neck"] = direction("neck01", "head")
    return dirs


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_angles(rng: np.random.Generator, family: str, weight: float = 0.5) -> dict[str, float]:
    """Anatomical angles in degrees for one pose of ``family``.

    ``weight`` (Anny phenotype, 0..1) keeps the arms of heavier bodies further from the trunk.

    Keys: spine_flex/lat/twist, neck_flex/turn/tilt, root_pitch, and per side s in (L, R):
    hip_flex_s, hip_abd_s, hip_twist_s, knee_s, sh_raise_s (towards up, from the A-pose),
    sh_flex_s (towards the front), sh_twist_s, elbow_s.
    """
    a: dict[str, float] = {
        "spine_flex": _u(rng, -5, 10), "spine_lat": _u(rng, -8, 8), "spine_twist": _u(rng, -15, 15),
        "neck_flex": _u(rng, -15, 20), "neck_turn": _u(rng, -40, 40), "neck_tilt": _u(rng, -12, 12),
        "root_pitch": 0.0, "root_roll": 0.0,
    }
    for s in SIDES:
        a.update({
            f"hip_flex_{s}": _u(rng, -8, 12), f"hip_abd_{s}": _u(rng, -3, 10), f"hip_twist_{s}": _u(rng, -15, 20),
            f"knee_{s}": _u(rng, 0, 12),
            f"sh_raise_{s}": _u(rng, -30 + 35 * max(0.0, weight - 0.4), 25), f"sh_flex_{s}": _u(rng, -15, 35), f"sh_twist_{s}": _u(rng, -25, 25),
            f"elbow_{s}": _u(rng, 0, 60),
            f"curl_{s}": _u(rng, 0, 1) ** 0.7,  # 0 open hand .. 1 loose fist
        })
    if family == "standing":
        if rng.random() < 0.3:  # weight on one leg
            s = SIDES[rng.integers(2)]
            a[f"knee_{s}"] = _u(rng, 10, 25)
            a[f"hip_flex_{s}"] = _u(rng, 5, 15)
    elif family in ("walking", "running"):
        run = family == "running"
        amp = _u(rng, 30, 50) if run else _u(rng, 15, 30)
        phase = _u(rng, 0, 2 * np.pi)
        for k, s in enumerate(SIDES):
            p = phase + k * np.pi
            a[f"hip_flex_{s}"] = amp * np.sin(p) + (10 if run else 0)
            swing_phase = max(0.0, np.sin(p + 0.8))  # the swinging leg bends its knee
            a[f"knee_{s}"] = (_u(rng, 15, 30) + _u(rng, 50, 90) * swing_phase) if run else (_u(rng, 3, 10) + _u(rng, 20, 45) * swing_phase)
            a[f"sh_flex_{s}"] = -amp * np.sin(p) * _u(rng, 0.6, 1.0)
            a[f"sh_raise_{s}"] = _u(rng, -30, -10)
            a[f"elbow_{s}"] = _u(rng, 70, 100) if run else _u(rng, 5, 35)
            a[f"hip_abd_{s}"] = _u(rng, 0, 5)
        a["spine_flex"] = _u(rng, 5, 15) if run else _u(rng, -3, 6)
        a["spine_twist"] = -0.3 * amp * np.sin(phase) * _u(rng, 0, 1)
    elif family == "sitting":
        for s in SIDES:
            a[f"hip_flex_{s}"] = _u(rng, 70, 100)
            a[f"knee_{s}"] = _u(rng, 60, 105)
            a[f"hip_abd_{s}"] = _u(rng, 0, 15)
            a[f"sh_flex_{s}"] = _u(rng, 10, 50)
            a[f"sh_raise_{s}"] = _u(rng, -25, 5)
            a[f"elbow_{s}"] = _u(rng, 20, 90)
        a["spine_flex"] = _u(rng, -5, 20)
    elif family == "crouching":
        for s in SIDES:
            a[f"hip_flex_{s}"] = _u(rng, 95, 125)
            a[f"knee_{s}"] = _u(rng, 105, 135)
            a[f"hip_abd_{s}"] = _u(rng, 8, 25)
            a[f"sh_flex_{s}"] = _u(rng, 20, 70)
            a[f"sh_raise_{s}"] = _u(rng, -10, 20)
            a[f"elbow_{s}"] = _u(rng, 10, 90)
        a["spine_flex"] = _u(rng, 15, 35)
    elif family == "arms_raised":
        sides = SIDES if rng.random() < 0.6 else (SIDES[rng.integers(2)],)
        for s in sides:
            a[f"sh_raise_{s}"] = _u(rng, 80, 160)
            a[f"sh_flex_{s}"] = _u(rng, 0, 30)
            a[f"elbow_{s}"] = _u(rng, 0, 45)  # more would put the hand into the head
    elif family == "bending":
        a["root_pitch"] = _u(rng, 15, 60)  # the trunk tips forward at the hips
        a["spine_flex"] = _u(rng, 10, 40)
        total = a["root_pitch"] + a["spine_flex"]
        for s in SIDES:
            a[f"hip_flex_{s}"] = a["root_pitch"] + _u(rng, -5, 5)  # legs stay roughly vertical
            a[f"knee_{s}"] = _u(rng, 0, 25)
            a[f"sh_flex_{s}"] = total * _u(rng, 0.6, 1.1)
            a[f"sh_raise_{s}"] = _u(rng, -20, 10)
            a[f"elbow_{s}"] = _u(rng, 0, 40)
    elif family in REALISTIC_FAMILIES:
        _more_angles(rng, family, a)
    else:
        raise ValueError(f"unknown pose family {family!r}")
    return a


def _more_angles(rng: np.random.Generator, family: str, a: dict[str, float]) -> None:
    """The families added for realistic renders (edits ``a`` in place)."""
    if family == "lying":  # on the back, the front or a side; limbs loosely bent
        side = rng.random()
        if side < 0.5:
            a["root_pitch"] = -90 + _u(rng, -5, 5)
        elif side < 0.7:
            a["root_pitch"] = 90 + _u(rng, -5, 5)
        else:
            a["root_roll"] = float(rng.choice([-90.0, 90.0])) + _u(rng, -5, 5)
        for s in SIDES:
            a[f"hip_flex_{s}"] = _u(rng, -5, 60 if side >= 0.7 else 25)
            a[f"knee_{s}"] = _u(rng, 0, 70 if side >= 0.7 else 40)
            a[f"sh_raise_{s}"] = _u(rng, -30, 120)
            a[f"elbow_{s}"] = _u(rng, 0, 90)
    elif family == "arms_crossed":
        for s in SIDES:
            a[f"sh_flex_{s}"] = _u(rng, 15, 30)
            a[f"sh_raise_{s}"] = _u(rng, -35, -25)
            a[f"sh_twist_{s}"] = _u(rng, 60, 80)  # inward: the forearms cross in front of the trunk
            a[f"elbow_{s}"] = _u(rng, 85, 100)
        a["spine_twist"] = _u(rng, -5, 5)
    elif family == "hands_on_hips":
        for s in SIDES:
            if rng.random() < 0.85:
                a[f"sh_flex_{s}"] = _u(rng, -25, -10)
                a[f"sh_raise_{s}"] = _u(rng, 0, 15)
                a[f"sh_twist_{s}"] = _u(rng, 20, 40)
                a[f"elbow_{s}"] = _u(rng, 80, 105)
    elif family == "holding":  # a camera, a phone, a ball held up in front
        for s in SIDES:
            a[f"sh_flex_{s}"] = _u(rng, 45, 85)
            a[f"sh_raise_{s}"] = _u(rng, -20, 10)
            a[f"sh_twist_{s}"] = _u(rng, 20, 50)
            a[f"elbow_{s}"] = _u(rng, 70, 120)
        a["neck_flex"] = _u(rng, 0, 20)
        a["neck_turn"] = _u(rng, -10, 10)
    else:  # sports
        _sports(rng, a)


def _sports(rng: np.random.Generator, a: dict[str, float]) -> None:
    kind = int(rng.integers(4))
    s, o = (SIDES if rng.random() < 0.5 else SIDES[::-1])
    if kind == 0:  # kick: one leg swings forward, arms out for balance
        a[f"hip_flex_{s}"] = _u(rng, 40, 85)
        a[f"knee_{s}"] = _u(rng, 0, 40)
        a[f"knee_{o}"] = _u(rng, 5, 20)
        for side in SIDES:
            a[f"sh_raise_{side}"] = _u(rng, 20, 60)
        a["spine_flex"] = _u(rng, -10, 5)
    elif kind == 1:  # throw / serve: one arm up and back, trunk twisted
        a[f"sh_raise_{s}"] = _u(rng, 100, 160)
        a[f"sh_flex_{s}"] = _u(rng, -30, 10)
        a[f"elbow_{s}"] = _u(rng, 30, 100)
        a[f"sh_flex_{o}"] = _u(rng, 30, 80)
        a["spine_twist"] = _u(rng, -30, 30)
        a[f"hip_flex_{o}"] = _u(rng, 10, 30)
        a[f"knee_{o}"] = _u(rng, 10, 30)
    elif kind == 2:  # jump: knees tucked, arms up
        for side in SIDES:
            a[f"hip_flex_{side}"] = _u(rng, 20, 60)
            a[f"knee_{side}"] = _u(rng, 40, 100)
            a[f"sh_raise_{side}"] = _u(rng, 60, 150)
            a[f"elbow_{side}"] = _u(rng, 0, 40)
    else:  # lunge: front knee bent, back leg stretched behind
        a[f"hip_flex_{s}"] = _u(rng, 60, 90)
        a[f"knee_{s}"] = _u(rng, 60, 95)
        a[f"hip_flex_{o}"] = _u(rng, -30, -15)
        a[f"knee_{o}"] = _u(rng, 5, 30)
        a["spine_flex"] = _u(rng, 0, 20)


def angles_to_rotations(a: dict[str, float], dirs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Anatomical angles -> {bone name: (3, 3) local-ref rotation}."""
    rot: dict[str, np.ndarray] = {}
    # Root pitch tips the whole body forward about the pelvis (the hips compensate).
    rot["root"] = swing(UP, np.array([1.0, 0.0, 0.0]), a["root_roll"]) @ swing(UP, FORWARD, a["root_pitch"])
    spine_dir = dirs["spine"]
    per = 1.0 / len(SPINE)
    for bone in SPINE:  # spread trunk motion over the four spine joints
        side_target = np.array([1.0, 0.0, 0.0]) if a["spine_lat"] >= 0 else np.array([-1.0, 0.0, 0.0])
        rot[bone] = (
            swing(spine_dir, FORWARD, a["spine_flex"] * per)
            @ swing(spine_dir, side_target, abs(a["spine_lat"]) * per)
            @ twist(UP, a["spine_twist"] * per)
        )
    neck = dirs["neck"]
    tilt_target = np.array([1.0, 0.0, 0.0]) if a["neck_tilt"] >= 0 else np.array([-1.0, 0.0, 0.0])
    half = (
        swing(neck, FORWARD, a["neck_flex"] / 2)
        @ swing(neck, tilt_target, abs(a["neck_tilt"]) / 2)
        @ twist(UP, a["neck_turn"] / 2)
    )
    rot["neck01"] = half
    rot["head"] = half
    for s in SIDES:
        out = np.array([1.0, 0.0, 0.0]) if s == "L" else np.array([-1.0, 0.0, 0.0])
        thigh, shin = dirs[f"thigh.{s}"], dirs[f"shin.{s}"]
        rot[f"upperleg01.{s}"] = (
            swing(thigh, FORWARD, a[f"hip_flex_{s}"]) @ swing(thigh, out, a[f"hip_abd_{s}"])
            @ twist(thigh, a[f"hip_twist_{s}"] * (1 if s == "L" else -1))
        )
        rot[f"lowerleg01.{s}"] = swing(shin, BACKWARD, a[f"knee_{s}"])
        upper = dirs[f"upperarm.{s}"]
        rot[f"upperarm01.{s}"] = (
            swing(upper, FORWARD, a[f"sh_flex_{s}"]) @ swing(upper, UP, a[f"sh_raise_{s}"])
            @ twist(upper, a[f"sh_twist_{s}"] * (1 if s == "L" else -1))
        )
        # Elbow flexion turns the forearm towards the front, about the axis across the upper arm.
        rot[f"lowerarm01.{s}"] = swing(upper, FORWARD, a[f"elbow_{s}"])
        # Fingers curl towards the palm, which faces the thigh in the rest A-pose (medial: -X for L).
        palm = -out
        curl = a[f"curl_{s}"]
        for f in range(1, 6):
            for j, deg in zip((1, 2, 3), (15, 25, 15) if f == 1 else (45, 65, 40)):
                rot[f"finger{f}-{j}.{s}"] = swing(dirs[f"finger{f}-{j}.{s}"], palm, deg * curl)
    return rot


def sample_pose(model, rng: np.random.Generator, family: str | None = None,
                weight: float = 0.5, families: tuple[str, ...] | None = None) -> tuple[str, dict[str, np.ndarray]]:
    """One random pose: (family, {bone name: (3, 3) rotation}); ``weight`` is the body's phenotype.

    Without ``family`` it is drawn from ``families`` (default: the plain mode's ``FAMILIES``;
    ``REALISTIC_FAMILIES`` adds the realistic renders' families), with their weights.
    """
    if family is None:
        names, w = (FAMILIES, FAMILY_WEIGHTS) if families is None or families == FAMILIES else (
            REALISTIC_FAMILIES, REALISTIC_WEIGHTS)
        if families is not None and set(families) - set(names):
            raise ValueError(f"unknown pose families {sorted(set(families) - set(names))}")
        family = names[rng.choice(len(names), p=w / w.sum())]
    return family, angles_to_rotations(sample_angles(rng, family, weight), rest_directions(model))


def pose_tensor(model, rotations: list[dict[str, np.ndarray]]) -> torch.Tensor:
    """Per-person {bone: (3, 3)} -> Anny pose parameters (B, J, 4, 4) float32."""
    index = {name: i for i, name in enumerate(model.bone_labels)}
    P = np.tile(np.eye(4, dtype=np.float32), (len(rotations), model.bone_count, 1, 1))
    for b, rots in enumerate(rotations):
        for name, R in rots.items():
            P[b, index[name], :3, :3] = R
    return torch.from_numpy(P)
