"""The flip test (`densepose.modeling.flip_test`): the DensePose head on the mirrored image too, averaged."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.flip_test import flip_tables, mirror_boxes, mirror_images, unmirror_outputs
from densepose.predict.predictor import Predictor
from densepose.surface.parts import CHART_FLIP


def _quantising_tables(size: int = 256) -> torch.Tensor:
    """Tables that take every chart's (U, V) to the same cell of its mirror chart: applied twice
    they give the cell's (U, V) back, so the flip test must answer alike for an image and its mirror."""
    cell = (torch.arange(size, dtype=torch.float32) + 0.5).div(size - 1).clamp(max=1)
    u = cell[None, :].expand(size, size)
    v = cell[:, None].expand(size, size)
    return torch.stack([u, v], dim=-1)[None].expand(24, size, size, 2).clone()


def test_mirror_images_mirrors_each_image_inside_its_own_size():
    images = torch.zeros(2, 3, 4, 6)
    images[0, :, :4, :6] = torch.arange(24.0).reshape(4, 6)
    images[1, :, :3, :5] = torch.arange(15.0).reshape(3, 5) + 100  # padded to 4 x 6
    out = mirror_images(images, [(4, 6), (3, 5)])
    torch.testing.assert_close(out[0], images[0].flip(-1))
    torch.testing.assert_close(out[1, :, :3, :5], images[1, :, :3, :5].flip(-1))
    assert (out[1, :, 3] == 0).all() and (out[1, :, :, 5] == 0).all()  # the padding stays where it was
    torch.testing.assert_close(mirror_images(out, [(4, 6), (3, 5)]), images)


def test_a_mirrored_box_holds_the_mirrored_pixels():
    image = torch.rand(1, 20, 30, generator=torch.Generator().manual_seed(0))
    box = torch.tensor([[3.0, 4.0, 11.0, 15.0]])
    (x0, y0, x1, y1), = mirror_boxes(box, 30).long().tolist()
    torch.testing.assert_close(image.flip(-1)[:, y0:y1, x0:x1], image[:, 4:15, 3:11].flip(-1))
    torch.testing.assert_close(mirror_boxes(mirror_boxes(box, 30), 30), box)


def test_unmirror_reverses_columns_takes_each_chart_from_its_mirror_chart_and_carries_uv():
    g = torch.Generator().manual_seed(1)
    k, s, t = 2, 5, 8
    out = {"coarse_segm": torch.randn(k, 2, s, s, generator=g), "fine_segm": torch.randn(k, 25, s, s, generator=g),
           "u": torch.rand(k, 25, s, s, generator=g), "v": torch.rand(k, 25, s, s, generator=g)}
    tables = torch.rand(24, t, t, 2, generator=g)
    back = unmirror_outputs(out, tables)
    torch.testing.assert_close(back["coarse_segm"], out["coarse_segm"].flip(-1))
    for n in range(k):
        for c in range(25):
            p = int(CHART_FLIP[c])
            torch.testing.assert_close(back["fine_segm"][n, c], out["fine_segm"][n, p].flip(-1))
            for y in range(s):
                for x in range(s):
                    u, v = float(out["u"][n, p, y, s - 1 - x]), float(out["v"][n, p, y, s - 1 - x])
                    want = (u, v) if c == 0 else tuple(tables[p - 1, int(v * (t - 1)), int(u * (t - 1))].tolist())
                    got = (float(back["u"][n, c, y, x]), float(back["v"][n, c, y, x]))
                    assert got == pytest.approx(want), (n, c, y, x)


def _model(**overrides) -> DensePoseRCNN:
    torch.manual_seed(0)
    return DensePoseRCNN(tiny_config(score_thresh_test=0.0, **overrides)).eval()


@pytest.mark.parametrize("flip", [True, False])
def test_the_flip_test_answers_alike_for_an_image_and_its_mirror(flip):
    """With the flip test, the maps of a box equal the unmirrored maps of the mirrored box in the
    mirrored image (both average the same two passes); without it a model is not mirror-symmetric."""
    # The cascade reads mask and keypoint features of the mirrored detection boxes, the DensePose
    # head the mirrored grown boxes.
    model = _model(mask_on=True, keypoint_on=True, cascade=True, dp_margin_x=0.1, dp_margin_y=0.05)
    with torch.no_grad():  # U, V inside [0, 1], as a trained head gives them (the tables read them clamped)
        for layer in (model.dp_predictor2.u_lowres, model.dp_predictor2.v_lowres):
            layer.weight.mul_(1e-3)
            layer.bias.fill_(0.5)
    image = torch.rand(3, 128, 160, generator=torch.Generator().manual_seed(2)) * 255
    tables = _quantising_tables() if flip else None
    boxes = torch.tensor([[10.0, 20.0, 60.0, 90.0], [50.0, 5.0, 120.0, 80.0]])
    scores = torch.tensor([0.9, 0.8])
    answers = []
    with torch.no_grad():
        for pixels, b in ((image, boxes), (image.flip(-1), mirror_boxes(boxes, 160))):
            batch = model.transform([pixels], None)
            assert batch.sizes == [(128, 160)]  # 128 px is the tiny model's test size: no resize
            answers.append(model._heads(model.backbone(batch.tensor), [(b, scores)], batch.tensor, batch.sizes,
                                        None, tables)[0])
    direct, mirrored = answers
    back = unmirror_outputs(mirrored, _quantising_tables())
    same_segm = all(torch.allclose(back[key], direct[key], atol=1e-4) for key in ("coarse_segm", "fine_segm"))
    assert same_segm == flip
    if flip:  # each (U, V) went through the tables once more: one cell of them at most
        for key in ("u", "v"):
            assert (back[key][:, 1:] - direct[key][:, 1:]).abs().max() <= 1 / 255 + 1e-5


def test_predictor_flip_changes_the_maps_and_keeps_the_people():
    image = (np.random.default_rng(3).random((96, 128, 3)) * 255).astype(np.uint8)
    model = _model()
    model.chart = "anny"
    plain = Predictor(model, min_score=0.0, precision="fp32").forward([torch.from_numpy(image).permute(2, 0, 1).float()])[0]
    predictor = Predictor(model, min_score=0.0, precision="fp32", flip=True)
    assert predictor.flip_uv.shape == (24, 256, 256, 2)
    flipped = predictor.forward([predictor.to_tensor(image)])[0]
    assert len(plain["boxes"]) > 0
    torch.testing.assert_close(flipped["boxes"], plain["boxes"])
    torch.testing.assert_close(flipped["scores"], plain["scores"])
    assert not torch.allclose(flipped["fine_segm"], plain["fine_segm"])
    assert len(predictor(image)) == len(plain["boxes"])


def test_flip_needs_a_model_and_a_chart_that_have_it():
    class NoFlip(torch.nn.Module):
        def forward(self, images, min_size=None, max_size=None, score_thresh=None):
            return []

    with pytest.raises(UserError, match="has no flip test"):
        Predictor(NoFlip(), flip=True)
    with pytest.raises(UserError, match="symmetry tables of the 'smpl' chart"):
        flip_tables("smpl")
