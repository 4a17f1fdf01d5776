"""The plain render of ``densepose synth --plain``: bare bodies with painted clothes, Lambert
shading, photo or procedural backgrounds (the generator's first mode, kept for comparison and
for the smallest, fastest data).
"""
from __future__ import annotations

import numpy as np

from densepose.synth import appearance
from densepose.synth.backdrop import floor_line
from densepose.synth.camera import look_camera
from densepose.synth.groundtruth import person_annotation
from densepose.synth.raster import fragments_multi, interpolate
from densepose.synth.scene import PHENOTYPES, Sample, rotation_z


def _scene(synth, rng: np.random.Generator, verts: np.ndarray, kps: np.ndarray):
    """Camera and people moved to their ground positions; drops those that do not fit."""
    H, W = synth.config.height, synth.config.width
    fov = np.radians(rng.uniform(35, 70))
    f = 0.5 * max(H, W) / np.tan(fov / 2)
    cam_h = rng.uniform(0.5, 2.3)
    frac = rng.uniform(0.35, 1.0)  # apparent height of a 1.7 m person, fraction of the image
    D = f * 1.7 / (frac * H)
    target_z = rng.uniform(0.5, 1.3)
    pitch = np.arctan2(cam_h - target_z, D) + rng.normal(0, 0.05)
    roll = rng.normal(0, np.radians(4))
    camera = look_camera(H, W, fov, np.array([0.0, 0.0, cam_h]), pitch, roll)

    placed_v, placed_k, placed, spots = [], [], [], []
    for i, (v, kp) in enumerate(zip(verts, kps)):
        yaw = rng.uniform(-np.pi, np.pi)
        Rz = rotation_z(yaw)
        v = v @ Rz.T
        kp = kp @ Rz.T
        lift = -v[:, 2].min()
        # Horizontal reach around the pelvis: discs of two people never overlap, so bodies do not intersect.
        radius = np.sqrt((v[:, 0] ** 2 + v[:, 1] ** 2).max())
        for _ in range(30):
            depth = D * rng.uniform(0.8, 1.4)
            u = rng.uniform(-0.1, 1.1) * W
            x = (u - W / 2) / f * depth
            if all(np.hypot(x - sx, depth - sy) > radius + sr_ for sx, sy, sr_ in spots):
                break
        else:
            continue
        spots.append((x, depth, radius))
        shift = np.array([x, depth, lift])
        placed_v.append(v + shift)
        placed_k.append(kp + shift)
        placed.append(i)
    return camera, placed_v, placed_k, placed, spots


def render_plain(synth, rng: np.random.Generator, clock) -> Sample:
    """The plain render: one image from ``rng``; ``clock(stage)`` records stage times."""
    cfg = synth.config
    H, W = cfg.height, cfg.width
    n = int(rng.integers(cfg.min_people, cfg.max_people + 1))
    phen, families, verts, kps = synth._people(rng, n)
    clock("body model")
    looks = [appearance.sample_look(rng, p["age"]) for p in phen]
    camera, world_v, world_k, placed, spots = _scene(synth, rng, verts, kps)
    K, R, C = camera.K, camera.R, camera.C
    phen = [phen[i] for i in placed]
    families = [families[i] for i in placed]
    looks = [looks[i] for i in placed]
    cam_v = [(v - C) @ R.T for v in world_v]
    cam_k = [(k - C) @ R.T for k in world_k]

    clock("poses, looks, camera")
    fg, k_pix, f_pix, b_pix, z_pix = fragments_multi(cam_v, synth.faces, K, H, W)
    inst = np.full(H * W, -1, dtype=np.int64)
    inst[fg] = k_pix
    depth = np.full(H * W, np.inf, dtype=np.float32)
    depth[fg] = z_pix
    inst, depth = inst.reshape(H, W), depth.reshape(H, W)
    clock("rasterise")
    I_pix, uv_pix = synth.surface.iuv_from_points(f_pix, b_pix)
    clock("I, U, V")

    # Appearance per pixel.
    corners = synth.faces[f_pix]  # (N, 3)
    feat = interpolate(synth.features_t, corners, b_pix)
    normals = synth._pixel_normals(cam_v, k_pix, corners, b_pix)
    light = rng.normal(0, 1, 3) * np.array([0.8, 0.5, 0.5]) + np.array([0.0, -0.6, -0.8])
    light /= np.linalg.norm(light)
    ambient = rng.uniform(0.25, 0.6)
    tint = np.clip(rng.normal(1.0, 0.06, 3), 0.8, 1.2)
    colour = np.zeros((len(fg), 3))
    for k, look in enumerate(looks):
        sel = np.flatnonzero(k_pix == k)
        if len(sel):
            reg = appearance.regions(I_pix[sel], feat[sel], look)
            colour[sel] = appearance.albedo(feat[sel], reg, look)
    colour = appearance.shade(colour, normals, light, ambient, tint)
    clock("appearance + shading")

    wall = max([y for _, y, _ in spots], default=3.0) * rng.uniform(1.2, 2.5)  # behind the people
    rgb = appearance.background(rng, cfg.photos, H, W, floor_line(camera, wall))
    for x, y, radius in spots:  # soft contact shadows so people stand on the ground
        appearance.ground_shadow(rgb, np.array([x, y, 0.0]), radius, K, R, C, strength=rng.uniform(0.25, 0.6))
    rgb = rgb.reshape(-1, 3)
    rgb[fg] = (colour * 255 + 0.5).astype(np.uint8)
    rgb = rgb.reshape(H, W, 3)
    rgb = appearance.degrade(rng, rgb)
    clock("background + blur/noise")

    # Dense maps; people renumbered 1..M in order, skipping those with no visible pixel.
    visible = np.bincount(k_pix, minlength=len(cam_v))
    keep = np.flatnonzero(visible > 0)
    renum = np.zeros(len(cam_v) + 1, dtype=np.uint8)
    renum[keep + 1] = np.arange(1, len(keep) + 1)
    instance = renum[inst + 1]
    I = np.zeros(H * W, dtype=np.uint8)
    U = np.zeros(H * W, dtype=np.float16)
    V = np.zeros(H * W, dtype=np.float16)
    I[fg] = I_pix
    U[fg] = uv_pix[:, 0]
    V[fg] = uv_pix[:, 1]
    I, U, V = I.reshape(H, W), U.reshape(H, W), V.reshape(H, W)

    people = []
    for new_id, k in enumerate(keep, start=1):
        ann = person_annotation(
            rng, instance == new_id, I, U, V, depth, cam_k[k], K, new_id, instance, cfg.min_dp_pixels
        )
        ann["synth"] = {"family": families[k], **{p: round(phen[k][p], 4) for p in PHENOTYPES}}
        people.append(ann)
    clock("annotations")
    return Sample(rgb, instance, I, U, V, people)

