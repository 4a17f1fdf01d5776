"""The official DensePose results encoding: ``uv_shape`` and ``uv_data``.

``uv_data`` is a base64 PNG of the uint8 array (3, H, W) = [I, U*255, V*255] at box size, stored
as an RGB image (R = I, G = U, B = V). This is what the COCO DensePose challenge and detectron2's
``DensePoseChartResultCompressed`` use.
"""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def quantize_iuv(labels: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(H, W) part labels 0..24 and (H, W) U, V in [0, 1] -> uint8 (3, H, W) = [I, U*255, V*255]."""
    u8 = np.clip(np.round(u * 255.0), 0, 255).astype(np.uint8)
    v8 = np.clip(np.round(v * 255.0), 0, 255).astype(np.uint8)
    return np.stack([labels.astype(np.uint8), u8, v8])


def encode_uv_data(iuv: np.ndarray) -> tuple[list[int], str]:
    """uint8 (3, H, W) -> (``uv_shape``, ``uv_data``)."""
    if iuv.ndim != 3 or iuv.shape[0] != 3 or iuv.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array of shape (3, H, W), got {iuv.dtype} {iuv.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(iuv.transpose(1, 2, 0)), mode="RGB").save(buf, format="PNG")
    return list(iuv.shape), base64.b64encode(buf.getvalue()).decode("ascii")


def decode_uv_data(uv_data: str, uv_shape: list[int] | tuple[int, ...] | None = None) -> np.ndarray:
    """(``uv_data``, optional ``uv_shape``) -> uint8 (3, H, W).

    Raises ValueError when the data does not decode, or when it disagrees with ``uv_shape``.
    """
    try:
        raw = base64.b64decode(uv_data, validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            mode = im.mode
            arr = np.asarray(im.convert("RGB")) if mode == "RGB" else None
    except Exception as exc:  # PIL raises many types for corrupt data
        raise ValueError(f"uv_data does not decode as a base64 PNG ({exc.__class__.__name__})") from None
    if arr is None:  # a grayscale or palette PNG would silently read as I = U = V
        raise ValueError(f"uv_data is a {mode} PNG; it must be RGB (the three planes I, U*255, V*255)")
    iuv = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if uv_shape is not None and tuple(int(s) for s in uv_shape) != iuv.shape:
        raise ValueError(f"uv_data decodes to shape {iuv.shape}, but uv_shape says {tuple(uv_shape)}")
    return iuv
