"""The guided filter (He, Sun and Tang, ECCV 2010) with a colour guide.

The output is locally a linear function of the guide image: in every (2r + 1)² window,
``q = a · I + b`` with ``a`` (3,) and ``b`` the least-squares fit of the input ``p`` from the
guide's colours ``I``, regularised by ``eps`` (``a`` shrinks to 0 where the colours vary less
than ``eps``, and ``q`` to the window mean of ``p``). A soft or binary mask filtered this way
keeps its values inside regions of even colour and changes them across the image's edges, so
its 0.5 level moves onto them. The coefficients of every window covering a pixel are averaged.
Windows at the border are cut, not padded. Window sums are sums of shifted views (rows, then
columns), O(radius) per pixel: the radius stays small (`guided_silhouette` shrinks the image
rather than widen the window).

``subsample`` s > 1 is the fast guided filter (He and Sun, 2015): the coefficients are fitted on
the guide and input shrunk by s (s x s block means, radius / s), then enlarged back bilinearly and
applied to the full guide; s² times less work for the fits, close to the full filter's result
because the coefficients vary smoothly.

Only the band where ``p`` changes is computed: where ``p`` is even within a window, its fit is
``a = 0, b = p``, and where it is even within 2 radius of a pixel, the output there is ``p``
itself. A mask's outline is a small part of its box, so the cost goes with the outline more than
with the area.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import maximum_filter1d, minimum_filter1d


def box_mean(t: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W): the mean over each pixel's (2 radius + 1)² window, cut at the
    borders. Window sums of rows, then of columns, each added up from 2 radius + 1 shifted views
    of the zero-padded input (the sums of a depthwise convolution of ones, in a quarter of its time
    on the CPU), divided by each window's pixel count."""
    h, w = t.shape[-2:]
    size = 2 * radius + 1
    padded = F.pad(t, (radius, radius, radius, radius))
    rows = padded[..., 0:w].clone()
    for shift in range(1, size):
        rows += padded[..., shift : shift + w]
    sums = rows[..., 0:h, :].clone()
    for shift in range(1, size):
        sums += rows[..., shift : shift + h, :]

    def counts(n: int) -> torch.Tensor:
        at = torch.arange(n, device=t.device)
        return ((at + radius + 1).clamp(max=n) - (at - radius).clamp(min=0)).to(t.dtype)
    return sums / (counts(h)[:, None] * counts(w)[None, :])


def window_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """(C, H, W) float32 -> (C, H, W): `box_mean` of a numpy array."""
    return box_mean(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None], radius)[0].numpy()


