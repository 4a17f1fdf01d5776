"""Pictures of a BodySurface: the body coloured by part, a U/V checkerboard on it, the chart atlas."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from densepose.surface.base import BodySurface
from densepose.surface.parts import CHART_COLORS, CHART_NAMES, NUM_CHARTS
from densepose.synth.raster import rasterize


def _view_camera(vertices: np.ndarray, side: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera-space vertices and intrinsics for a near-orthographic front or back view (Z up, facing -Y)."""
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    p = vertices - centre
    # Camera axes in world coordinates (x right, y down, z forward).
    if side == "front":  # camera on the -Y side looking at the person's face
        axes = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    else:
        axes = np.array([[-1.0, 0, 0], [0, 0, -1.0], [0, -1.0, 0]])
    cam = p @ axes.T
    distance = 20.0
    cam[:, 2] += distance
    extent = np.abs(cam[:, :2]).max() * 2 * 1.05
    f = size / extent * distance
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    return cam, K


def _shade(surface: BodySurface, face_id: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Lambert factor per pixel (light from the camera), 1 on the background."""
    v = cam[surface.faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    lam = 0.35 + 0.65 * np.abs(n[:, 2])
    out = np.ones(face_id.shape)
    fg = face_id >= 0
    out[fg] = lam[face_id[fg]]
    return out


def checker(charts: np.ndarray, uv: np.ndarray, squares: int = 10) -> np.ndarray:
    """RGB (N, 3) of a per-chart checkerboard in (U, V): the part colour, light and dark squares."""
    odd = (np.floor(uv[:, 0] * squares) + np.floor(uv[:, 1] * squares)).astype(np.int64) % 2
    base = CHART_COLORS[charts].astype(np.float64)
    return np.where(odd[:, None] == 1, base * 0.45, 0.55 * base + 0.45 * 255)


def body_views(surface: BodySurface, size: int = 512) -> dict[str, np.ndarray]:
    """Front and back views, coloured by part and by the U/V checkerboard; RGB uint8 (size, size, 3)."""
    out = {}
    for side in ("front", "back"):
        cam, K = _view_camera(surface.vertices, side, size)
        face_id, bary, _ = rasterize(cam, surface.faces, K, size, size)
        fg = face_id >= 0
        shade = _shade(surface, face_id, cam)[..., None]
        parts = np.full((size, size, 3), 255.0)
        parts[fg] = CHART_COLORS[surface.face_part[face_id[fg]]]
        charts, uv = surface.iuv_from_points(face_id[fg], bary[fg])
        chk = np.full((size, size, 3), 255.0)
        chk[fg] = checker(charts, uv)
        out[f"parts {side}"] = np.clip(np.where(fg[..., None], parts * shade, 255), 0, 255).astype(np.uint8)
        out[f"U/V {side}"] = np.clip(np.where(fg[..., None], chk * shade, 255), 0, 255).astype(np.uint8)
    return out


def atlas(surface: BodySurface, tile: int = 128) -> np.ndarray:
    """The 24 charts as a 6 x 4 atlas (chart 6*col + row + 1 at row, col, like texture atlases)."""
    img = np.full((6 * tile, 4 * tile, 3), 255, dtype=np.uint8)
    K = np.eye(3)
    for chart in range(1, NUM_CHARTS + 1):
        row, col = (chart - 1) % 6, (chart - 1) // 6
        fsel = np.flatnonzero(surface.face_part == chart)
        uv = surface.chart_uv
        pts = np.stack([uv[:, 0] * tile, (1 - uv[:, 1]) * tile, np.ones(len(uv))], axis=1)
        face_id, bary, _ = rasterize(pts, surface.chart_faces[fsel], K, tile, tile, cull_backfaces=False)
        fg = face_id >= 0
        tile_img = np.full((tile, tile, 3), 235.0)
        f = fsel[face_id[fg]]
        _, puv = surface.iuv_from_points(f, bary[fg])
        tile_img[fg] = checker(np.full(fg.sum(), chart), puv)
        img[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile] = tile_img.astype(np.uint8)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    for chart in range(1, NUM_CHARTS + 1):
        row, col = (chart - 1) % 6, (chart - 1) // 6
        x0, y0 = col * tile, row * tile
        draw.rectangle([x0, y0, x0 + tile - 1, y0 + tile - 1], outline=(160, 160, 160))
        draw.text((x0 + 3, y0 + 2), f"{chart} {CHART_NAMES[chart]}", fill=(0, 0, 0))
    return np.asarray(pil)


def surface_sheet(surface: BodySurface, size: int = 512) -> np.ndarray:
    """One picture: four body views on top, the atlas below, each labelled."""
    views = body_views(surface, size)
    top = np.concatenate(list(views.values()), axis=1)
    atl = atlas(surface, tile=size // 4)
    pad = np.full((atl.shape[0], top.shape[1] - atl.shape[1], 3), 255, dtype=np.uint8) if top.shape[1] > atl.shape[1] else None
    bottom = np.concatenate([atl, pad], axis=1) if pad is not None else atl
    sheet = Image.fromarray(np.concatenate([top, bottom], axis=0))
    draw = ImageDraw.Draw(sheet)
    for k, name in enumerate(views):
        draw.text((k * size + 6, 4), name, fill=(0, 0, 0))
    draw.text((atl.shape[1] + 10, size + 10), f"surface: {surface.name}\n{surface.num_vertices} vertices, "
              f"{surface.num_faces} faces, {len(surface.chart_uv)} chart vertices\n\natlas: chart 6*col+row+1,\n"
              "U right, V up; squares of 0.1 in U/V", fill=(0, 0, 0))
    return np.asarray(sheet)
