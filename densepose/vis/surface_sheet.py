"""Pictures of a BodySurface: the body coloured by part, a U/V checkerboard on it, the chart atlas."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from densepose.surface.base import BodySurface
from densepose.surface.parts import CHART_COLORS, CHART_NAMES, NUM_CHARTS
from densepose.synth.raster import rasterize
from densepose.vis.draw import _font


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


def chart_tile(surface: BodySurface, chart: int, tile: int) -> np.ndarray:
    """RGB uint8 (tile, tile, 3): chart ``chart`` drawn in its (U right, V up) square with the checkerboard."""
    fsel = np.flatnonzero(surface.face_part == chart)
    uv = surface.chart_uv
    pts = np.stack([uv[:, 0] * tile, (1 - uv[:, 1]) * tile, np.ones(len(uv))], axis=1)
    face_id, bary, _ = rasterize(pts, surface.chart_faces[fsel], np.eye(3), tile, tile, cull_backfaces=False)
    fg = face_id >= 0
    img = np.full((tile, tile, 3), 235.0)
    _, puv = surface.iuv_from_points(fsel[face_id[fg]], bary[fg])
    img[fg] = checker(np.full(fg.sum(), chart), puv)
    return img.astype(np.uint8)


def surface_sheet(surface: BodySurface, size: int = 512) -> np.ndarray:
    """One picture: a header, four titled body views, then the 24 charts in a titled 6 x 4 grid.

    Every title sits in its own strip above its picture (never over it); the chart grid spans the
    same width as the views, so the canvas has no empty half.
    """
    views = body_views(surface, size)
    width = 4 * size
    font = _font(max(12, size // 24))
    small = _font(max(11, size // 30))
    line = font.size + 8 if hasattr(font, "size") else 20
    small_line = small.size + 6 if hasattr(small, "size") else 18
    pad = max(4, size // 64)
    cols = 6
    tile = (width - (cols + 1) * pad) // cols
    rows = -(-NUM_CHARTS // cols)
    header_h = 2 * line + pad
    views_h = line + size
    grid_top = header_h + views_h + line + pad
    height = grid_top + rows * (small_line + tile + pad)
    sheet = np.full((height, width, 3), 255, np.uint8)
    for k, img in enumerate(views.values()):
        sheet[header_h + line: header_h + line + size, k * size: (k + 1) * size] = img
    cells = []
    for chart in range(1, NUM_CHARTS + 1):
        r, c = divmod(chart - 1, cols)
        x0 = pad + c * (tile + pad)
        y0 = grid_top + r * (small_line + tile + pad) + small_line
        sheet[y0: y0 + tile, x0: x0 + tile] = chart_tile(surface, chart, tile)
        cells.append((chart, x0, y0))
    pil = Image.fromarray(sheet)
    draw = ImageDraw.Draw(pil)
    draw.text((pad, pad), f"body surface '{surface.name}': {surface.num_vertices} vertices, {surface.num_faces} faces, "
              f"{len(surface.chart_uv)} chart vertices", fill=(0, 0, 0), font=font)
    draw.text((pad, pad + line), "views: coloured by part, and a checkerboard of 0.1 squares in each part's (U, V)",
              fill=(80, 80, 80), font=small)
    for k, name in enumerate(views):
        draw.text((k * size + pad, header_h + 4), name, fill=(0, 0, 0), font=font)
    draw.text((pad, header_h + views_h + 4), "the 24 charts: U to the right, V up, squares of 0.1", fill=(0, 0, 0), font=font)
    for chart, x0, y0 in cells:
        draw.rectangle([x0 - 1, y0 - 1, x0 + tile, y0 + tile], outline=(160, 160, 160))
        draw.text((x0, y0 - small_line + 2), f"{chart} {CHART_NAMES[chart]}", fill=(0, 0, 0), font=small)
    return np.asarray(pil)