def _varies(p: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) -> (H, W) bool: ``p`` takes more than one value within ``radius`` (a square window)."""
    size = 2 * radius + 1
    highest = maximum_filter1d(maximum_filter1d(p, size, axis=0), size, axis=1)
    lowest = minimum_filter1d(minimum_filter1d(p, size, axis=0), size, axis=1)
    return highest > lowest


def _coefficients(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """(3, H, W) guide, (H, W) input -> (4, H, W): ``a`` (3) and ``b`` averaged over the windows of each pixel."""
    i0, i1, i2 = guide
    # Window means of the guide, p, their products and the guide's own products; the fit is
    # solved only where p varies within the window (elsewhere a = 0, b = p).
    m = window_mean(np.stack([i0, i1, i2, p, i0 * p, i1 * p, i2 * p,
                              i0 * i0, i0 * i1, i0 * i2, i1 * i1, i1 * i2, i2 * i2]), radius)
    ys, xs = np.nonzero(_varies(p, radius))
    m = m[:, ys, xs]
    mean_i, mean_p = m[:3], m[3]
    x, y, z = m[4:7] - mean_i * mean_p  # the covariance of the guide's channels with p
    s00 = m[7] - mean_i[0] * mean_i[0] + eps
    s01 = m[8] - mean_i[0] * mean_i[1]
    s02 = m[9] - mean_i[0] * mean_i[2]
    s11 = m[10] - mean_i[1] * mean_i[1] + eps
    s12 = m[11] - mean_i[1] * mean_i[2]
    s22 = m[12] - mean_i[2] * mean_i[2] + eps
    # a = Sigma^-1 cov, with the inverse of the symmetric 3 x 3 Sigma from its cofactors.
    c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
    c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
    det = s00 * c00 + s01 * c01 + s02 * c02
    fit = np.zeros((4,) + p.shape, dtype=np.float32)
    fit[3] = p
    fit[:3, ys, xs] = np.stack([c00 * x + c01 * y + c02 * z, c01 * x + c11 * y + c12 * z,
                                c02 * x + c12 * y + c22 * z]) / det
    fit[3, ys, xs] = mean_p - (fit[:3, ys, xs] * mean_i).sum(0)
    return window_mean(fit, radius)


def _shrink(x: np.ndarray, s: int) -> np.ndarray:
    """(..., H, W) -> (..., ceil(H / s), ceil(W / s)): means of s x s blocks, the last ones cut at the border."""
    h, w = x.shape[-2:]
    hs, ws = -(-h // s), -(-w // s)
    if (hs * s, ws * s) != (h, w):
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, hs * s - h), (0, ws * s - w)])
    sums = sum(x[..., i::s, j::s] for i in range(s) for j in range(s))  # s² strided adds beat a reshaped sum
    rows = np.minimum(s, h - np.arange(hs) * s)[:, None]
    cols = np.minimum(s, w - np.arange(ws) * s)[None, :]
    return sums / (rows * cols).astype(np.float32)


def _bilinear_at(x: np.ndarray, s: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(C, hs, ws) values of s x s blocks -> (C, N) at full-size pixels (ys, xs), bilinear between
    the blocks' centres (clamped at the ends)."""
    def taps(at: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((at.astype(np.float32) + 0.5) / s - 0.5, 0, blocks - 1)
        low = np.floor(pos).astype(np.intp)
        return low, np.minimum(low + 1, blocks - 1), (pos - low).astype(np.float32)
    y0, y1, fy = taps(ys, x.shape[1])
    x0, x1, fx = taps(xs, x.shape[2])
    return (x[:, y0, x0] * (1 - fx) + x[:, y0, x1] * fx) * (1 - fy) + (x[:, y1, x0] * (1 - fx) + x[:, y1, x1] * fx) * fy


def guided_filter(guide: np.ndarray, p: np.ndarray, radius: int, eps: float, subsample: int = 1) -> np.ndarray:
    """Filter ``p`` (H, W) with the colour image ``guide`` (3, H, W), values about 0..1 -> (H, W) float32.

    Args:
        radius: the window's half-size in pixels (>= 1); a window larger than the image is cut to it.
        eps: the regularisation, in squared guide units (1e-3: colour steps of about 0.03 count as edges).
        subsample: fit the coefficients on the guide shrunk by this (module docstring); 1: the exact filter.
    """
    guide = guide.astype(np.float32, copy=False)
    p = p.astype(np.float32, copy=False)
    if subsample <= 1:
        ys, xs = np.nonzero(_varies(p, 2 * radius))
        coefficients = _coefficients(guide, p, radius, eps)[:, ys, xs] if len(ys) else None
    else:
        s, small_radius = subsample, max(1, round(radius / subsample))
        small_p = _shrink(p, s)
        # Full-size pixels whose block sees p vary within the radius: the exact filter's band reaches
        # twice as far, but on masks its output crosses a threshold only this near their edge (the
        # same figures on three sets of 200 renders, in 15 % less time).
        blocks = _varies(small_p, small_radius)
        ys, xs = np.nonzero(np.repeat(np.repeat(blocks, s, axis=0), s, axis=1)[: p.shape[0], : p.shape[1]])
        coefficients = None
        if len(ys):
            fitted = _coefficients(_shrink(guide, s), small_p, small_radius, eps)
            coefficients = _bilinear_at(fitted, s, ys, xs)
    out = p.copy()
    if coefficients is not None:
        out[ys, xs] = (coefficients[:3] * guide[:, ys, xs]).sum(0) + coefficients[3]
    return out
