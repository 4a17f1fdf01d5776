"""Compose one synthetic image: people (shape, pose, look), camera, lighting, background, ground truth.

``Synthesizer(config).render(seed, index)`` is a pure function of (seed, index): the per-image
random generator is seeded with ``SeedSequence([seed, index])``, so shards, worker counts and
resumed runs give identical images. Two modes share the body model and the annotation code:

- realistic (default, ``densepose.synth.compose``): dressed people with hair and faces, props and
  occluders, image-based lighting with soft shadows, camera effects, crowds and empty scenes;
- plain (``densepose.synth.plain``): bare bodies with painted clothes, the first generator.

World frame: metres, Z up, ground at z = 0; cameras look roughly along +Y.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from densepose.synth import appearance
from densepose.synth.poses import pose_tensor, sample_pose
from densepose.synth.raster import interpolate

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")


@dataclass
class SynthConfig:
    """What the generator draws. Sizes in pixels, distances in metres."""

    height: int = 512
    width: int = 512
    max_people: int = 4            # people in an ordinary scene (crowds have more)
    min_people: int = 1
    min_dp_pixels: int = 300       # visible pixels a person needs for dp_* fields
    photos: list[str] = field(default_factory=list)  # background photo paths
    plain: bool = False            # the plain mode (no clothes, props, IBL or camera effects)
    hdris: list[str] = field(default_factory=list)   # OpenEXR panoramas (lighting, backgrounds)
    assets: str | None = None      # MakeHuman clothes/hair folder for the garment library
    negative_fraction: float = 0.1  # images with no person (hard negatives, no annotations)
    crowd_fraction: float = 0.08   # images with a crowd of ``crowd_size`` small people
    crowd_size: tuple[int, int] = (10, 16)
    portrait_fraction: float = 0.0  # of the images with people, head-and-shoulders portraits
    max_props: int = 6             # distractor objects per image: 0..max_props


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
    """Holds the body model, the chart surface, per-vertex tables and the garment library; renders samples."""

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
        self.rest = np.asarray(self.surface.vertices, dtype=np.float32)
        self.features_t = np.ascontiguousarray(appearance.vertex_features(self.surface.vertices).T)  # (5, V)
        # Buttocks on the rest template (behind and below the hip joints): what a sitting person sits on.
        r = self.rest
        self.seat_ids = np.flatnonzero((r[:, 1] > 0.03) & (r[:, 2] > -0.2) & (r[:, 2] < -0.05) & (np.abs(r[:, 0]) < 0.15))
        nv, nf = len(self.surface.vertices), len(self.faces)
        # Vertex normals = sum of the adjacent faces' area-weighted normals: one sparse product.
        self.incidence = sp.csr_matrix(
            (np.ones(3 * nf, dtype=np.float32), (self.faces.ravel(), np.repeat(np.arange(nf), 3))), shape=(nv, nf)
        )
        self.garments = None
        if not config.plain:
            from densepose.synth.compose import load_garments
            from densepose.synth.lighting import preload

            self.garments = load_garments(config.assets)
            preload(config.hdris)

    def render(self, seed: int, index: int, timings: dict | None = None) -> Sample:
        """Image ``index`` of the run ``seed``; ``timings`` (optional) accumulates seconds per stage."""
        clock = _Clock(timings)
        rng = image_rng(seed, index)
        if self.config.plain:
            from densepose.synth.plain import render_plain

            return render_plain(self, rng, clock)
        from densepose.synth.compose import render_realistic

        return render_realistic(self, rng, clock)

    # ------------------------------------------------------------------ shared by both modes
    def _people(self, rng: np.random.Generator, n: int, families: tuple[str, ...] | None = None):
        """``n`` random people: phenotypes, pose families, posed body vertices (n, V, 3), keypoints (n, 17, 3)."""
        import torch

        phen = [sample_phenotype(rng) for _ in range(n)]
        poses = [sample_pose(self.model, rng, weight=p["weight"], families=families) for p in phen]
        if n == 0:
            return phen, [], np.zeros((0, len(self.rest), 3)), np.zeros((0, 17, 3))
        P = pose_tensor(self.model, [rot for _, rot in poses])
        kwargs = {k: torch.tensor([p[k] for p in phen], dtype=torch.float32) for k in PHENOTYPES}
        with torch.no_grad():
            out = self.model(pose_parameters=P, phenotype_kwargs=kwargs)
            kps = self.keypoints(out)[:, :17].double().numpy()
        verts = out["vertices"].double().numpy()[:, self.body_ids]
        return phen, [f for f, _ in poses], verts, kps

    def _vertex_normals(self, meshes: list[np.ndarray]) -> np.ndarray:
        """Unnormalised area-weighted vertex normals of several posed bodies, stacked (B * V, 3) float32."""
        nv = len(self.rest)
        fn = []
        for v in meshes:
            tri = v.astype(np.float32)[self.faces]  # (F, 3, 3)
            fn.append(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
        vn = self.incidence @ np.concatenate(fn, axis=1)  # (V, 3B)
        return vn.reshape(nv, len(meshes), 3).transpose(1, 0, 2).reshape(-1, 3)

    def _pixel_normals(self, cam_v, k_pix, corners, b_pix) -> np.ndarray:
        """Interpolated unit vertex normals (N, 3) float32 of body pixels (in the frame of ``cam_v``)."""
        if not len(cam_v):
            return np.zeros((0, 3), dtype=np.float32)
        nv = len(cam_v[0])
        vn = self._vertex_normals(cam_v)
        n = interpolate(np.ascontiguousarray(vn.T), corners + (k_pix * nv)[:, None], b_pix)
        return n / (np.sqrt((n * n).sum(axis=1, keepdims=True)) + 1e-12)
