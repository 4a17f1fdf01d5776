"""Image inputs: expand paths/folders/globs, decode any image safely to RGB uint8, write PNGs atomically.

Decoding rules (`load_image`):
- 0-byte, non-image, unreadable and truncated files raise `UserError` naming the file.
- The size is read from the header *before* decoding. JPEGs larger than ``max_side`` are decoded
  at a reduced DCT scale (``Image.draft``), so a 20000x20000 JPEG never needs its full-size buffer.
  Other formats need their whole raster in memory: they are decoded and then downscaled when the
  raster (with a working copy) fits in half the available memory (or under ``max_decode_pixels``
  / ``$DENSEPOSE_MAX_DECODE_PIXELS`` when set), and refused with a clear message otherwise.
  Pillow's decompression-bomb guard is replaced by these explicit limits.
- EXIF orientation is applied (``ImageOps.exif_transpose``).
- Modes: grayscale and palette are expanded to RGB; alpha (RGBA, LA, PA, palette transparency) is
  composited over white; CMYK and YCbCr/LAB go through Pillow's conversion; 16-bit images
  (``I;16*``, ``I``) are scaled by 255/65535, float (``F``) images by 255 when they lie in [0, 1].
"""
from __future__ import annotations

import glob
import io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from densepose.cache import atomic_write_bytes
from densepose.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")

#: Longest side kept after decoding; larger images are downscaled (with a note) before inference.
DEFAULT_MAX_SIDE = 4096
_EXIF_ORIENTATION = 0x0112
_BYTES_PER_SAMPLE = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def _decode_budget_pixels(mode: str) -> int:
    """How many pixels of ``mode`` we dare decode: env override, else half the available memory
    for the raster plus one converted RGB copy."""
    env = os.environ.get("DENSEPOSE_MAX_DECODE_PIXELS")
    if env:
        return int(float(env))
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 4 GB
        available = 4 << 30
    try:
        bands = Image.getmodebands(mode)
    except (KeyError, ValueError):
        bands = 4
    per_pixel = bands * _BYTES_PER_SAMPLE.get(mode, 1) + 3
    return int(available * 0.5 / per_pixel)

_BOMB_LOCK = threading.Lock()


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def expand_inputs(specs: list[str]) -> tuple[list[Path], list[str]]:
    """Turn command-line inputs into a sorted list of files, and notes about specs that matched nothing.

    A folder contributes its image and video files (not recursive); a glob (``*``, ``?``, ``[``)
    contributes every matching file; a plain path is kept as given even when it does not exist or
    is not an image, so that reading it later reports a clear per-file error.
    """
    files: list[Path] = []
    notes: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
            )
            if not found:
                notes.append(f"{spec}: folder contains no image or video files")
            files.extend(found)
        elif any(ch in spec for ch in "*?[") and not path.exists():
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not found:
                notes.append(f"{spec}: pattern matches no files")
            files.extend(found)
        else:
            files.append(path)
    # The same file named twice (folder + glob) is processed once.
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, notes


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """Any Pillow image -> RGB uint8 (H, W, 3), following the module's mode rules."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(image).astype(np.float64)
        if mode == "I" and arr.size and arr.max() > 65535:
            arr = (arr - arr.min()) * (65535.0 / max(arr.max() - arr.min(), 1.0))
        if mode.startswith("I;16") or (arr.size and arr.max() > 255):
            arr = arr * (255.0 / 65535.0)
        gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        arr = np.nan_to_num(arr)
        if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _open_without_bomb_guard(path: Path) -> Image.Image:
    """Open lazily (header only) with Pillow's bomb guard off; `load_image` applies its own limits."""
    with _BOMB_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = old


@dataclass
class DecodedImage:
    """An image file as decoded: ``array`` RGB uint8 (h, w, 3), ``original_size`` (H, W) of the
    file after EXIF rotation (larger than the array when it was downscaled), human-readable ``notes``."""

    array: np.ndarray
    original_size: tuple[int, int]
    notes: list[str]


