"""The realistic render: dressed people among props, lit by an environment map, photographed.

Steps of :func:`render_realistic` (each timed as a stage):
people (bodies, skin, outfits) -> layout (camera, placement, props) -> two rasterisations (bare
bodies; garments, hair and props) joined by ``layers.compose_layers`` (the ground-truth rule
under clothes) -> materials and shading with soft shadows -> background and ground shadows ->
camera effects -> DensePose-COCO annotations.
"""
from __future__ import annotations

import numpy as np

from dataclasses import dataclass, field

from densepose.synth import backdrop, lighting, post, shadows
from densepose.synth.camera import Camera, sample_shot
from densepose.synth.distractors import sample_props, seat_under
from densepose.synth.groundtruth import person_annotation
from densepose.synth.layout import Ground, place_people, place_props
from densepose.synth.materials import Material, garment_material, prop_material, shade_fragments
from densepose.synth.poses import REALISTIC_FAMILIES
from densepose.synth.raster import fragments_multi
from densepose.synth.scene import PHENOTYPES, Sample
from densepose.synth.skin import SkinLook, sample_skin


@dataclass
class Scene:
    """Everything an image shows, in world coordinates; :func:`render_scene` photographs it.

    Cover meshes are the garments and hair of the people and the parts of the props; their
    owner is the person's index in ``bodies`` or -1 for a prop.
    """

    camera: Camera
    light: lighting.Lighting
    bodies: list[np.ndarray] = field(default_factory=list)      # (V, 3) posed, placed bodies
    keypoints: list[np.ndarray] = field(default_factory=list)   # (17, 3) COCO keypoints
    skins: list[SkinLook] = field(default_factory=list)
    info: list[dict] = field(default_factory=list)              # per person: family, phenotype
    cover_v: list[np.ndarray] = field(default_factory=list)
    cover_f: list[np.ndarray] = field(default_factory=list)
    cover_owner: list[int] = field(default_factory=list)
    materials: list[Material] = field(default_factory=list)
    garments: list = field(default_factory=list)                # GarmentMesh per cover mesh, None for props
    wall_distance: float = 10.0                                 # of a procedural wall behind the people

    def add_cover(self, vertices: np.ndarray, faces: np.ndarray, owner: int, material: Material,
                  garment=None) -> None:
        """A garment (``garment``: its ``GarmentMesh``) of person ``owner``, or a prop part (owner -1)."""
        self.cover_v.append(vertices)
        self.cover_f.append(faces)
        self.cover_owner.append(owner)
        self.materials.append(material)
        self.garments.append(garment)

    @property
    def cover_cull(self) -> list[bool]:
        """Back-face culling per cover mesh: props and closed garments yes, open cloth (skirts, hair) no."""
        return [g is None or not g.two_sided for g in self.garments]


def load_garments(assets: str | None):
    """The garment library (procedural garments, plus MakeHuman assets from ``assets``)."""
    from densepose.synth.garments import GarmentLibrary

    return GarmentLibrary.load(assets_dir=assets)


def _count(rng: np.random.Generator, cfg) -> tuple[int, bool]:
    """People in the image and whether it is a crowd (0 people: a hard negative)."""
    if rng.random() < cfg.negative_fraction:
        return 0, False
    if rng.random() < cfg.crowd_fraction:
        lo, hi = cfg.crowd_size
        return int(rng.integers(lo, hi + 1)), True
    return int(rng.integers(cfg.min_people, cfg.max_people + 1)), False


def sample_scene(synth, rng: np.random.Generator, clock=lambda stage: None) -> Scene:
    """A random scene: people (maybe none, maybe a crowd) dressed, placed among props, and a light."""
    from densepose.synth.garments import dress, sample_outfit

    cfg = synth.config
    n, crowd = _count(rng, cfg)
    # Drawn only when asked for, so that portrait_fraction = 0 leaves every image as it was.
    portrait = cfg.portrait_fraction > 0 and n > 0 and not crowd and rng.random() < cfg.portrait_fraction
    camera, shot = sample_shot(rng, cfg.height, cfg.width, crowd, portrait)
    phen, families, verts, kps = synth._people(rng, n, families=REALISTIC_FAMILIES)
    clock("body model")
    skins = [sample_skin(rng, p["age"]) for p in phen]
    outfits = [sample_outfit(rng, synth.garments, p) for p in phen]
    ground = Ground()
    scene = Scene(camera, lighting.sample_lighting(rng, cfg.hdris),
                  wall_distance=shot.distance * rng.uniform(1.5, 3.0))
    for pl in place_people(rng, camera, shot, list(verts), ground):
        i = pl.index
        k = len(scene.bodies)
        scene.bodies.append(pl.apply(verts[i]))
        scene.keypoints.append(pl.apply(kps[i]))
        scene.skins.append(skins[i])
        scene.info.append({"family": families[i], **{p: round(phen[i][p], 4) for p in PHENOTYPES}})
        for mesh in dress(synth.garments, outfits[i], scene.bodies[-1]):
            scene.add_cover(mesh.vertices, mesh.faces, k, garment_material(rng, mesh, skins[i]), mesh)
        if families[i] == "sitting":  # something to sit on
            seat = seat_under(rng, scene.bodies[-1], synth.seat_ids)
            for part in seat.parts if seat is not None else []:
                scene.add_cover(part.vertices, part.faces, -1, prop_material(part))
    n_props = int(rng.integers(2, cfg.max_props + 3)) if n == 0 else int(rng.integers(0, cfg.max_props + 1))
    props = sample_props(rng, n_props, cfg.photos)
    for pl in place_props(rng, camera, shot, props, ground):
        for part in props[pl.index].parts:
            scene.add_cover(pl.apply(part.vertices), part.faces, -1, prop_material(part))
    clock("clothes, props, layout")
    return scene


