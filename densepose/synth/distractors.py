"""Things that are not people: textured boxes, poles, tripods, flags and signs with text, tables,
chairs, cars, balls and clutter, as small triangle meshes standing on the ground.

A prop is a list of :class:`Part` (one texture each) in its own frame: ground at z = 0, centred on
the origin; ``radius`` is its footprint for placement. Every part is two-sided where it is open
(flags, signs), so back-face culling never opens a hole.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densepose.synth import textures

PROPS = ("box", "pole", "tripod", "flag", "sign", "table", "chair", "car", "ball", "clutter", "cabinet", "bin")
PROP_WEIGHTS = np.array([0.14, 0.08, 0.07, 0.09, 0.1, 0.08, 0.1, 0.06, 0.07, 0.09, 0.06, 0.06])


@dataclass
class Part:
    vertices: np.ndarray   # (V, 3) metres
    faces: np.ndarray      # (F, 3) counter-clockwise seen from outside
    uv: np.ndarray         # (V, 2) texture coordinates 0..1
    texture: np.ndarray    # (h, w, 3) uint8 sRGB
    specular: float = 0.05
    shininess: float = 20.0


@dataclass
class Prop:
    kind: str
    parts: list[Part]
    radius: float          # footprint radius (m)

    @property
    def height(self) -> float:
        return float(max(p.vertices[:, 2].max() for p in self.parts))

    def moved(self, yaw: float, offset: np.ndarray) -> "Prop":
        c, s = np.cos(yaw), np.sin(yaw)
        R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        parts = [Part(p.vertices @ R.T + offset, p.faces, p.uv, p.texture, p.specular, p.shininess) for p in self.parts]
        return Prop(self.kind, parts, self.radius)


# --------------------------------------------------------------------------- primitives
def box(size: tuple[float, float, float], centre: tuple[float, float, float], tex: np.ndarray, **kw) -> Part:
    """Axis-aligned box, 24 vertices (each face its own UV square)."""
    sx, sy, sz = (s / 2 for s in size)
    c = np.asarray(centre, dtype=np.float64)
    # Each face: 4 corners counter-clockwise seen from outside.
    quads = [
        [(-1, -1, -1), (1, -1, -1), (1, -1, 1), (-1, -1, 1)],   # front (-Y)
        [(1, 1, -1), (-1, 1, -1), (-1, 1, 1), (1, 1, 1)],       # back
        [(1, -1, -1), (1, 1, -1), (1, 1, 1), (1, -1, 1)],       # +X
        [(-1, 1, -1), (-1, -1, -1), (-1, -1, 1), (-1, 1, 1)],   # -X
        [(-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1)],       # top
        [(-1, 1, -1), (1, 1, -1), (1, -1, -1), (-1, -1, -1)],   # bottom
    ]
    v = np.array([q for quad in quads for q in quad], dtype=np.float64) * [sx, sy, sz] + c
    f = np.array([[4 * k, 4 * k + 1, 4 * k + 2] for k in range(6)] + [[4 * k, 4 * k + 2, 4 * k + 3] for k in range(6)])
    uv = np.tile([[0, 1], [1, 1], [1, 0], [0, 0]], (6, 1)).astype(np.float64)
    return Part(v, f, uv, tex, **kw)


def cylinder(radius: float, height: float, base: tuple[float, float, float], tex: np.ndarray,
             segments: int = 10, axis: np.ndarray | None = None, **kw) -> Part:
    """Capped cylinder from ``base`` along ``axis`` (default +Z)."""
    axis = np.array([0, 0, 1.0]) if axis is None else np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    a = np.arange(segments + 1) / segments * 2 * np.pi
    ring = np.cos(a)[:, None] * e1 + np.sin(a)[:, None] * e2
    b = np.asarray(base, dtype=np.float64)
    bottom = b + radius * ring
    top = bottom + axis * height
    v = np.concatenate([bottom, top, [b, b + axis * height]])
    n = segments + 1
    f = []
    for k in range(segments):
        f += [[k, k + 1, n + k + 1], [k, n + k + 1, n + k]]
        f += [[2 * n + 1, n + k, n + k + 1], [2 * n, k + 1, k]]
    uv = np.concatenate([np.column_stack([a / (2 * np.pi), np.ones(n)]), np.column_stack([a / (2 * np.pi), np.zeros(n)]),
                         [[0.5, 0.5], [0.5, 0.5]]])
    return Part(v, np.array(f), uv, tex, **kw)


def panel(width: float, height: float, bottom_centre: tuple[float, float, float], tex: np.ndarray,
          wave: float = 0.0, rng: np.random.Generator | None = None, columns: int = 6, **kw) -> Part:
    """A two-sided vertical rectangle in the x-z plane (a sign, a flag when ``wave`` > 0)."""
    xs = np.linspace(-width / 2, width / 2, columns + 1)
    zs = np.linspace(0, height, 3)
    X, Z = np.meshgrid(xs, zs)
    phase = rng.uniform(0, 2 * np.pi) if rng is not None else 0.0
    Y = wave * np.sin(X / max(width, 1e-6) * 2 * np.pi * 1.2 + phase) * (X - xs[0]) / max(width, 1e-6)
    v = np.column_stack([X.ravel(), Y.ravel(), Z.ravel()]) + np.asarray(bottom_centre)
    uv = np.column_stack([(X.ravel() - xs[0]) / width, 1 - Z.ravel() / height])
    f = []
    nc = columns + 1
    for r in range(2):
        for c in range(columns):
            a, b, d, e = r * nc + c, r * nc + c + 1, (r + 1) * nc + c + 1, (r + 1) * nc + c
            f += [[a, b, d], [a, d, e]]
    f = np.array(f)
    return Part(v, np.concatenate([f, f[:, ::-1]]), uv, tex, **kw)


# --------------------------------------------------------------------------- props
def make_prop(rng: np.random.Generator, kind: str, photos: list[str] = ()) -> Prop:
    """A random prop of ``kind`` (one of ``PROPS``); box and sign faces sometimes show a crop of
    one of ``photos`` (posters, printed cartons)."""

    def T(rng: np.random.Generator, kind: str) -> np.ndarray:
        if photos and kind in ("poster", "sign", "cardboard") and rng.random() < 0.3:
            from densepose.synth.appearance import photo_background

            return photo_background(rng, photos[int(rng.integers(len(photos)))], 96, 96)
        return textures.texture(rng, kind)
    if kind == "box":
        s = rng.uniform(0.25, 1.0, 3) * [1, 1, rng.uniform(0.6, 1.6)]
        tex = T(rng, str(rng.choice(["cardboard", "wood", "paint", "poster"])))
        parts = [box(tuple(s), (0, 0, s[2] / 2), tex)]
        if rng.random() < 0.4:  # a stack
            s2 = s * rng.uniform(0.6, 1.0, 3)
            parts.append(box(tuple(s2), (0, 0, s[2] + s2[2] / 2), T(rng, "cardboard")))
        return Prop(kind, parts, float(np.hypot(s[0], s[1]) / 2))
    if kind == "cabinet":
        s = (rng.uniform(0.5, 1.5), rng.uniform(0.4, 0.7), rng.uniform(0.8, 2.0))
        return Prop(kind, [box(s, (0, 0, s[2] / 2), T(rng, str(rng.choice(["wood", "paint", "metal"]))))],
                    float(np.hypot(s[0], s[1]) / 2))
    if kind == "pole":
        h = rng.uniform(1.5, 4.0)
        r = rng.uniform(0.03, 0.12)
        parts = [cylinder(r, h, (0, 0, 0), T(rng, str(rng.choice(["metal", "paint", "wood"]))), specular=0.3)]
        if rng.random() < 0.4:  # a lamp head or a box on top
            parts.append(box((0.3, 0.3, 0.25), (0, 0, h + 0.12), T(rng, "metal")))
        return Prop(kind, parts, 0.2)
    if kind == "tripod":
        h = rng.uniform(1.0, 1.7)
        tex = T(rng, "metal")
        parts = []
        top = np.array([0, 0, h])
        for k in range(3):
            a = k * 2 * np.pi / 3 + rng.uniform(-0.2, 0.2)
            foot = np.array([np.cos(a), np.sin(a), 0.0]) * rng.uniform(0.3, 0.5)
            parts.append(cylinder(0.012, np.linalg.norm(top - foot), tuple(foot), tex, segments=6, axis=top - foot))
        parts.append(box((rng.uniform(0.15, 0.35), 0.12, 0.15), (0, 0, h + 0.08), T(rng, "paint"), specular=0.3))
        return Prop(kind, parts, 0.5)
    if kind in ("flag", "sign"):
        h = rng.uniform(1.5, 3.5) if kind == "flag" else rng.uniform(0.8, 2.5)
        w = rng.uniform(0.6, 1.6) if kind == "flag" else rng.uniform(0.4, 1.2)
        ph = w * rng.uniform(0.55, 0.75) if kind == "flag" else w * rng.uniform(0.5, 1.0)
        pole = cylinder(0.025, h + ph, (0, 0, 0), T(rng, "metal"), segments=6, specular=0.3)
        if kind == "flag":
            sheet = panel(w, ph, (w / 2 + 0.03, 0, h), T(rng, "flag"), wave=rng.uniform(0.03, 0.15), rng=rng)
        else:
            sheet = panel(w, ph, (0, -0.03, h), T(rng, "sign"))
        return Prop(kind, [pole, sheet], max(0.2, w / 2))
    if kind in ("table", "chair"):
        tex = T(rng, str(rng.choice(["wood", "paint", "metal"])))
        if kind == "table":
            w, d, h = rng.uniform(0.6, 1.8), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.05)
        else:
            w, d, h = rng.uniform(0.38, 0.5), rng.uniform(0.38, 0.5), rng.uniform(0.4, 0.5)
        parts = [box((w, d, 0.04), (0, 0, h), tex)]
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(box((0.04, 0.04, h), (sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), h / 2), tex))
        if kind == "chair":
            parts.append(box((w, 0.04, rng.uniform(0.35, 0.5)), (0, d / 2 - 0.02, h + 0.22), tex))
        return Prop(kind, parts, float(np.hypot(w, d) / 2))
    if kind == "car":
        L, W, H = rng.uniform(3.5, 4.8), rng.uniform(1.6, 1.9), rng.uniform(0.6, 0.8)
        body_tex = T(rng, "paint")
        parts = [box((W, L, H), (0, 0, 0.3 + H / 2), body_tex, specular=0.5, shininess=60),
                 box((W * 0.9, L * 0.5, 0.5), (0, -L * 0.05, 0.3 + H + 0.25), T(rng, "metal"), specular=0.6, shininess=80)]
        tyre = np.full((8, 8, 3), 25, np.uint8)
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(cylinder(0.32, 0.22, (sx * W / 2 - (0.22 if sx > 0 else 0), sy * L * 0.32, 0.32), tyre,
                                      axis=np.array([1.0, 0, 0])))
        return Prop(kind, parts, float(np.hypot(L, W) / 2))
    if kind == "ball":
        r = rng.uniform(0.1, 0.4)
        return Prop(kind, [_sphere(r, (0, 0, r), T(rng, str(rng.choice(["paint", "fabric"]))))], r)
    if kind == "bin":
        r, h = rng.uniform(0.2, 0.4), rng.uniform(0.5, 1.1)
        return Prop(kind, [cylinder(r, h, (0, 0, 0), T(rng, str(rng.choice(["paint", "metal"]))), segments=14)], r)
    # clutter: a few small boxes and cylinders around the origin
    parts = []
    for _ in range(int(rng.integers(2, 6))):
        x, y = rng.uniform(-0.5, 0.5, 2)
        if rng.random() < 0.5:
            s = rng.uniform(0.08, 0.4, 3)
            parts.append(box(tuple(s), (x, y, s[2] / 2), T(rng, str(rng.choice(["cardboard", "paint", "poster"])))))
        else:
            parts.append(cylinder(rng.uniform(0.04, 0.15), rng.uniform(0.1, 0.5), (x, y, 0), T(rng, "paint"), segments=8))
    return Prop(kind, parts, 0.7)


def _sphere(radius: float, centre: tuple[float, float, float], tex: np.ndarray, rings: int = 8, segments: int = 12) -> Part:
    th = np.linspace(0, np.pi, rings + 1)
    ph = np.linspace(0, 2 * np.pi, segments + 1)
    T, P = np.meshgrid(th, ph, indexing="ij")
    v = np.column_stack([np.sin(T.ravel()) * np.cos(P.ravel()), np.sin(T.ravel()) * np.sin(P.ravel()), np.cos(T.ravel())])
    f = []
    n = segments + 1
    for r in range(rings):
        for c in range(segments):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c + 1, (r + 1) * n + c
            f += [[a, d, b], [a, e, d]]
    uv = np.column_stack([P.ravel() / (2 * np.pi), T.ravel() / np.pi])
    return Part(v * radius + np.asarray(centre), np.array(f), uv, tex, specular=0.2)


def sample_props(rng: np.random.Generator, count: int, photos: list[str] = ()) -> list[Prop]:
    kinds = rng.choice(len(PROPS), size=count, p=PROP_WEIGHTS / PROP_WEIGHTS.sum())
    return [make_prop(rng, PROPS[k], photos) for k in kinds]


def seat_under(rng: np.random.Generator, body: np.ndarray, seat_ids: np.ndarray) -> Prop | None:
    """A stool or crate whose top touches the lowest of ``body``'s (V, 3) seat vertices (the buttocks
    of a sitting person, ground at z = 0), or None when they are near the ground."""
    seat = body[seat_ids]
    top = float(seat[:, 2].min())
    if top < 0.15:
        return None
    cx, cy = seat[:, :2].mean(0)
    w = rng.uniform(0.35, 0.5)
    kind = str(rng.choice(["wood", "paint", "cardboard", "metal"]))
    return Prop("seat", [box((w, w, top), (cx, cy, top / 2), textures.texture(rng, kind))], w / 2)
