"""The person check (densepose.modeling.person_check, engine.person_check_train)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from densepose.engine.person_check_train import (
    BACKGROUND,
    FRAGMENT,
    JITTERED,
    PAIR,
    PAIR_IOU,
    SHIFTED,
    SMALL_PART,
    label_detections,
    made_up_boxes,
    read_render_images,
    roc_auc,
)
from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.ops.boxes import box_iou
from densepose.modeling.person_check import checked_scores, cut_by_bottom
from facing_data import facing_config


def test_a_sure_check_keeps_the_score_and_a_doubt_lowers_it():
    scores = torch.tensor([0.9, 0.9, 0.4, 0.8])
    p = torch.tensor([1.0, 0.25, 0.64, 0.0])
    torch.testing.assert_close(checked_scores(scores, p), torch.tensor([0.9, 0.45, 0.32, 0.0]))


def test_the_check_needs_the_facing_classifier():
    with pytest.raises(ValueError, match="facing_on"):
        DensePoseRCNN(tiny_config(person_check_on=True))


def _checked_model():
    torch.manual_seed(0)
    return DensePoseRCNN(facing_config(person_check_on=True)).eval()


def _sure(model: DensePoseRCNN, logit: float) -> None:
    _sure_head(model.person_check, logit)


def _sure_head(head: torch.nn.Module, logit: float) -> None:
    last = head.layers[-1]
    last.weight.data.zero_()
    last.bias.data.fill_(logit)


def test_the_model_scores_each_detection_by_its_check():
    model = _checked_model()
    image = torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        _sure(model, 20.0)  # sure it is a person: the detector's score stays
        person = model([image])[0]
        _sure(model, np.log(0.25 / 0.75))  # P = 0.25: the score is halved
        quarter = model([image])[0]
        model.cfg = replace(model.cfg, person_check_on=False)
        plain = model([image])[0]
    assert len(plain["boxes"]) > 0
    torch.testing.assert_close(person["boxes"], plain["boxes"])
    torch.testing.assert_close(person["scores"], plain["scores"])
    torch.testing.assert_close(quarter["scores"], plain["scores"] * 0.5)
    torch.testing.assert_close(quarter["fine_segm"], plain["fine_segm"])  # the maps do not change


def test_an_ensemble_check_scores_by_the_mean_probability_of_its_heads():
    from densepose.engine.export_graph import ExportPipeline

    model = _checked_model()
    plain_model = DensePoseRCNN(replace(model.cfg, person_check_on=False)).eval()
    plain_model.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("person_check.")})
    ensemble = DensePoseRCNN(replace(model.cfg, person_check_members=3)).eval()
    ensemble.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("person_check.")},
                             strict=False)
    for head, p in zip(ensemble.person_check.members, [0.9, 0.5, 0.1]):  # sure, unsure, doubtful: mean 0.5
        _sure_head(head, float(np.log(p / (1 - p))))
    image = torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        plain = plain_model([image])[0]
        checked = ensemble([image])[0]
        graph = dict(zip(ExportPipeline(ensemble).output_names, ExportPipeline(ensemble)(image.to(torch.uint8))))
        graph_plain = dict(zip(ExportPipeline(plain_model).output_names,
                               ExportPipeline(plain_model)(image.to(torch.uint8))))
    assert len(plain["boxes"]) > 0
    torch.testing.assert_close(checked["scores"], plain["scores"] * 0.5 ** 0.5)  # not the mean logit's 0.5
    torch.testing.assert_close(graph["scores"], graph_plain["scores"] * 0.5 ** 0.5, atol=1e-4, rtol=1e-4)


def test_a_model_file_names_how_many_heads_its_check_averages(tmp_path):
    from densepose.modeling.model_file import load_model_file

    model = DensePoseRCNN(replace(_checked_model().cfg, person_check_members=2))
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict(), "meta": {}}, tmp_path / "m.pt")
    assert len(load_model_file(tmp_path / "m.pt").person_check.members) == 2
    torch.save({"config": model.cfg.to_dict() | {"person_check_members": 0}, "model": model.state_dict(), "meta": {}},
               tmp_path / "zero.pt")
    with pytest.raises(UserError, match="person_check_members"):
        load_model_file(tmp_path / "zero.pt")


def test_the_predictor_drops_people_the_check_rejects():
    from densepose.api import Predictor

    model = _checked_model()
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    _sure(model, 20.0)
    kept = Predictor(model, "cpu", 0.01, None, None, "fp32")(image)
    _sure(model, -20.0)
    rejected = Predictor(model, "cpu", 0.01, None, None, "fp32")(image)
    assert len(kept) > 0 and len(rejected) == 0


def test_the_export_graph_checks_as_the_eager_model():
    from densepose.engine.export_graph import ExportPipeline

    model = _checked_model()
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    with torch.no_grad():
        model.person_check.layers[-1].bias.data.fill_(-1.0)
        eager = model([image.float()])[0]
        out = dict(zip(ExportPipeline(model).output_names, ExportPipeline(model)(image)))
    assert len(eager["scores"]) > 0
    torch.testing.assert_close(out["boxes"], eager["boxes"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["scores"], eager["scores"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("setting", [{"drop_covered_fraction": 0.5}, {"drop_wider_iou": 0.3}])
def test_the_export_graph_drops_repeated_boxes_as_the_eager_model(setting, monkeypatch):
    from densepose.engine.export_graph import ExportPipeline
    from densepose.modeling import covered_boxes

    monkeypatch.setattr(covered_boxes, "WIDER_AREA", 1.0)  # the untrained boxes are all of one size

    model = _checked_model()
    model.cfg = replace(model.cfg, detections_per_image=12)
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    with torch.no_grad():
        _sure(model, 20.0)
        model.box_head.cls_score.bias.data[1] += 1.0  # scores above 0.5: detections that may cover others
        all_rows = model([image.float()])[0]
        model.cfg = replace(model.cfg, **setting)
        eager = model([image.float()])[0]
        out = dict(zip(ExportPipeline(model).output_names, ExportPipeline(model)(image)))
    assert 0 < len(eager["scores"]) < len(all_rows["scores"])
    torch.testing.assert_close(out["boxes"], eager["boxes"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["scores"], eager["scores"], atol=1e-5, rtol=1e-5)


def test_repeated_boxes_lowered_not_dropped_by_the_eager_model_and_the_export_graph(monkeypatch):
    from densepose.engine.export_graph import ExportPipeline
    from densepose.modeling import covered_boxes

    monkeypatch.setattr(covered_boxes, "WIDER_AREA", 1.0)  # the untrained boxes are all of one size

    model = _checked_model()
    model.cfg = replace(model.cfg, detections_per_image=12, drop_wider_iou=0.3)
    image = (torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255).to(torch.uint8)
    with torch.no_grad():
        _sure(model, 20.0)
        model.box_head.cls_score.bias.data[1] += 1.0
        dropped = model([image.float()])[0]
        model.cfg = replace(model.cfg, repeated_score_fraction=0.3)
        lowered = model([image.float()])[0]
        out = dict(zip(ExportPipeline(model).output_names, ExportPipeline(model)(image)))
        shown = model([image.float()], score_thresh=0.5)[0]  # a user's threshold: the lowered rows are gone
    assert len(dropped["scores"]) < len(lowered["scores"])
    assert (lowered["scores"] < 0.3).sum() == len(lowered["scores"]) - len(dropped["scores"])
    torch.testing.assert_close(out["boxes"], lowered["boxes"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["scores"], lowered["scores"], atol=1e-5, rtol=1e-5)
    kept = dropped["scores"] >= 0.5
    torch.testing.assert_close(shown["boxes"], dropped["boxes"][kept])
    torch.testing.assert_close(shown["scores"], dropped["scores"][kept])


class _EveryOther(torch.nn.Module):
    """A stand-in person check: sure of the first, third, ... detection it is shown, rejecting the rest."""

    def forward(self, c4: torch.Tensor) -> torch.Tensor:
        logits = torch.full((c4.shape[0],), -20.0)
        logits[::2] = 20.0
        return logits


@pytest.mark.parametrize("extra_sizes", [(), (48,)])
def test_the_heads_run_only_on_the_detections_the_check_keeps(extra_sizes):
    model = _checked_model()
    model.cfg = replace(model.cfg, extra_test_sizes=extra_sizes)
    image = torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(1)) * 255
    rows = []
    model.dp_head.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].shape[0]))
    with torch.no_grad():
        model.cfg = replace(model.cfg, person_check_on=False)
        plain = model([image], score_thresh=0.01)[0]
        model.cfg = replace(model.cfg, person_check_on=True)
        model.person_check = _EveryOther()
        rows.clear()
        checked = model([image], score_thresh=0.01)[0]
    assert len(plain["scores"]) >= 2
    assert rows == [len(checked["scores"])] and len(checked["scores"]) == (len(plain["scores"]) + 1) // 2
    for key in ("boxes", "scores", "fine_segm", "u", "facing"):
        torch.testing.assert_close(checked[key], plain[key][::2], atol=1e-4, rtol=1e-4)


def test_detections_are_labelled_by_their_overlap_with_people_and_crowds():
    people = np.array([[0, 0, 20, 60]], np.float32)
    crowd = np.array([[100, 0, 200, 100]], np.float32)
    det = np.array([[0, 0, 20, 58],      # the person
                    [0, 0, 20, 40],      # IoU 0.67: a person
                    [0, 0, 20, 30],      # IoU 0.5: between the bounds, skipped
                    [0, 0, 20, 20],      # a fragment
                    [120, 10, 140, 60],  # inside the crowd region: skipped
                    [300, 0, 320, 60]], np.float32)
    assert label_detections(det, people, crowd).tolist() == [1, 1, -1, 0, -1, 0]
    assert label_detections(det[:1], np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)).tolist() == [0]


def test_made_up_boxes_are_people_fragments_and_background():
    people = np.array([[100, 50, 160, 250], [300, 60, 350, 240], [10, 10, 15, 30]], np.float32)
    boxes, labels, kinds = made_up_boxes(people, 400, 500, np.random.default_rng(0), min_height=40)
    iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(people)).amax(1)
    assert set(kinds.tolist()) <= {JITTERED, FRAGMENT, BACKGROUND, SHIFTED, SMALL_PART}  # no one side by side
    assert (labels == (kinds == JITTERED)).all()
    assert (iou[kinds == JITTERED] >= 0.7).all() and (iou[kinds == FRAGMENT] < 0.4).all()
    assert (iou[kinds == BACKGROUND] < 0.1).all()
    assert (kinds == JITTERED).sum() <= 2  # the 20-pixel person is too short for made-up boxes


def test_made_up_boxes_teach_pairs_shifted_boxes_and_small_parts_as_no_person():
    # Two walkers side by side, a third far to the right, a child half their height beside them.
    people = np.array([[100, 50, 150, 250], [160, 55, 212, 245], [400, 50, 450, 250], [215, 150, 240, 250]],
                      np.float32)
    seen = {PAIR: [], SHIFTED: [], SMALL_PART: []}
    for seed in range(20):
        boxes, labels, kinds = made_up_boxes(people, 400, 600, np.random.default_rng(seed), min_height=40)
        for kind in seen:
            assert (labels[kinds == kind] == 0).all()
            seen[kind] += boxes[kinds == kind].tolist()
    pairs = torch.tensor(seen[PAIR])
    assert len(pairs) > 0
    # A pair is the box around the two walkers side by side, never one with the far or the short person.
    torch.testing.assert_close(pairs, torch.tensor([[100.0, 50, 212, 250]]).expand(len(pairs), 4))
    assert (box_iou(pairs, torch.from_numpy(people)).amax(1) < PAIR_IOU).all()
    shifted = torch.tensor(seen[SHIFTED])
    iou = box_iou(shifted, torch.from_numpy(people)).amax(1)
    assert len(shifted) > 0 and (iou < 0.4).all() and (iou > 0.05).all()  # half on a person
    small = torch.tensor(seen[SMALL_PART])
    heights = small[:, 3] - small[:, 1]
    assert len(small) > 0 and (heights <= 0.15 * 200 * 1.27).all()  # 5-15 % of a person's height
    inside = [(people[:, 0] <= b[0] + 1e-3) & (people[:, 1] <= b[1] + 1e-3) & (people[:, 2] >= b[2] - 1e-3)
              & (people[:, 3] >= b[3] - 1e-3) for b in small.numpy()]
    assert all(row.any() for row in inside)  # on a person


def test_roc_auc():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert np.isnan(roc_auc(np.array([0.5]), np.array([1])))


def test_read_render_images(tmp_path):
    ann = {"images": [{"id": 3, "file_name": "a.jpg", "height": 100, "width": 100},
                      {"id": 4, "file_name": "b.jpg", "height": 100, "width": 100}],
           "annotations": [{"id": 1, "image_id": 3, "iscrowd": 0, "bbox": [1, 2, 10, 20]},
                           {"id": 2, "image_id": 3, "iscrowd": 1, "bbox": [50, 50, 10, 10]}]}
    (tmp_path / "annotations.json").write_text(json.dumps(ann))
    images = read_render_images([tmp_path], max_images=1)
    assert images.files == [tmp_path / "images" / "a.jpg"] and images.image_ids == [3]
    assert images.people[0].tolist() == [[1, 2, 11, 22]] and images.crowd[0].tolist() == [[50, 50, 60, 60]]
    with pytest.raises(UserError, match="annotations.json"):
        read_render_images([tmp_path / "images"])


@pytest.mark.slow
def test_train_person_check_writes_a_model_file_with_the_check(tmp_path):
    from PIL import Image

    from densepose.engine.person_check_train import train_person_check
    from densepose.modeling.model_file import load_model_file

    rng = np.random.default_rng(0)
    (tmp_path / "data" / "images").mkdir(parents=True)
    for i in range(1, 13):  # a bright "person" on a dark background
        pixels = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
        pixels[10:90, 30:60] = 230
        Image.fromarray(pixels).save(tmp_path / "data" / "images" / f"{i}.png")
    coco = {"images": [{"id": i, "file_name": f"{i}.png", "height": 96, "width": 96} for i in range(1, 13)],
            "annotations": [{"id": i, "image_id": i, "iscrowd": 0, "bbox": [30, 10, 30, 80]} for i in range(1, 13)]}
    (tmp_path / "data" / "annotations.json").write_text(json.dumps(coco))
    model = _checked_model()
    cfg = model.cfg.to_dict() | {"person_check_on": False}
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("person_check.")}
    start = tmp_path / "start.pt"
    torch.save({"config": cfg, "model": weights, "meta": {"source": "test"}}, start)
    no_facing = tmp_path / "no_facing.pt"
    torch.save({"config": cfg | {"facing_on": False},
                "model": {k: v for k, v in weights.items() if not k.startswith(("facing.", "facing_chart_ratio"))},
                "meta": {}}, no_facing)
    with pytest.raises(UserError, match="train-facing"):
        train_person_check(no_facing, [tmp_path / "data"], tmp_path / "out.pt")
    lines = []
    meta = train_person_check(start, [tmp_path / "data"], tmp_path / "out.pt", epochs=20, log=lines.append)
    assert meta["person_check"]["images"] == 12 and any("ROC AUC" in line for line in lines)
    assert list(meta["person_check"]["held_out_auc"]) == [str(tmp_path / "data")]
    trained = load_model_file(tmp_path / "out.pt")
    assert trained.cfg.person_check_on and trained.cfg.default_min_score == model.cfg.default_min_score
    for name, value in weights.items():  # nothing but the check changes
        assert torch.equal(trained.state_dict()[name], value), name
    losses = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("epoch")]
    assert len(losses) == 20 and losses[-1] < losses[0] - 0.1  # it learns (the tiny model's trunk is random)
    assert not torch.equal(trained.person_check.layers[-1].weight, model.person_check.layers[-1].weight)
    two = train_person_check(start, [tmp_path / "data"], tmp_path / "two.pt", epochs=2, members=2, log=lines.append)
    pair = load_model_file(tmp_path / "two.pt").person_check.members
    assert two["person_check"]["members"] == 2 and len(pair) == 2
    assert not torch.equal(pair[0].layers[-1].weight, pair[1].layers[-1].weight)  # each from its own seed


def test_the_check_doubts_a_portrait_cut_by_the_bottom_edge_but_does_not_veto_it():
    # a half-length portrait; a box above the bottom edge; a small box on the bottom edge
    boxes = torch.tensor([[0.0, 10.0, 50.0, 99.0], [0.0, 10.0, 50.0, 80.0], [0.0, 70.0, 20.0, 100.0]])
    cut = cut_by_bottom(boxes, 100)
    assert cut.tolist() == [True, False, False]
    torch.testing.assert_close(checked_scores(torch.full((3,), 0.8), torch.full((3,), 0.25), cut),
                               torch.tensor([0.8 * 0.5 ** 0.5, 0.4, 0.4]))
    # a portrait the check believes keeps its own probability
    torch.testing.assert_close(checked_scores(torch.tensor([0.8]), torch.tensor([0.81]), cut[:1]), torch.tensor([0.72]))