def render_realistic(synth, rng: np.random.Generator, clock) -> Sample:
    """One realistic image from ``rng``; ``clock(stage)`` records stage times."""
    return render_scene(synth, sample_scene(synth, rng, clock), rng, clock)


def render_scene(synth, scene: Scene, rng: np.random.Generator, clock=lambda stage: None) -> Sample:
    """Photograph ``scene``: ground truth, shading, background, camera effects, annotations.

    ``rng`` draws only the photographic choices (exposure, background, effects, dp points), so
    two scenes that differ in a prop or a garment render with the same ones.
    """
    from densepose.synth.layers import compose_layers

    cfg = synth.config
    camera, light = scene.camera, scene.light
    H, W = camera.height, camera.width
    world_v, cover_v, cover_f = scene.bodies, scene.cover_v, scene.cover_f
    K = camera.K
    body = fragments_multi([camera.to_camera(v) for v in world_v], synth.faces, K, H, W)
    cover = fragments_multi([camera.to_camera(v) for v in cover_v], cover_f, K, H, W, cull_backfaces=scene.cover_cull)
    # Bound body points only matter where some body is in view (and an empty body buffer has
    # nothing to bind to).
    bound = len(body[0]) > 0
    layers = compose_layers(body, cover, np.asarray(scene.cover_owner, dtype=np.int64), K, H, W,
                            garments=scene.garments if bound else None,
                            body_face_part=synth.surface.face_part if bound else None)
    clock("rasterise")

    lab = layers.labelled
    I_pix = np.zeros(len(layers.pix), np.uint8)
    uv_pix = np.zeros((len(layers.pix), 2), np.float32)
    if lab.any():
        i_l, uv_l = synth.surface.iuv_from_points(layers.body_face[lab], layers.body_bary[lab])
        I_pix[lab], uv_pix[lab] = i_l, uv_l
    clock("ground truth")

    # Shadow casters: bodies and props (clothes hug the body; leaving them out halves the work).
    props = [i for i, o in enumerate(scene.cover_owner) if o < 0]
    shadow = shadows.build_shadow_map(world_v + [cover_v[i] for i in props],
                                      [synth.faces] * len(world_v) + [cover_f[i] for i in props], light.key_dir)
    clock("shadow map")
    exposure = float(np.pi / max(light.reference_irradiance(camera.forward), 1e-6) * rng.uniform(0.55, 1.0))
    colour = shade_fragments(synth, layers, camera, light, shadow, world_v, cover_v, cover_f, scene.materials,
                             scene.skins, exposure)
    clock("shading")

    rgb, _ = backdrop.sample_backdrop(rng, camera, light, exposure, cfg.photos, light.pano.shape[1] > 128,
                                      wall_distance=scene.wall_distance)
    rgb = np.array(rgb)
    covered = np.zeros(H * W, bool)
    covered[layers.pix] = True
    backdrop.ground_shadows(rgb, camera, shadow, light, ~covered.reshape(H, W))
    backdrop.contact_shadows(rgb, camera, world_v, light)
    rgb = rgb.reshape(-1, 3)
    rgb[layers.pix] = colour
    rgb = rgb.reshape(H, W, 3)
    depth = np.full(H * W, np.inf, dtype=np.float32)
    depth[layers.pix] = layers.depth
    depth = depth.reshape(H, W)
    clock("background")
    rgb = post.camera_effects(rng, rgb, depth)
    clock("camera effects")

    # Dense maps; people renumbered 1..M in order, skipping those with no visible pixel.
    owner = layers.person
    visible = np.bincount(owner[owner >= 0], minlength=len(world_v))
    keep = np.flatnonzero(visible > 0)
    renum = np.zeros(len(world_v) + 1, dtype=np.uint8)
    renum[keep + 1] = np.arange(1, len(keep) + 1)
    instance = np.zeros(H * W, np.uint8)
    instance[layers.pix] = renum[owner + 1]
    I = np.zeros(H * W, dtype=np.uint8)
    U = np.zeros(H * W, dtype=np.float16)
    V = np.zeros(H * W, dtype=np.float16)
    I[layers.pix], U[layers.pix], V[layers.pix] = I_pix, uv_pix[:, 0], uv_pix[:, 1]
    instance, I, U, V = instance.reshape(H, W), I.reshape(H, W), U.reshape(H, W), V.reshape(H, W)
    annotations = []
    for new_id, k in enumerate(keep, start=1):
        ann = person_annotation(rng, instance == new_id, I, U, V, depth, camera.to_camera(scene.keypoints[k]), K,
                                new_id, instance, cfg.min_dp_pixels)
        ann["synth"] = dict(scene.info[k])
        annotations.append(ann)
    clock("annotations")
    return Sample(rgb, instance, I, U, V, annotations)


