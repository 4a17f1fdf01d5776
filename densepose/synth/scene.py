"""Compose one synthetic image: people (shape, pose, look), camera, lighting, background, ground truth.

``Synthesizer(config).render(seed, index)`` is a pure function of (seed, index): the per-image
random generator is seeded with ``SeedSequence([seed, index])``, so shards, worker counts and
resumed runs give identical images.

World frame: metres, Z up, ground at z = 0. The camera sits at (0, 0, h) looking along +Y,
pitched down and rolled a little; people stand on the ground in front of it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from densepose.synth import appearance
from densepose.synth.groundtruth import person_annotation
from densepose.synth.poses import pose_tensor, sample_pose
from densepose.synth.raster import fragments_multi, interpolate

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")


@dataclass
class SynthConfig:
    """What the generator draws. Sizes in pixels, distances in metres."""

    height: int = 512
    width: int = 512
    max_people: int = 4
    min_people: int = 1
    min_dp_pixels: int = 300       # visible pixels a person needs for dp_* fields
    photos: list[str] = field(default_factory=list)  # background photo paths


@dataclass
class Sample:
    """One rendered image and its ground truth."""

    rgb: np.ndarray          # (H, W, 3) uint8
    instance: np.ndarray     # (H, W) uint8, 0 background, k = k-th entry of ``people``
    I: np.ndarray            # (H, W) uint8 chart 0..24
    U: np.ndarray            # (H, W) float16
    V: np.ndarray            # (H, W) float16
    people: list[dict]       # DensePose-COCO annotation fields, without ids


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of image ``index`` of a run with ``seed`` (independent of sharding)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def sample_phenotype(rng: np.random.Generator) -> dict[str, float]:
    """Anny phenotype in [0, 1]: children to elderly, every build and height."""
    age = rng.uniform(0.22, 0.5) if rng.random() < 0.2 else rng.uniform(0.5, 1.0)
    return {
        "gender": float(rng.uniform(0, 1)),
        "age": float(age),
        "muscle": float(rng.beta(2, 2)),
        "weight": float(rng.beta(2, 2.5)),
        "height": float(rng.uniform(0, 1)),
        "proportions": float(rng.uniform(0, 1)),
    }


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class _Clock:
    """Adds the CPU seconds since the previous call to ``timings[stage]`` (no-op without a dict).

    CPU time, not wall time: on a shared machine it is the figure that does not depend on the
    other jobs (the renderer is single-threaded).
    """

    def __init__(self, timings: dict | None):
        self.timings = timings
        self.last = time.process_time()

    def __call__(self, stage: str) -> None:
        if self.timings is not None:
            now = time.process_time()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
            self.last = now


class Synthesizer:
    """Holds the body model, the chart surface and per-vertex tables; renders samples."""

    def __init__(self, config: SynthConfig):
        import anny

        from densepose.surface import load_surface
        from densepose.surface.anny import body_vertex_ids, load_anny_model

        self.config = config
        self.model = load_anny_model()
        self.keypoints = anny.KeypointsRegressor.coco(self.model)
        self.surface = load_surface("anny")
        self.body_ids = body_vertex_ids()
        self.faces = np.ascontiguousarray(self.surface.faces)
        self.features_t = np.ascontiguousarray(appearance.vertex_features(self.surface.vertices).T)  # (5, V)
        nv, nf = len(self.surface.vertices), len(self.faces)
        # Vertex normals = sum of the adjacent faces' area-weighted normals: one sparse product.
        self.incidence = sp.csr_matrix(
            (np.ones(3 * nf, dtype=np.float32), (self.faces.ravel(), np.repeat(np.arange(nf), 3))), shape=(nv, nf)
        )

    # ------------------------------------------------------------------ people
    def _people(self, rng: np.random.Generator, n: int):
        import torch

        phen = [sample_phenotype(rng) for _ in range(n)]
        poses = [sample_pose(self.model, rng, weight=p["weight"]) for p in phen]
        P = pose_tensor(self.model, [rot for _, rot in poses])
        kwargs = {k: torch.tensor([p[k] for p in phen], dtype=torch.float32) for k in PHENOTYPES}
        with torch.no_grad():
            out = self.model(pose_parameters=P, phenotype_kwargs=kwargs)
            kps = self.keypoints(out)[:, :17].double().numpy()
        verts = out["vertices"].double().numpy()[:, self.body_ids]
        return phen, [f for f, _ in poses], verts, kps

    # ------------------------------------------------------------------ camera + placement
    def _scene(self, rng: np.random.Generator, verts: np.ndarray, kps: np.ndarray):
        """Camera (K, R, C) and people moved to their ground positions; drops those that do not fit."""
        H, W = self.config.height, self.config.width
        fov = np.radians(rng.uniform(35, 70))
        f = 0.5 * max(H, W) / np.tan(fov / 2)
        K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
        cam_h = rng.uniform(0.5, 2.3)
        frac = rng.uniform(0.35, 1.0)  # apparent height of a 1.7 m person, fraction of the image
        D = f * 1.7 / (frac * H)
        target_z = rng.uniform(0.5, 1.3)
        pitch = np.arctan2(cam_h - target_z, D) + rng.normal(0, 0.05)
        roll = rng.normal(0, np.radians(4))
        # World -> camera: x right, y down, z forward (+Y world pitched down by `pitch`).
        fwd = np.array([0.0, np.cos(pitch), -np.sin(pitch)])
        right = np.array([1.0, 0.0, 0.0])
        down = np.cross(fwd, right)
        R = np.stack([right, down, fwd])
        cr, sr = np.cos(roll), np.sin(roll)
        R = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1.0]]) @ R
        C = np.array([0.0, 0.0, cam_h])

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
        return K, R, C, placed_v, placed_k, placed, spots

    # ------------------------------------------------------------------ render
    def render(self, seed: int, index: int, timings: dict | None = None) -> Sample:
        """Image ``index`` of the run ``seed``; ``timings`` (optional) accumulates seconds per stage."""
        clock = _Clock(timings)
        cfg = self.config
        H, W = cfg.height, cfg.width
        rng = image_rng(seed, index)
        n = int(rng.integers(cfg.min_people, cfg.max_people + 1))
        phen, families, verts, kps = self._people(rng, n)
        clock("body model")
        looks = [appearance.sample_look(rng, p["age"]) for p in phen]
        K, R, C, world_v, world_k, placed, spots = self._scene(rng, verts, kps)
        phen = [phen[i] for i in placed]
        families = [families[i] for i in placed]
        looks = [looks[i] for i in placed]
        cam_v = [(v - C) @ R.T for v in world_v]
        cam_k = [(k - C) @ R.T for k in world_k]

        clock("poses, looks, camera")
        fg, k_pix, f_pix, b_pix, z_pix = fragments_multi(cam_v, self.faces, K, H, W)
        inst = np.full(H * W, -1, dtype=np.int64)
        inst[fg] = k_pix
        depth = np.full(H * W, np.inf, dtype=np.float32)
        depth[fg] = z_pix
        inst, depth = inst.reshape(H, W), depth.reshape(H, W)
        clock("rasterise")
        I_pix, uv_pix = self.surface.iuv_from_points(f_pix, b_pix)
        clock("I, U, V")

        # Appearance per pixel.
        corners = self.faces[f_pix]  # (N, 3)
        feat = interpolate(self.features_t, corners, b_pix)
        normals = self._pixel_normals(cam_v, k_pix, corners, b_pix)
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

        rgb = appearance.background(rng, cfg.photos, H, W, self._floor_line(rng, K, R, C, spots))
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

    @staticmethod
    def _floor_line(rng: np.random.Generator, K, R, C, spots) -> np.ndarray | None:
        """Pixel points (2, 2) of a wall's base behind the people (None if it is not in front)."""
        far = max([y for _, y, _ in spots], default=3.0) * rng.uniform(1.2, 2.5)
        ends = np.array([[-50.0, far, 0.0], [50.0, far, 0.0]])
        cam = (ends - C) @ R.T
        if (cam[:, 2] < 0.1).any():
            return None
        return cam[:, :2] / cam[:, 2:] @ K[:2, :2].T + K[:2, 2]

    def _pixel_normals(self, cam_v, k_pix, corners, b_pix) -> np.ndarray:
        """Interpolated unit vertex normals (N, 3) float32 in camera coordinates."""
        if not cam_v:
            return np.zeros((0, 3), dtype=np.float32)
        nv = len(cam_v[0])
        fn = []
        for v in cam_v:
            tri = v.astype(np.float32)[self.faces]  # (F, 3, 3)
            fn.append(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
        vn = self.incidence @ np.concatenate(fn, axis=1)  # (V, 3B): area-weighted sums of face normals
        vn = vn.reshape(nv, len(cam_v), 3).transpose(1, 0, 2).reshape(-1, 3)
        n = interpolate(np.ascontiguousarray(vn.T), corners + (k_pix * nv)[:, None], b_pix)
        return n / (np.sqrt((n * n).sum(axis=1, keepdims=True)) + 1e-12)
