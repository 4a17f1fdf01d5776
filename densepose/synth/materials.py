"""Surface materials of a realistic render and the shading of every visible fragment.

Bodies get skin (with a face), garments a procedural fabric, hair strands, props their texture.
Normals are smooth on bodies and garments (plus the fabric's bump), flat on props, and always
turned towards the camera (open garments are seen from both sides).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densepose.synth import lighting, post, shadows
from densepose.synth.camera import Camera
from densepose.synth.fabrics import Fabric, fabric_albedo, fabric_bump, sample_fabric
from densepose.synth.raster import interpolate
from densepose.synth.skin import SkinLook, hair_albedo, skin_albedo

SKIN_SPECULAR, SKIN_SHININESS = 0.06, 12.0
HAIR_SPECULAR, HAIR_SHININESS = 0.25, 30.0


@dataclass
class Material:
    kind: str                          # "fabric", "hair" or "texture"
    specular: float
    shininess: float
    fabric: Fabric | None = None
    skin: SkinLook | None = None       # hair colour of the person
    rest: np.ndarray | None = None     # (G, 3) rest-template positions of the mesh's vertices
    uv: np.ndarray | None = None       # (G, 2) texture coordinates
    texture: np.ndarray | None = None  # (h, w, 3) uint8


def garment_material(rng: np.random.Generator, mesh, skin: SkinLook) -> Material:
    """The material of a garment mesh (``kind``, ``rest`` attributes) worn by a person with ``skin``."""
    if mesh.kind == "hair":
        return Material("hair", HAIR_SPECULAR, HAIR_SHININESS, skin=skin, rest=np.asarray(mesh.rest, np.float32))
    fabric = sample_fabric(rng, mesh.kind)
    return Material("fabric", fabric.specular, fabric.shininess, fabric=fabric, rest=np.asarray(mesh.rest, np.float32))


def prop_material(part) -> Material:
    return Material("texture", part.specular, part.shininess, uv=np.asarray(part.uv, np.float32), texture=part.texture)


def mesh_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (V, 3) float32 (unnormalised; zero for unused vertices)."""
    tri = vertices.astype(np.float32)[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flat = faces.ravel()
    return np.stack([np.bincount(flat, weights=np.repeat(fn[:, c], 3), minlength=len(vertices)) for c in range(3)],
                    axis=1).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.sqrt((v * v).sum(axis=1, keepdims=True)) + 1e-12)


def _interp(values: np.ndarray, corners: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return interpolate(np.ascontiguousarray(values.T), corners, bary)


def fragment_points(camera: Camera, pix: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """World positions (P, 3) of pixel centres ``pix`` (flat indices) at camera depths ``depth``."""
    W = camera.width
    depth = depth.astype(np.float32)
    row, col = np.divmod(pix, W)
    x = (col.astype(np.float32) + np.float32(0.5 - camera.K[0, 2])) * np.float32(1 / camera.K[0, 0]) * depth
    y = (row.astype(np.float32) + np.float32(0.5 - camera.K[1, 2])) * np.float32(1 / camera.K[1, 1]) * depth
    return np.stack([x, y, depth], axis=1) @ camera.R.astype(np.float32) + camera.C.astype(np.float32)


def shade_fragments(synth, layers, camera: Camera, light: lighting.Lighting, shadow, world_v: list[np.ndarray],
                    cover_v: list[np.ndarray], cover_f: list[np.ndarray], materials: list[Material],
                    skins: list[SkinLook], exposure: float) -> np.ndarray:
    """Display colours (P, 3) uint8 of the visible fragments of ``layers`` (see ``compose_layers``)."""
    P = len(layers.pix)
    world = fragment_points(camera, layers.pix, layers.depth)
    view = _unit(camera.C.astype(np.float32) - world)
    albedo = np.zeros((P, 3), np.float32)
    normals = np.zeros((P, 3), np.float32)
    spec = np.zeros(P, np.float32)
    shin = np.ones(P, np.float32)

    on_body = np.flatnonzero(~layers.on_cover & (layers.body_person >= 0))
    if len(on_body):
        face = layers.body_face[on_body]
        bary = layers.body_bary[on_body]
        who = layers.body_person[on_body]
        corners = synth.faces[face]
        normals[on_body] = synth._pixel_normals(world_v, who, corners, bary)
        rest = interpolate(synth.features_t[:3], corners, bary)
        charts = synth.surface.face_part[face]
        for k in np.unique(who):
            sel = np.flatnonzero(who == k)
            albedo[on_body[sel]] = skin_albedo(skins[k], rest[sel], charts[sel])
        spec[on_body], shin[on_body] = SKIN_SPECULAR, SKIN_SHININESS

    on_cover = np.flatnonzero(layers.on_cover)
    if len(on_cover):
        meshes = layers.cover_mesh[on_cover]
        order = np.argsort(meshes, kind="stable")
        bounds = np.searchsorted(meshes[order], np.arange(len(materials) + 1))
        for m, mat in enumerate(materials):
            idx = on_cover[order[bounds[m]:bounds[m + 1]]]
            if len(idx) == 0:
                continue
            corners = cover_f[m][layers.cover_face[idx]]
            bary = layers.cover_bary[idx]
            if mat.kind == "texture":
                tri = cover_v[m][cover_f[m][layers.cover_face[idx]]].astype(np.float32)
                n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
                uv = _interp(mat.uv, corners, bary)
                th, tw = mat.texture.shape[:2]
                tx = (uv[:, 0] % 1.0 * tw).astype(np.int64).clip(0, tw - 1)
                ty = (uv[:, 1] % 1.0 * th).astype(np.int64).clip(0, th - 1)
                albedo[idx] = mat.texture[ty, tx].astype(np.float32) / 255
            else:
                n = _interp(mesh_vertex_normals(cover_v[m], cover_f[m]), corners, bary)
                rest = _interp(mat.rest, corners, bary)
                if mat.kind == "hair":
                    albedo[idx] = hair_albedo(mat.skin, rest)
                else:
                    albedo[idx] = fabric_albedo(mat.fabric, rest)
                    n = _unit(n) + fabric_bump(mat.fabric, rest)
            n = _unit(n)
            n *= np.where((n * view[idx]).sum(1) < 0, -1.0, 1.0).astype(np.float32)[:, None]
            normals[idx] = n
            spec[idx], shin[idx] = mat.specular, mat.shininess

    vis = shadows.visibility(shadow, world)
    linear = albedo ** np.float32(2.2)
    radiance = lighting.shade(linear, normals, light, view, vis, spec, shin)
    return (post.tone_map(radiance, exposure) * 255 + 0.5).astype(np.uint8)
