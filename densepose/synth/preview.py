"""Contact sheet of a synthetic dataset: RGB (boxes, keypoints, dp points), parts, U, V per sample,
under a row of column titles."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from densepose.errors import UserError
from densepose.surface.parts import CHART_COLORS
from densepose.synth.writer import load_dense

COLUMNS = ("RGB: boxes, keypoints, dp points", "parts (I)", "U", "V")


def _folder(root: Path) -> Path:
    for sub in ("", "train", "val"):
        if (root / sub / "annotations.json").exists():
            return root / sub
    raise UserError(f"{root}: no annotations.json (run `densepose synth` to the end first)")


def contact_sheet(root: str | Path, num: int = 6, tile: int = 256) -> Image.Image:
    """One row per sample (the first ``num`` images): RGB with annotations | part colours | U | V."""
    folder = _folder(Path(root))
    data = json.loads((folder / "annotations.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    rows = []
    for img in data["images"][:num]:
        rgb = Image.open(folder / "images" / img["file_name"]).convert("RGB")
        dense = load_dense(folder / "dense" / f"{Path(img['file_name']).stem}.npz")
        draw = ImageDraw.Draw(rgb)
        for ann in by_image.get(img["id"], []):
            x, y, w, h = ann["bbox"]
            draw.rectangle([x, y, x + w, y + h], outline=(255, 255, 0))
            kp = np.asarray(ann["keypoints"]).reshape(-1, 3)
            for kx, ky, v in kp:
                if v > 0:
                    colour = (0, 255, 0) if v == 2 else (255, 0, 0)
                    draw.ellipse([kx - 2, ky - 2, kx + 2, ky + 2], fill=colour)
            for px, py in zip(ann.get("dp_x", []), ann.get("dp_y", [])):
                cx, cy = x + px * w / 256, y + py * h / 256
                draw.point((cx, cy), fill=(255, 255, 255))
        parts = CHART_COLORS[dense["I"]]
        fg = dense["I"] > 0
        u = np.where(fg, dense["U"].astype(np.float32) * 255, 0).astype(np.uint8)
        v = np.where(fg, dense["V"].astype(np.float32) * 255, 0).astype(np.uint8)
        cells = [rgb, Image.fromarray(parts), Image.fromarray(_ramp(u, fg)), Image.fromarray(_ramp(v, fg))]
        row = Image.new("RGB", (4 * tile, tile))
        for k, cell in enumerate(cells):
            cell = cell.copy()
            cell.thumbnail((tile, tile))
            row.paste(cell, (k * tile, 0))
        rows.append(row)
    if not rows:
        raise UserError(f"{folder / 'annotations.json'}: no images")
    title_h = max(14, tile // 10)
    sheet = Image.new("RGB", (4 * tile, title_h + tile * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(8, title_h * 2 // 3))
    for k, title in enumerate(COLUMNS):
        while font.size > 6 and draw.textlength(title, font=font) > tile - 4:
            font = ImageFont.load_default(size=font.size - 1)
        w = draw.textlength(title, font=font)
        draw.text((k * tile + (tile - w) / 2, (title_h - font.size) / 2), title, fill=(0, 0, 0), font=font)
    for k, row in enumerate(rows):
        sheet.paste(row, (0, title_h + k * tile))
    return sheet


def _ramp(values: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """uint8 (H, W) -> a blue-to-yellow colour ramp (H, W, 3); background black."""
    t = values.astype(np.float32) / 255.0
    out = np.stack([255 * t, 80 + 150 * t, 255 * (1 - t)], axis=-1)
    return np.where(fg[..., None], out, 0).astype(np.uint8)
