"""Bad and unusual inputs for `densepose.io` (each must give RGB uint8 or a clear UserError)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from densepose.errors import UserError
from densepose.io.images import expand_inputs, image_to_array, load_image


def _jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(UserError, match=r"empty.jpg: file is empty \(0 bytes\)"):
        load_image(p)


def test_non_image_and_missing_and_folder(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture")
    with pytest.raises(UserError, match="notes.png: not a readable image"):
        load_image(p)
    with pytest.raises(UserError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(UserError, match="is a folder"):
        load_image(tmp_path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    arr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_image(p)


def test_grayscale_and_palette(tmp_path):
    Image.fromarray(np.full((5, 6), 90, np.uint8), mode="L").save(tmp_path / "g.png")
    rgb, notes = load_image(tmp_path / "g.png")
    assert rgb.shape == (5, 6, 3) and rgb.dtype == np.uint8 and (rgb == 90).all() and not notes
    Image.new("P", (4, 4), 3).save(tmp_path / "p.gif")
    assert load_image(tmp_path / "p.gif")[0].shape == (4, 4, 3)


def test_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    rgb, _ = load_image(tmp_path / "a.png")
    assert tuple(rgb[0, 0]) == (200, 0, 0)
    assert tuple(rgb[3, 0]) == (255, 255, 255)


def test_16bit_scaled(tmp_path):
    arr = np.array([[0, 257 * 128, 65535]], np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")  # 16-bit grayscale PNG
    with Image.open(tmp_path / "d.png") as im:
        assert im.mode.startswith("I")
    rgb, _ = load_image(tmp_path / "d.png")
    assert rgb[0, :, 0].tolist() == [0, 128, 255] and (rgb[..., 0] == rgb[..., 2]).all()
    # arrays given to the API directly
    assert image_to_array(arr)[0, :, 0].tolist() == [0, 128, 255]
    assert image_to_array(np.ones((2, 2, 3), np.float32))[0, 0].tolist() == [255, 255, 255]


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red ink-wise
    cmyk.save(tmp_path / "c.jpg")
    rgb, _ = load_image(tmp_path / "c.jpg")
    assert rgb.shape == (8, 8, 3)
    r, g, b = rgb[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_rotation(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    rgb, _ = load_image(tmp_path / "r.jpg")
    assert rgb.shape == (20, 10, 3)  # displayed upright: portrait
    assert rgb[:8].mean() > 200 and rgb[12:].mean() < 50  # old left half is now on top


def test_large_jpeg_downscaled_with_note(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (600, 1000, 3), dtype=np.uint8)
    (tmp_path / "big.jpg").write_bytes(_jpeg_bytes(arr))
    rgb, notes = load_image(tmp_path / "big.jpg", max_side=200, max_decode_pixels=10_000)
    assert max(rgb.shape[:2]) == 200 and rgb.shape[:2] == (120, 200)
    assert notes and "downscaled from 1000x600 to 200x120" in notes[0]


def _huge_png(path, width: int, height: int) -> None:
    """A valid all-black grayscale PNG written in strips (a few hundred KB on disk)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [comp.compress(row * 500) for _ in range(height // 500)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    p = tmp_path_factory.mktemp("huge") / "huge.png"
    _huge_png(p, 20000, 20000)
    assert p.stat().st_size < 2_000_000
    return p


def test_huge_png_refused_from_header_without_decoding(huge_png, monkeypatch):
    # Pillow's own guard raises DecompressionBombError here; we must give a clear UserError instead.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(huge_png)
    # A machine without the memory for the raster (simulated by the limit): refused before decoding.
    with pytest.raises(UserError, match=r"huge.png: image is 20000x20000 \(400 megapixels\), above the 100-megapixel"):
        load_image(huge_png, max_decode_pixels=100_000_000)
    monkeypatch.setenv("DENSEPOSE_MAX_DECODE_PIXELS", "5e7")
    with pytest.raises(UserError, match="above the 50-megapixel limit"):
        load_image(huge_png)


@pytest.mark.slow
def test_huge_png_downscaled_when_memory_allows(huge_png):
    """~15 s and ~1 GB: the 400-megapixel raster is decoded once, then reduced to 4096 px."""
    rgb, notes = load_image(huge_png, max_decode_pixels=500_000_000)
    assert rgb.shape == (4096, 4096, 3) and notes == ["downscaled from 20000x20000 to 4096x4096"]


def test_moderate_png_decoded_then_downscaled(tmp_path):
    p = tmp_path / "wide.png"
    _huge_png(p, 6000, 1000)
    rgb, notes = load_image(p, max_side=1000)
    assert rgb.shape == (167, 1000, 3) and (rgb == 0).all() and "downscaled" in notes[0]


def test_expand_inputs(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "c.txt").write_bytes(b"x")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "d.mp4").write_bytes(b"x")
    files, notes = expand_inputs([str(tmp_path), str(tmp_path / "*.png"), str(sub), str(tmp_path / "none*.jpg")])
    names = [f.name for f in files]
    assert names == ["a.jpg", "b.png", "d.mp4"]  # folder + glob duplicates removed; .txt skipped in folders
    assert notes == [f"{tmp_path / 'none*.jpg'}: pattern matches no files"]
    files, _ = expand_inputs([str(tmp_path / "c.txt"), str(tmp_path / "ghost.jpg")])
    assert [f.name for f in files] == ["c.txt", "ghost.jpg"]  # explicit paths kept, to be reported later
