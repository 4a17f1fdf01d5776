"""Picture of the ground-truth rule under clothes: RGB | parts | U | V, clothing outlined.

    python benchmarks/figure_synth_clothing.py --out docs/images/synth_clothing_rule.png

Two dressed people (skirt, long hair, loose top; front and back views). In the parts and U/V
panels, cloth and hair pixels carry the body point under them (ray point) or the one their
garment hangs on (bound point), see ``densepose.synth.layers``; grey marks person pixels with
neither within ``MAX_GAP`` (I = 0, still in the instance mask); the white line is the outline of
the visible clothing and hair.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

from densepose.surface import load_surface
from densepose.surface.anny import body_faces, body_vertex_ids, load_anny_model
from densepose.surface.parts import CHART_COLORS
from densepose.synth import garments_shells as shells
from densepose.synth import garments_wraps as wraps
from densepose.synth.garments import GarmentLibrary, Outfit, dress
from densepose.synth.layers import MAX_GAP, compose_layers
from densepose.synth.poses import pose_tensor, sample_pose
from densepose.synth.raster import fragments_multi

KIND_COLOURS = {"top": (70, 110, 170), "bottom": (150, 60, 70), "dress": (150, 60, 70), "hair": (70, 45, 30),
                "shoes": (40, 40, 40), "coat": (120, 110, 80), "hat": (30, 30, 30)}


def _outfit(lib: GarmentLibrary) -> Outfit:
    t = lib.template
    garments = [shells.top(t, 0.35, -0.04, 0.05, True, 0.018, 0.02), wraps.skirt(t, "bottom", 0.04, 0.7, 0.012, 0.12),
                shells.shoes(t, 0.92, 0.006, 0.015), shells.hair_cap(t, 0.08, 0.04, -0.05, 0.015),
                wraps.long_hair(t, 0.25, 0.02, 1.3)]
    return Outfit(garments, [g.vertices(t.vertices, t.normals) for g in garments])


def render(body: np.ndarray, lib: GarmentLibrary, yaw: float, size: int) -> np.ndarray:
    """(size, 4 * size, 3) panels for one person seen from ``yaw`` radians."""
    surface = load_surface("anny")
    meshes = dress(lib, _outfit(lib), body)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])

    def cam(v):
        w = v @ R.T
        return np.stack([w[:, 0], -(w[:, 2] - 0.0), w[:, 1] + 2.4], axis=1)

    K = np.array([[size * 1.05, 0, size / 2], [0, size * 1.05, size / 2], [0, 0, 1]])
    faces = body_faces()
    bcam = cam(body)
    body_frag = fragments_multi([bcam], faces, K, size, size)
    cover_cam = [cam(m.vertices) for m in meshes]
    cover_frag = fragments_multi(cover_cam, [m.faces for m in meshes], K, size, size, cull_backfaces=False)
    L = compose_layers(body_frag, cover_frag, np.zeros(len(meshes), dtype=np.int64), K, size, size, garments=meshes,
                       body_face_part=np.asarray(surface.face_part))
    n = len(L.pix)
    # RGB: flat colours with Lambert shading from face normals (towards the camera).
    colour = np.tile(np.array([225.0, 180, 150]), (n, 1))
    normal = np.zeros((n, 3))
    sel = ~L.on_cover
    tri = bcam[faces[L.body_face[sel]]]
    normal[sel] = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    for k, m in enumerate(meshes):
        sel = L.on_cover & (L.cover_mesh == k)
        tri = cover_cam[k][m.faces[L.cover_face[sel]]]
        normal[sel] = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        colour[sel] = KIND_COLOURS[m.kind]
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    light = np.abs(normal @ np.array([0.3, -0.4, -0.86]))
    rgb = np.full((size * size, 3), 255.0)
    rgb[L.pix] = colour * (0.35 + 0.65 * light[:, None])
    # Parts, U, V from the labelling rule.
    I = np.zeros(n, dtype=np.int64)
    uv = np.zeros((n, 2))
    lab = L.labelled
    I[lab], uv[lab] = surface.iuv_from_points(L.body_face[lab], L.body_bary[lab])
    panels = [rgb]
    parts = np.zeros((size * size, 3))
    parts[L.pix] = np.where(lab[:, None], CHART_COLORS[I], 128)
    panels.append(parts)
    for ch in range(2):
        p = np.zeros((size * size, 3))
        ramp = np.stack([uv[:, ch] * 255, 80 + 100 * uv[:, ch], 255 - uv[:, ch] * 255], 1)
        p[L.pix] = np.where(lab[:, None], ramp, 128)
        panels.append(p)
    cloth = np.zeros(size * size, dtype=bool)
    cloth[L.pix[L.on_cover]] = True
    cloth = cloth.reshape(size, size)
    edge = cloth ^ (np.roll(cloth, 1, 0) & np.roll(cloth, -1, 0) & np.roll(cloth, 1, 1) & np.roll(cloth, -1, 1))
    out = []
    for p in panels:
        img = p.reshape(size, size, 3)
        if p is not rgb:
            img[edge] = 255
        out.append(img)
    return np.concatenate(out, axis=1).clip(0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=320)
    args = ap.parse_args()
    lib = GarmentLibrary.load(None)
    model = load_anny_model()
    rng = np.random.default_rng(4)
    rots = [sample_pose(model, rng, "walking")[1], sample_pose(model, rng, "standing")[1]]
    phen = {"gender": torch.tensor([0.2, 0.3]), "weight": torch.tensor([0.5, 0.6])}
    with torch.no_grad():
        out = model(pose_parameters=pose_tensor(model, rots), phenotype_kwargs=phen)
    bodies = out["vertices"].double().numpy()[:, body_vertex_ids()]
    rows = [render(bodies[0], lib, 0.5, args.size), render(bodies[1], lib, np.pi - 0.4, args.size)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    draw = ImageDraw.Draw(sheet)
    for k, title in enumerate(["RGB", "parts (I)", "U", "V"]):
        draw.text((k * args.size + 6, 4), title, fill=(0, 0, 0) if k == 0 else (255, 255, 255))
    draw.text((args.size + 6, 16), f"grey: no body point within {MAX_GAP * 100:.0f} cm (I=0)", fill=(255, 255, 255))
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