def load_image(
    path: str | os.PathLike,
    max_side: int = DEFAULT_MAX_SIDE,
    max_decode_pixels: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Read an image file as RGB uint8 (H, W, 3). Returns the array and human-readable notes
    (e.g. "downscaled from 20000x20000 to 4096x4096"). Raises `UserError` for unusable files."""
    decoded = read_image(path, max_side, max_decode_pixels)
    return decoded.array, decoded.notes


def read_image(
    path: str | os.PathLike,
    max_side: int = DEFAULT_MAX_SIDE,
    max_decode_pixels: int | None = None,
) -> DecodedImage:
    """`load_image` that also tells the file's own size (results are reported in those pixels)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image")
    try:
        if path.stat().st_size == 0:
            raise UserError(f"{path}: file is empty (0 bytes)")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    notes: list[str] = []
    try:
        im = _open_without_bomb_guard(path)
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except OSError as exc:
        if exc.errno is None:  # Pillow's own parse errors, e.g. "Truncated File Read"
            raise UserError(f"{path}: image data is corrupt or truncated ({exc})") from None
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        with im:
            width, height = im.size
            if width <= 0 or height <= 0:
                raise UserError(f"{path}: image has an empty size {width}x{height}")
            if max(width, height) > max_side and im.format == "JPEG":
                # DCT-domain downscale: decodes at 1/2, 1/4 or 1/8 scale without the full raster.
                scale = max_side / max(width, height)
                im.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
            elif width * height > (limit := max_decode_pixels or _decode_budget_pixels(im.mode)):
                raise UserError(
                    f"{path}: image is {width}x{height} ({width * height / 1e6:.0f} megapixels), above the "
                    f"{limit / 1e6:.0f}-megapixel limit for decoding {im.format or 'this format'} safely in "
                    "the available memory; downscale it first (JPEGs of any size are accepted)"
                )
            try:
                swap = im.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8)  # rotated by 90 degrees
            except Exception:  # a broken EXIF block: exif_transpose ignores it too
                swap = False
            original_size = (width, height) if swap else (height, width)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb_im = im
                if max(im.size) > max_side:
                    scale = max_side / max(im.size)
                    new_size = (max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale)))
                    if im.mode not in ("RGB", "RGBA", "L", "LA"):
                        rgb_im = Image.fromarray(to_rgb_uint8(im))
                    rgb_im = rgb_im.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
                rgb = to_rgb_uint8(rgb_im)
    except UserError:
        raise
    except Image.DecompressionBombError as exc:
        raise UserError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError ("image file is truncated") and friends.
        raise UserError(f"{path}: image data is corrupt or truncated ({exc})") from None
    except MemoryError:
        raise UserError(f"{path}: not enough memory to decode this {width}x{height} image") from None
    if max(rgb.shape[:2]) < max(width, height):
        notes.append(f"downscaled from {width}x{height} to {rgb.shape[1]}x{rgb.shape[0]}")
    return DecodedImage(np.ascontiguousarray(rgb), original_size, notes)


def image_to_array(image) -> np.ndarray:
    """An RGB uint8 array (H, W, 3), a grayscale (H, W) array, a PIL image or a path -> RGB uint8 (H, W, 3)."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)[0]
    if isinstance(image, Image.Image):
        return to_rgb_uint8(ImageOps.exif_transpose(image))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    if arr.shape[2] == 4:
        return to_rgb_uint8(Image.fromarray(arr.astype(np.uint8), mode="RGBA"))
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        elif arr.dtype == np.uint16:
            arr = arr.astype(np.float64) * (255.0 / 65535.0)
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def encode_png(array: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, 3) array -> PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as a PNG, atomically."""
    atomic_write_bytes(path, encode_png(array))


def encode_jpeg(array: np.ndarray, quality: int = 92) -> bytes:
    """uint8 (H, W, 3) array -> JPEG bytes (for pictures; never for IUV data, which must stay lossless)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
