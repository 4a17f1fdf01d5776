"""DensePoseDataset, collate, SeededSampler and the loader: content, determinism, resumability."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from densepose.data.dataset import DensePoseDataset, SeededSampler, build_train_loader, collate
from densepose.data.rle import encode_dp_masks, encode_mask
from densepose.data.transforms import AugmentConfig, TrainTransform
from densepose.errors import UserError
from densepose.surface.parts import CHART_FLIP, CHART_TO_MASK_PART


class FakeSurface:
    """Stand-in for a BodySurface symmetry: swap left/right charts and mirror U (an involution)."""

    def flip_iuv(self, charts, uv):
        uv = np.array(uv, dtype=np.float64)
        uv[..., 0] = 1.0 - uv[..., 0]
        return CHART_FLIP[np.asarray(charts)], uv


def make_person(rng: np.random.Generator, ann_id: int, image_id: int, h: int, w: int, n_points: int = 12) -> dict:
    x0, y0 = rng.uniform(0, w / 3), rng.uniform(0, h / 3)
    bw, bh = rng.uniform(w / 4, w / 2), rng.uniform(h / 4, h / 2)
    labels = np.zeros((256, 256), dtype=np.uint8)
    charts = rng.integers(1, 25, size=n_points)
    px, py = rng.uniform(0, 255, n_points), rng.uniform(0, 255, n_points)
    for c, x, y in zip(charts, px, py):  # a little blob of the right coarse part around each point
        labels[max(0, int(y) - 6): int(y) + 6, max(0, int(x) - 6): int(x) + 6] = CHART_TO_MASK_PART[c]
    seg = np.zeros((h, w), dtype=np.uint8)
    seg[int(y0): int(y0 + bh), int(x0): int(x0 + bw)] = 1
    kp = np.stack([rng.uniform(x0, x0 + bw, 17), rng.uniform(y0, y0 + bh, 17), rng.integers(0, 3, 17)], 1)
    return {
        "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
        "bbox": [float(x0), float(y0), float(bw), float(bh)], "area": float(bw * bh),
        "segmentation": encode_mask(seg), "keypoints": kp.ravel().tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
        "dp_x": px.tolist(), "dp_y": py.tolist(), "dp_I": charts.astype(float).tolist(),
        "dp_U": rng.uniform(0, 1, n_points).tolist(), "dp_V": rng.uniform(0, 1, n_points).tolist(),
        "dp_masks": encode_dp_masks(labels),
    }


def make_tiny_coco(root: Path, n_images: int = 6, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """Write ``root/images/*.png`` and ``root/annotations.json``: 1-2 people per image, one image empty."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    h, w = size
    images, anns = [], []
    for i in range(n_images):
        name = f"img_{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        n_people = 0 if i == 2 else 1 + i % 2
        for _ in range(n_people):
            anns.append(make_person(rng, len(anns) + 1, i + 1, h, w))
    anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [1.0, 2.0, 5.0, 6.0]})
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (root / "annotations.json").write_text(json.dumps(data))
    return root


def tiny_dataset(root: Path, **kw) -> DensePoseDataset:
    aug = AugmentConfig(min_sizes=(24, 32, 40), max_size=64, flip_prob=0.5, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
    return DensePoseDataset(root / "images", root / "annotations.json", TrainTransform(aug, FakeSurface()), **kw)


def test_dataset_items(tmp_path):
    root = make_tiny_coco(tmp_path)
    ds = DensePoseDataset(root / "images", root / "annotations.json", with_masks=True)
    assert len(ds) == 6
    image, target = ds[0]
    assert image.shape == (3, 40, 48) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 255
    assert np.array_equal(image.permute(1, 2, 0).numpy().astype(np.uint8), np.asarray(Image.open(ds.image_path(0))))
    assert target["boxes"].shape == (2, 4)  # one DensePose person + one box-only person
    assert target["dp"][0]["mask"].shape == (256, 256) and target["dp"][1] is None
    assert target["keypoints"].shape == (2, 17, 3) and float(target["keypoints"][1, :, 2].abs().sum()) == 0
    assert "masks" not in target  # the box-only person has no segmentation
    _, target = ds[1]
    assert target["masks"].shape == (2, 40, 48)
    _, empty = ds[2]
    assert empty["boxes"].shape == (0, 4) and empty["dp"] == []
    assert len(DensePoseDataset(root / "images", root / "annotations.json", skip_empty=True)) == 5


def test_dataset_errors(tmp_path):
    root = make_tiny_coco(tmp_path)
    with pytest.raises(UserError, match="image folder not found"):
        DensePoseDataset(root / "nope", root / "annotations.json")
    (root / "images" / "img_000.png").unlink()
    ds = DensePoseDataset(root / "images", root / "annotations.json")
    with pytest.raises(UserError, match="img_000.png.*record id 1"):
        ds[0]


def test_collate_keeps_lists(tmp_path):
    ds = tiny_dataset(make_tiny_coco(tmp_path))
    images, targets = collate([ds[(0, 1)], ds[(1, 2)]])
    assert isinstance(images, list) and len(images) == 2 and len(targets) == 2


def test_sampler_reproducible_and_resumable():
    def take(s, n):
        it = iter(s)
        return [next(it) for _ in range(n)]

    full = take(SeededSampler(7, seed=3), 20)
    assert take(SeededSampler(7, seed=3), 20) == full
    assert take(SeededSampler(7, seed=3, start=9), 11) == full[9:]
    assert sorted(i for i, _ in full[:7]) == list(range(7))  # each epoch is a permutation
    assert [i for i, _ in full[:7]] != [i for i, _ in full[7:14]]  # epochs differ
    assert len({s for _, s in full}) == 20  # every sample draws its own augmentation seed
    assert take(SeededSampler(7, seed=4), 7) != full[:7]
    # Two ranks split each (padded) epoch, as DistributedSampler does.
    r0, r1 = take(SeededSampler(7, 3, rank=0, world_size=2), 4), take(SeededSampler(7, 3, rank=1, world_size=2), 4)
    order = SeededSampler(7, 3, world_size=2).epoch_order(0).tolist()
    assert [i for i, _ in r0] == order[0::2] and [i for i, _ in r1] == order[1::2]
    assert set(order) == set(range(7)) and len(order) == 8
    assert SeededSampler(7, 3, world_size=2).state(9) == {"seed": 3, "consumed": 9, "epoch": 2, "position": 1}


def test_loader_deterministic_across_workers_and_resume(tmp_path):
    ds = tiny_dataset(make_tiny_coco(tmp_path))

    def batches(num_workers, start, n):
        loader, _ = build_train_loader(ds, batch_size=2, seed=5, num_workers=num_workers, start=start)
        it = iter(loader)
        return [next(it) for _ in range(n)]

    a = batches(0, 0, 5)
    b = batches(2, 0, 5)
    c = batches(0, 4, 3)  # resume after two batches
    for (ia, ta), (ib, tb) in zip(a, b):
        assert all(torch.equal(x, y) for x, y in zip(ia, ib))
        assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(ta, tb))
    for (ia, _), (ic, _) in zip(a[2:], c):
        assert all(torch.equal(x, y) for x, y in zip(ia, ic))
    sizes = {tuple(im.shape[-2:]) for imgs, _ in a for im in imgs}
    assert len(sizes) > 1  # multi-scale resize is active
