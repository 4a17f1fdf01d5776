"""Augmentations: resize moves targets consistently; the chart-aware flip is an involution."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from densepose.data.coco import KEYPOINT_FLIP, image_target
from densepose.data.transforms import AugmentConfig, TrainTransform, color_jitter, hflip, low_res_copy, resize, resize_shape
from densepose.errors import UserError
from densepose.surface.parts import CHART_FLIP, MASK_PART_FLIP
from test_data_dataset import FakeSurface, make_person


def _sample(with_masks=True):
    rng = np.random.default_rng(0)
    anns = [make_person(rng, k, 1, 40, 48) for k in (1, 2)]
    image = torch.from_numpy(rng.uniform(0, 255, (3, 40, 48)).astype(np.float32))
    return image, image_target(anns, 40, 48, with_masks)


def _assert_same(t1, t2):
    assert torch.allclose(t1["boxes"], t2["boxes"], atol=1e-4)
    assert torch.allclose(t1["keypoints"], t2["keypoints"], atol=1e-4)
    assert torch.equal(t1["masks"], t2["masks"])
    for a, b in zip(t1["dp"], t2["dp"]):
        assert torch.equal(a["I"], b["I"]) and torch.equal(a["mask"], b["mask"])
        for k in ("x", "y", "U", "V"):
            assert torch.allclose(a[k], b[k], atol=1e-4)


def test_flip_twice_is_identity():
    image, target = _sample()
    im1, t1 = hflip(image, target, FakeSurface())
    im2, t2 = hflip(im1, t1, FakeSurface())
    assert torch.equal(im2, image)
    _assert_same(t2, target)


def test_flip_moves_everything_consistently():
    image, target = _sample()
    W = image.shape[-1]
    im1, t1 = hflip(image, target, FakeSurface())
    assert torch.equal(im1[..., 0], image[..., -1])
    b, b1 = target["boxes"], t1["boxes"]
    assert torch.allclose(b1[:, 0], W - b[:, 2]) and torch.allclose(b1[:, 2], W - b[:, 0])
    assert (b1[:, 2] >= b1[:, 0]).all()
    # left_eye (1) of the flipped person is the mirrored right_eye (2) of the original
    assert torch.allclose(t1["keypoints"][:, 1, 0], W - target["keypoints"][:, 2, 0])
    assert torch.equal(t1["keypoints"][:, :, 2], target["keypoints"][:, KEYPOINT_FLIP, 2])
    # an instance mask pixel at column c moves to W - 1 - c
    assert torch.equal(t1["masks"], target["masks"].flip(-1))
    dp, dp1 = target["dp"][0], t1["dp"][0]
    assert torch.allclose(dp1["x"], 256 - dp["x"]) and torch.equal(dp1["y"], dp["y"])
    assert torch.equal(dp1["I"], torch.from_numpy(CHART_FLIP[dp["I"].numpy()]))
    assert torch.allclose(dp1["U"], 1 - dp["U"]) and torch.allclose(dp1["V"], dp["V"])
    assert np.array_equal(dp1["mask"].numpy(), MASK_PART_FLIP[dp["mask"].flip(-1).numpy()])
    # A DensePose point's part label in the mask agrees before and after (labels move with points).
    for k in range(len(dp["x"])):
        c, r = int(dp["x"][k]), int(dp["y"][k])
        assert int(dp1["mask"][r, 255 - c]) == MASK_PART_FLIP[int(dp["mask"][r, c])]


def test_resize_scales_targets():
    image, target = _sample()
    assert resize_shape(40, 48, 20, 100) == (20, 24)
    assert resize_shape(40, 48, 80, 60) == (50, 60)  # capped by the long side
    im, t = resize(image, target, (20, 24))
    assert im.shape == (3, 20, 24)
    assert torch.allclose(t["boxes"], target["boxes"] / 2)
    assert torch.allclose(t["keypoints"][..., :2], target["keypoints"][..., :2] / 2)
    assert torch.equal(t["keypoints"][..., 2], target["keypoints"][..., 2])
    assert t["masks"].shape == (2, 20, 24) and t["masks"].dtype == torch.uint8
    assert t["dp"][0] is target["dp"][0]  # box-relative DensePose data does not change


def test_color_jitter():
    image, _ = _sample()
    assert torch.allclose(color_jitter(image, 1, 1, 1, 0), image, atol=1e-3)
    assert torch.allclose(color_jitter(image, 1, 1, 1, 1.0), image, atol=1e-2)  # a full hue turn
    gray = color_jitter(image, 1, 1, 0, 0)
    assert torch.allclose(gray[0], gray[1], atol=1e-3)
    out = color_jitter(image, 1.5, 1.3, 1.2, 0.1)
    assert out.min() >= 0 and out.max() <= 255 and not torch.allclose(out, image)


def test_train_transform_is_seeded():
    image, target = _sample(with_masks=False)
    tf = TrainTransform(AugmentConfig(min_sizes=(20, 30, 40), max_size=80, flip_prob=0.5, brightness=0.3), FakeSurface())
    a = tf(image, target, 123)
    b = tf(image, target, 123)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["boxes"], b[1]["boxes"])
    shapes = {tuple(tf(image, target, s)[0].shape) for s in range(12)}
    assert len(shapes) > 1


def test_grayscale_prob_makes_some_images_grey_and_leaves_the_other_draws():
    image, target = _sample(with_masks=False)
    base = dict(min_sizes=(20, 30, 40), max_size=80, flip_prob=0.5, brightness=0.3, saturation=0.5, hue=0.05)
    plain = TrainTransform(AugmentConfig(**base), FakeSurface())
    grey = TrainTransform(AugmentConfig(**base, grayscale_prob=0.5), FakeSurface())
    always = TrainTransform(AugmentConfig(**base, grayscale_prob=1.0), FakeSurface())
    greyed = 0
    for seed in range(16):
        (a, ta), (b, tb), (c, _) = plain(image, target, seed), grey(image, target, seed), always(image, target, seed)
        assert torch.allclose(c[0], c[1], atol=1e-3) and torch.allclose(c[1], c[2], atol=1e-3)
        assert a.shape == b.shape and torch.equal(ta["boxes"], tb["boxes"])  # size, flip: the same draws
        if torch.allclose(b[0], b[1], atol=1e-3):
            greyed += 1
            assert torch.allclose(b, c, atol=1e-3)  # grey as when it is always drawn grey
        else:
            assert torch.equal(a, b)
    assert 3 <= greyed <= 13


def test_one_resize_rule_for_training_model_and_predictor():
    """The dataset's optional resize, the model's own and the mapping back share modeling/transform.py."""
    from densepose.data import transforms as data_transforms
    from densepose.modeling import DensePoseRCNN, tiny_config
    from densepose.modeling import transform as model_transform

    assert data_transforms.resize_shape is model_transform.resize_shape
    image, target = _sample()
    size = resize_shape(40, 48, 64, 1333)
    im_data, t_data = resize(image, target, size)
    model = DensePoseRCNN(tiny_config(min_size_train=(64,), max_size=1333))
    model.train()
    batch, sizes, scales, targets = model.preprocess([image], [target])
    assert sizes == [size] and scales == [(size[0] / 40, size[1] / 48)]
    torch.testing.assert_close(targets[0]["boxes"], t_data["boxes"])
    torch.testing.assert_close(targets[0]["keypoints"], t_data["keypoints"])
    assert torch.equal(targets[0]["masks"], t_data["masks"])
    mean = torch.tensor(model.cfg.pixel_mean).view(3, 1, 1)
    std = torch.tensor(model.cfg.pixel_std).view(3, 1, 1)
    torch.testing.assert_close(batch[0, :, : size[0], : size[1]], (im_data - mean) / std)
    back = model_transform.boxes_to_input(t_data["boxes"], scales[0], (40, 48))
    torch.testing.assert_close(back, target["boxes"].float().clamp(min=0), atol=1e-4, rtol=0)


def test_low_res_prob_blurs_some_images_and_leaves_the_other_draws():
    """``low_res_prob``: a share of the images lose their fine detail (shrunk, enlarged back), as a
    small photo does once the model enlarges it; sizes, boxes and every other draw stay as they were."""
    image, target = _sample(with_masks=False)
    checker = ((torch.arange(image.shape[-2])[:, None] + torch.arange(image.shape[-1])[None]) % 2).float() * 255
    image = checker.expand(3, -1, -1).clone()  # the finest detail there is
    base = dict(min_sizes=(), flip_prob=0.5, brightness=0.3)  # no resize: the model's own would blur both
    plain = TrainTransform(AugmentConfig(**base), FakeSurface())
    some = TrainTransform(AugmentConfig(**base, low_res_prob=0.5), FakeSurface())
    low = 0
    for seed in range(16):
        (a, ta), (b, tb) = plain(image, target, seed), some(image, target, seed)
        assert a.shape == b.shape and torch.equal(ta["boxes"], tb["boxes"])
        if torch.equal(a, b):
            continue
        low += 1
        assert b.std() < 0.5 * a.std()  # the checkerboard is averaged away
    assert 3 <= low <= 13
    copy = low_res_copy(image, 0.5)
    assert copy.shape == image.shape and (copy - 127.5).abs().max() < 40
    with pytest.raises(UserError, match="low_res_scale"):
        TrainTransform(AugmentConfig(low_res_scale=(0.8, 0.4)), FakeSurface())
