"""densepose.modeling.guided_filter against a per-window least-squares loop."""
from __future__ import annotations

import numpy as np

from densepose.modeling.guided_filter import guided_filter


def _naive(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Each window's ridge fit p ~ a . I + b, windows cut at the borders; each pixel averages the
    fits of the windows that hold it."""
    _, h, w = guide.shape
    a = np.zeros((h, w, 3))
    b = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = slice(max(y - r, 0), min(y + r + 1, h)), slice(max(x - r, 0), min(x + r + 1, w))
            cols = guide[:, ys, xs].reshape(3, -1).T  # (n, 3)
            vals = p[ys, xs].reshape(-1)
            mean_c, mean_v = cols.mean(0), vals.mean()
            cov = (cols - mean_c).T @ (cols - mean_c) / len(vals) + eps * np.eye(3)
            a[y, x] = np.linalg.solve(cov, (cols - mean_c).T @ (vals - mean_v) / len(vals))
            b[y, x] = mean_v - a[y, x] @ mean_c
    q = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = slice(max(y - r, 0), min(y + r + 1, h)), slice(max(x - r, 0), min(x + r + 1, w))
            q[y, x] = a[ys, xs].reshape(-1, 3).mean(0) @ guide[:, y, x] + b[ys, xs].mean()
    return q


def test_guided_filter_equals_the_per_window_fits():
    rng = np.random.default_rng(0)
    guide = rng.random((3, 11, 14))
    p = (rng.random((11, 14)) > 0.5).astype(np.float64)
    for r, eps in ((1, 1e-3), (2, 1e-2), (9, 1e-3)):  # r = 9: windows larger than the image
        got = guided_filter(guide, p, r, eps)
        np.testing.assert_allclose(got, _naive(guide, p, r, eps), atol=2e-4)


def test_a_mask_moves_onto_the_colour_edge():
    """A mask one pixel too wide or too narrow over a sharp colour edge comes back to the edge; on
    an image of one colour, with no edge to follow, it stays where it was."""
    guide = np.zeros((3, 20, 20))
    guide[:, :, 10:] = np.array([0.8, 0.3, 0.1])[:, None, None]  # the person: columns 10..19
    for start in (9, 11):
        mask = np.zeros((20, 20))
        mask[:, start:] = 1
        snapped = guided_filter(guide, mask, 3, 1e-3) > 0.5
        assert snapped[:, 10:].all() and not snapped[:, :10].any()
        flat = guided_filter(np.zeros((3, 20, 20)), mask, 3, 1e-3) > 0.5
        assert flat[:, start:].all() and not flat[:, :start].any()


def test_the_fast_filter_is_close_to_the_full_one():
    """Coefficients fitted at half size (the fast guided filter) on a smooth image with a round
    person: the mask at 0.4 agrees with the full filter's on 99.5 % of the pixels."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:160, 0:120]
    person = (xx - 60) ** 2 + (yy - 80) ** 2 < 45 ** 2
    guide = np.stack([np.sin(xx / 13.0) * 0.3 + 0.5, np.cos(yy / 17.0) * 0.3 + 0.5, person * 0.6]).astype(np.float32)
    guide += rng.normal(0, 0.01, guide.shape).astype(np.float32)
    mask = ((xx - 61) ** 2 + (yy - 79) ** 2 < 47 ** 2).astype(np.float32)  # two pixels too wide
    full = guided_filter(guide, mask, 4, 1e-3) >= 0.4
    fast = guided_filter(guide, mask, 4, 1e-3, subsample=2) >= 0.4
    assert (full == fast).mean() > 0.995
    assert (fast == person).mean() > (mask.astype(bool) == person).mean()  # closer to the person than the mask was


def test_only_the_band_around_the_masks_edge_changes():
    """Pixels further than 2 radius from any change of the input keep it exactly."""
    rng = np.random.default_rng(2)
    guide = rng.random((3, 40, 40))
    mask = np.zeros((40, 40))
    mask[15:25, 15:25] = 1
    out = guided_filter(guide, mask, 2, 1e-3)
    far = np.ones((40, 40), dtype=bool)
    far[10:30, 10:30] = False  # within 2 radius + 1 of the square's edges
    assert np.array_equal(out[far], mask[far])


def test_box_mean_is_the_mean_of_each_window_cut_at_the_borders():
    import torch

    from densepose.modeling.guided_filter import box_mean

    t = torch.rand(2, 3, 7, 10, generator=torch.Generator().manual_seed(0))
    for radius in (1, 3, 8):  # 8: windows larger than the map
        want = torch.empty_like(t)
        for y in range(7):
            for x in range(10):
                want[..., y, x] = t[..., max(y - radius, 0): y + radius + 1, max(x - radius, 0): x + radius + 1].mean((-2, -1))
        torch.testing.assert_close(box_mean(t, radius), want, rtol=0, atol=1e-6)
