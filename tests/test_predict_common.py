"""Shared helpers for the predict tests: a deterministic stand-in for DensePoseRCNN's eval output.

`FakeModel` honours the model contract of docs/ARCHITECTURE.md (list of (3, H, W) float images ->
per image a dict with boxes, scores, coarse_segm, fine_segm, u, v at S = 112), with known content:
person 1 (score 0.9) covers x 20%..60%, y 10%..90% of the image; person 2 (score 0.6) covers
x 50%..90%, y 30%..95%; person 3 (score 0.1) is a small box. Inside each box the body is the
central ellipse; its left half is chart 2, its right half chart 15; U = x / S, V = y / S.
"""
from __future__ import annotations

import numpy as np
import torch

S = 112
BOXES = np.array([[0.2, 0.1, 0.6, 0.9], [0.5, 0.3, 0.9, 0.95], [0.05, 0.05, 0.15, 0.15]], np.float32)
SCORES = np.array([0.9, 0.6, 0.1], np.float32)


def fake_maps(n: int) -> dict[str, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32) + 0.5, torch.arange(S, dtype=torch.float32) + 0.5, indexing="ij")
    inside = ((xx - S / 2) / (S * 0.4)) ** 2 + ((yy - S / 2) / (S * 0.45)) ** 2 < 1
    coarse = torch.stack([(~inside).float() * 10, inside.float() * 10])
    fine = torch.zeros(25, S, S)
    fine[2] = (xx < S / 2).float() * 10
    fine[15] = (xx >= S / 2).float() * 10
    u = (xx / S)[None].expand(25, S, S)
    v = (yy / S)[None].expand(25, S, S)
    rep = lambda t: t[None].expand(n, *t.shape).clone()  # noqa: E731
    return {"coarse_segm": rep(coarse), "fine_segm": rep(fine), "u": rep(u), "v": rep(v)}


class FakeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[int, int]] = []

    def forward(self, images):
        out = []
        for im in images:
            assert im.ndim == 3 and im.shape[0] == 3 and im.dtype == torch.float32
            h, w = im.shape[1:]
            self.calls.append((h, w))
            boxes = torch.from_numpy(BOXES * np.array([w, h, w, h], np.float32))
            out.append({"boxes": boxes, "scores": torch.from_numpy(SCORES.copy()), **fake_maps(len(boxes))})
        return out


def random_image(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
