"""Clothes, shoes, hats and hair for synthetic people, bound to the Anny body surface.

    lib = GarmentLibrary.load(assets_dir=None)        # MakeHuman folder optional
    outfit = sample_outfit(rng, lib, phenotype)       # pure function of rng
    meshes = dress(lib, outfit, body_vertices)        # (V, 3) posed body, any rigid frame

Procedural garments need no download: offset shells cut from the body (tops with any sleeve
length, trousers, shorts, shoes, short hair, hat crowns; :mod:`garments_shells`) and ring-grid
wraps that hang from it (skirts, dress and coat tails, long hair, brims; :mod:`garments_wraps`).
With a MakeHuman asset folder (:mod:`densepose.synth.makehuman`), some people wear its suits,
shoes and hairstyles instead. Every garment vertex is bound to the body, so clothes follow any
pose and body shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densepose.synth import garments_shells as shells
from densepose.synth import garments_wraps as wraps
from densepose.synth.garments_shells import Garment
from densepose.synth.garments_template import BodyTemplate, body_template

KINDS = ("top", "bottom", "dress", "coat", "shoes", "hat", "hair")
MAKEHUMAN_SHARE = 0.5  # with assets loaded: chance that a person wears MakeHuman clothes / hair / shoes


@dataclass
class GarmentMesh:
    """One garment on one posed body: vertices (G, 3), faces (F, 3) CCW from outside, rest (G, 3)
    position on the rest template (for fabric patterns), kind (see ``KINDS``), tight, two_sided
    (False: back faces may be culled, ``fragments_multi(..., cull_backfaces=[not m.two_sided ...])``),
    and each vertex's bound body point: anchor_face (G,), anchor_bary (G, 3), anchor_dist (G,) metres
    (for the ground truth, :func:`densepose.synth.layers.compose_layers`)."""

    vertices: np.ndarray
    faces: np.ndarray
    rest: np.ndarray
    kind: str
    tight: bool
    two_sided: bool
    anchor_face: np.ndarray
    anchor_bary: np.ndarray
    anchor_dist: np.ndarray


@dataclass
class Outfit:
    """What one person wears: garments (innermost first) and their rest positions."""

    garments: list[Garment]
    rest: list[np.ndarray]
    names: list[str] = field(default_factory=list)  # short description per garment, for metadata


@dataclass
class GarmentLibrary:
    """The body template and, optionally, MakeHuman assets by kind ("suit", "shoes", "hair", "hat")."""

    template: BodyTemplate
    assets: dict[str, list[tuple[str, list[Garment]]]]

    @staticmethod
    def load(assets_dir: str | Path | None = None) -> "GarmentLibrary":
        assets: dict[str, list[tuple[str, list[Garment]]]] = {}
        if assets_dir is not None:
            from densepose.synth.makehuman import load_assets

            assets = load_assets(assets_dir)
        return GarmentLibrary(body_template(), assets)


def sample_outfit(rng: np.random.Generator, lib: GarmentLibrary, phenotype: dict | None = None) -> Outfit:
    """A random outfit. ``phenotype`` (Anny values in [0, 1]) biases skirts/dresses and hair length."""
    t = lib.template
    feminine = 1.0 - float((phenotype or {}).get("gender", 0.5))
    out: list[tuple[str, Garment | None]] = []
    u = rng.uniform
    use_mh = {k: bool(lib.assets.get(k)) and rng.random() < MAKEHUMAN_SHARE for k in ("suit", "shoes", "hair", "hat")}

    if use_mh["suit"]:
        out += _pick(rng, lib.assets["suit"])
        bottom_offset = 0.012
    else:
        style = rng.choice(["trousers", "shorts", "skirt", "dress"],
                           p=_normalise([0.55, 0.2, 0.12 + 0.15 * feminine, 0.08 + 0.15 * feminine]))
        tight_bottom = rng.random() < 0.5
        bottom_offset = u(0.003, 0.007) if tight_bottom else u(0.009, 0.018)
        waist_z = u(-0.02, 0.1)
        if style in ("trousers", "shorts"):
            leg_end = u(0.9, 1.0) if style == "trousers" else u(0.2, 0.5)
            flare = 0.0 if tight_bottom else u(0.0, 0.03)
            out.append((f"{style}", shells.bottom(t, leg_end, waist_z, bottom_offset, flare)))
        sleeve = float(rng.choice([-1.0, 0.12, 0.3, 0.5, 0.75, 1.0], p=[0.12, 0.1, 0.3, 0.1, 0.1, 0.28]))
        tight_top = rng.random() < 0.4
        top_offset = max(u(0.003, 0.007) if tight_top else u(0.012, 0.024), bottom_offset + 0.004)
        neck_drop, v_neck = u(0.0, 0.09), bool(rng.random() < 0.3)
        if style == "dress":
            top_z = u(-0.02, 0.1)
            out.append(("dress top", shells.top(t, sleeve, top_z - 0.02, neck_drop, v_neck, top_offset, 0.0, "dress")))
            out.append(("dress skirt", wraps.skirt(t, "dress", top_z, u(0.2, 0.95), top_offset, u(0.01, 0.12))))
        else:
            hem_z = u(-0.12, 0.06) if rng.random() < 0.9 else u(0.1, 0.2)
            out.append(("top", shells.top(t, sleeve, hem_z, neck_drop, v_neck, top_offset,
                                          0.0 if tight_top else u(0.0, 0.025))))
            if style == "skirt":
                out.append(("skirt", wraps.skirt(t, "bottom", min(waist_z, hem_z + 0.04), u(0.15, 0.9),
                                                 top_offset + 0.004, u(0.0, 0.1))))
        if style != "dress" and rng.random() < 0.2:
            coat_offset = top_offset + u(0.012, 0.025)
            out.append(("coat", shells.top(t, u(0.95, 1.05), -0.06, u(0.02, 0.12), True, coat_offset, 0.0, "coat")))
            out.append(("coat tail", wraps.skirt(t, "coat", -0.03, u(0.25, 0.75), coat_offset, u(0.02, 0.06))))

    if use_mh["shoes"]:
        out += _pick(rng, lib.assets["shoes"])
    elif rng.random() < 0.9:
        boots = rng.random() < 0.2
        out.append(("boots" if boots else "shoes", shells.shoes(
            t, u(0.62, 0.75) if boots else u(0.9, 0.95), u(0.004, 0.008) + (bottom_offset if boots else 0.0),
            u(0.008, 0.02))))

    hat = rng.random() < 0.15
    hair_top = 0.0  # metres of hair above the scalp, so that a hat sits on it
    if use_mh["hair"]:
        hair = _pick(rng, lib.assets["hair"])
        out += hair
        hat &= hair[0][0].startswith("short")  # big MakeHuman styles (afro, bob, braid) stay uncovered
        hair_top = 0.02
    else:
        p_long = 0.15 + 0.5 * feminine
        kind = rng.choice(["bald", "short", "long"], p=_normalise([0.08 * (1 - feminine) + 0.01, 0.9 - p_long, p_long]))
        volume = u(0.004, 0.03)
        if kind != "bald":
            out.append(("short hair", shells.hair_cap(t, u(0.06, 0.1), u(0.02, 0.06), u(-0.07, -0.02), volume)))
            hair_top = volume + 0.003
        if kind == "long":
            length_z = u(0.05, t.landmarks["neck"][2] - 0.02)
            lift = u(0.0, 0.6) * (t.landmarks["neck"][2] - length_z)
            out.append(("long hair", wraps.long_hair(t, length_z, volume + 0.005, u(0.9, 1.5), lift)))
    if hat and use_mh["hat"]:
        out += _pick(rng, lib.assets["hat"])
    elif hat:
        rim, crown = u(0.04, 0.08), hair_top + u(0.006, 0.015)
        out.append(("hat", shells.hat_crown(t, rim, crown)))
        out.append(("hat brim", wraps.brim(t, rim, crown, u(0.04, 0.09), front_only=bool(rng.random() < 0.5))))

    kept = [(n, g) for n, g in out if g is not None]
    rest = [g.rest if g.rest is not None else g.vertices(t.vertices, t.normals) for _, g in kept]
    return Outfit([g for _, g in kept], rest, [n for n, _ in kept])


def dress(lib: GarmentLibrary, outfit: Outfit, body: np.ndarray) -> list[GarmentMesh]:
    """The outfit on a posed body (V, 3) (``body_vertex_ids`` order, any rigid frame)."""
    normals = lib.template.posed_normals(body)
    return [GarmentMesh(g.vertices(body, normals), g.faces, r, g.kind, g.tight, g.two_sided, g.anchor_face,
                        g.anchor_bary, g.anchor_dist)
            for g, r in zip(outfit.garments, outfit.rest)]


def _pick(rng: np.random.Generator, items: list[tuple[str, list[Garment]]]) -> list[tuple[str, Garment]]:
    """The pieces of one random asset, named after it."""
    name, pieces = items[int(rng.integers(len(items)))]
    return [(name, g) for g in pieces]


def _normalise(p: list[float]) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum()
