"""Skin across the human range, hair colours, and a simple face (eyes, brows, lips) painted on the
head charts at fixed places of the rest template, so it follows pose and expression-free shape.

Rest template landmarks (metres, pelvis at the origin, the person faces -Y, their left is +X):
eye centres at (+-0.029, z 0.648) (the apices of Anny's eyeball meshes), brows 0.02 above, mouth
at z 0.582 (just above the tongue mesh).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Skin reflectance in sRGB, from very light to very dark (interpolated continuously).
SKIN_TONES = np.array([[250, 222, 204], [241, 200, 170], [228, 180, 145], [212, 158, 118], [190, 132, 95],
                       [163, 108, 74], [133, 85, 57], [104, 66, 45], [78, 50, 36], [58, 38, 28]], dtype=np.float32)
HAIR_COLOURS = np.array([[18, 14, 12], [35, 25, 18], [60, 40, 25], [95, 65, 40], [135, 95, 55], [185, 150, 100],
                         [220, 195, 140], [130, 55, 25], [150, 148, 145], [215, 212, 205]], dtype=np.float32)
EYE_COLOURS = np.array([[60, 35, 20], [90, 60, 30], [70, 100, 130], [80, 110, 70], [40, 25, 15]], dtype=np.float32)

EYE_X, EYE_Z, EYE_FRONT = 0.029, 0.648, -0.07
BROW_DZ = 0.02
MOUTH_Z = 0.582


@dataclass
class SkinLook:
    skin: np.ndarray        # (3,) sRGB 0..1
    blush: np.ndarray       # (3,) sRGB 0..1, cheeks and lips are pulled towards it
    hair: np.ndarray        # (3,) sRGB 0..1 (brows, painted short hair, hair meshes)
    eye: np.ndarray         # (3,) iris colour
    waves: np.ndarray       # (3, 4) random plane waves for blotchiness
    scalp_hair: bool        # paint short hair on the scalp (when no hair mesh covers it)
    face: bool              # paint eyes, brows and lips


def sample_skin(rng: np.random.Generator, age: float) -> SkinLook:
    """A person's skin, hair and eye colours; ``age`` is Anny's phenotype 0..1 (greys with age)."""
    t = rng.beta(1.1, 1.1) * (len(SKIN_TONES) - 1)
    i = int(t)
    skin = SKIN_TONES[i] * (1 - t % 1) + SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] * (t % 1)
    skin = np.clip(skin * rng.uniform(0.93, 1.05) * rng.normal(1, 0.025, 3), 0, 255) / 255
    dark_hair = t > 4 or rng.random() < 0.7
    if age > 0.85 and rng.random() < 0.6:
        hair = HAIR_COLOURS[int(rng.integers(8, 10))]
    else:
        hair = HAIR_COLOURS[int(rng.integers(0, 4))] if dark_hair else HAIR_COLOURS[int(rng.integers(3, 8))]
    hair = np.clip(hair * rng.uniform(0.85, 1.15), 0, 255) / 255
    eye = EYE_COLOURS[int(rng.integers(0, 2 if t > 4 else len(EYE_COLOURS)))] / 255
    waves = rng.normal(0, 1, (3, 4))
    waves[:, 3] = rng.uniform(0, 2 * np.pi, 3)
    blush = np.clip(skin * np.array([1.0, 0.78, 0.78]) * rng.uniform(0.85, 1.0), 0, 1)
    return SkinLook(skin.astype(np.float32), blush.astype(np.float32), hair.astype(np.float32), eye.astype(np.float32),
                    waves.astype(np.float32), bool(rng.random() < 0.5), bool(rng.random() < 0.95))


def skin_albedo(look: SkinLook, rest: np.ndarray, I: np.ndarray) -> np.ndarray:
    """sRGB albedo (N, 3) float32 of body pixels at rest points (N, 3) with charts I (N,)."""
    p = np.asarray(rest, dtype=np.float32)
    blotch = np.zeros(len(p), np.float32)
    for w in look.waves:
        blotch += np.sin(p @ (w[:3] * np.float32(30)) + w[3])
    out = look.skin[None] * (1 + np.float32(0.025) * blotch)[:, None]
    head = np.flatnonzero(I >= 23)
    if len(head):
        out[head] = _paint_head(look, p[head], out[head])
    return np.clip(out, 0, 1).astype(np.float32)


def _paint_head(look: SkinLook, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    front = y < EYE_FRONT
    if look.scalp_hair:  # short hair: the top and back of the head, forehead free
        hairline = np.where(y < -0.03, 0.705, 0.66)
        cover = (z > hairline) | ((y > 0.0) & (z > 0.6))
        out = np.where(cover[:, None], look.hair, out)
    if not look.face:
        return out
    ax = np.abs(x)
    # Cheeks: a little redder.
    cheek = np.exp(-(((ax - 0.042) / 0.02) ** 2 + ((z - 0.615) / 0.02) ** 2)) * front
    out = out * (1 - 0.3 * cheek[:, None]) + look.blush * (0.3 * cheek[:, None])
    # Lips: an ellipse under the nose.
    lips = front & ((x / 0.022) ** 2 + ((z - MOUTH_Z) / 0.007) ** 2 < 1)
    out = np.where(lips[:, None], look.blush * 0.75, out)
    # Eyes: a small almond of dull white, mostly filled by the iris and pupil; brows above.
    inset = y < EYE_FRONT - 0.02
    ex, ez = (ax - EYE_X) / 0.011, (z - EYE_Z) / 0.0045
    eye = inset & (ex * ex + ez * ez < 1)
    r2 = (ax - EYE_X) ** 2 + (z - EYE_Z) ** 2
    out = np.where(eye[:, None], look.skin * 0.25 + np.float32(0.5), out)
    out = np.where((eye & (r2 < 0.005 ** 2))[:, None], look.eye, out)
    out = np.where((eye & (r2 < 0.0022 ** 2))[:, None], np.float32(0.03), out)
    bz = z - (EYE_Z + BROW_DZ) - 0.004 * np.cos((ax - EYE_X) / 0.016 * np.pi / 2)
    brow = front & (np.abs(ax - EYE_X) < 0.018) & (np.abs(bz) < 0.0035)
    return np.where(brow[:, None], look.hair * 0.8, out)


def hair_albedo(look: SkinLook, rest: np.ndarray) -> np.ndarray:
    """Hair colour with locks: variation around the head's vertical axis, wavy along it, (N, 3)."""
    p = np.asarray(rest, dtype=np.float32)
    around = np.arctan2(p[:, 0], p[:, 1] - np.float32(0.0))
    wave = np.sin(p[:, 2] * np.float32(30) + look.waves[0, 3]) * np.float32(1.5)
    locks = np.sin(around * np.float32(23) + wave) * np.float32(0.5) + np.sin(around * np.float32(61) - wave) * np.float32(0.5)
    shade = 1 + np.float32(0.12) * locks
    return np.clip(look.hair[None] * shade[:, None], 0, 1).astype(np.float32)
