"""The DensePose head reading grown boxes (ModelConfig.dp_margin_x / dp_margin_y): maps beyond the detection box."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.modeling import DensePoseRCNN, tiny_config
from densepose.modeling.ops import clip_boxes, grow_boxes


def test_grow_boxes_adds_a_share_of_width_and_height_on_each_side():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    torch.testing.assert_close(grow_boxes(boxes, 0.1, 0.05), torch.tensor([[8.0, 18.0, 32.0, 62.0]]))
    torch.testing.assert_close(grow_boxes(boxes, 0.0, 0.0), boxes)


def _model(margin_x=0.0, margin_y=0.0):
    torch.manual_seed(0)
    cfg = tiny_config(score_thresh_test=0.0, detections_per_image=6, dp_margin_x=margin_x, dp_margin_y=margin_y)
    return DensePoseRCNN(cfg).eval()


def _image():
    return torch.rand(3, 120, 160, generator=torch.Generator().manual_seed(3)) * 255


def test_the_model_reads_grown_boxes_and_says_so():
    image = _image()
    with torch.no_grad():
        plain = _model()([image])[0]
        grown = _model(0.2, 0.1)([image])[0]
    assert "dp_boxes" not in plain and len(plain["boxes"]) > 0
    torch.testing.assert_close(grown["boxes"], plain["boxes"])  # detections unchanged
    torch.testing.assert_close(grown["scores"], plain["scores"])
    want = clip_boxes(grow_boxes(plain["boxes"], 0.2, 0.1), 120, 160)
    torch.testing.assert_close(grown["dp_boxes"], want, atol=1e-3, rtol=1e-4)
    assert (grown["dp_boxes"][:, 2] - grown["dp_boxes"][:, 0] > plain["boxes"][:, 2] - plain["boxes"][:, 0]).any()
    assert not torch.allclose(grown["fine_segm"], plain["fine_segm"])  # the head read other regions


def test_people_carry_maps_over_the_grown_box_and_results_files_say_where():
    from densepose.evaluation.results import parse_results
    from densepose.predict import coco_records, npz_bytes
    from densepose.predict.predictor import Predictor

    array = (_image().permute(1, 2, 0)).to(torch.uint8).numpy()
    people = Predictor(_model(0.2, 0.1), min_score=0.0, precision="fp32")(array)
    assert len(people) > 0
    for p in people:
        x0, y0, x1, y1 = p.map_box
        assert p.origin == (int(x0), int(y0)) and p.labels.shape == (int(y1 - y0), int(x1 - x0))
        assert x0 <= p.box[0] and y0 <= p.box[1] and x1 >= p.box[2] and y1 >= p.box[3]
    records = coco_records(list(people), image_id=1)
    parse_results(json.loads(json.dumps(records)))  # the evaluator takes the IUV over the map box
    np.testing.assert_allclose(records[0]["bbox"][:2], people[0].map_box[:2], rtol=1e-6)
    np.testing.assert_allclose(records[0]["detection_bbox"][:2], people[0].box[:2], rtol=1e-6)
    back, _ = read_npz_bytes(npz_bytes(list(people), *array.shape[:2], "x.png"))
    np.testing.assert_array_equal(back[0].map_box, people[0].map_box)
    plain = Predictor(_model(), min_score=0.0, precision="fp32")(array)
    assert plain[0].map_box is None and "detection_bbox" not in coco_records(list(plain), 1)[0]
    assert read_npz_bytes(npz_bytes(list(plain), *array.shape[:2], "x.png"))[0][0].map_box is None


def read_npz_bytes(data: bytes):
    import tempfile
    from pathlib import Path

    from densepose.predict import read_npz

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.npz"
        path.write_bytes(data)
        return read_npz(path)


def test_the_export_graph_gives_the_map_boxes():
    from densepose.engine.export_graph import ExportPipeline

    model = _model(0.2, 0.1)
    image = _image().to(torch.uint8)
    with torch.no_grad():
        eager = model([image.float()])[0]
        pipeline = ExportPipeline(model)
        out = dict(zip(pipeline.output_names, pipeline(image)))
    assert pipeline.output_names[-1] == "map_boxes" and "map_boxes" not in ExportPipeline(_model()).output_names
    torch.testing.assert_close(out["boxes"], eager["boxes"], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(out["map_boxes"], eager["dp_boxes"], atol=1e-3, rtol=1e-4)


def test_model_files_check_the_margins():
    from densepose.modeling.model_file import model_config_from_dict

    base = dict(vars(tiny_config()))
    assert model_config_from_dict({**base, "dp_margin_x": 0.1}, "f").dp_margin_x == 0.1
    with pytest.raises(UserError, match="dp_margin_y"):
        model_config_from_dict({**base, "dp_margin_y": 2.0}, "f")


def test_box_ap_reads_the_detection_box_when_the_results_carry_it():
    pytest.importorskip("pycocotools")
    from collections import Counter

    from densepose.data.coco import parse_coco
    from densepose.evaluation.coco_ap import coco_ap
    from densepose.evaluation.results import parse_results

    gt = parse_coco({"images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "person"}],
                     "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                                      "bbox": [50, 40, 40, 100], "area": 4000}]})
    grown = {"image_id": 1, "category_id": 1, "bbox": [38, 30, 64, 120], "score": 0.9}
    plain_ap = coco_ap(gt, parse_results([grown]), Counter())["bbox"]["AP75"]
    with_det = coco_ap(gt, parse_results([{**grown, "detection_bbox": [50, 40, 40, 100]}]), Counter())["bbox"]["AP75"]
    assert plain_ap == 0.0 and with_det == pytest.approx(1.0)
    with pytest.raises(UserError, match="detection_bbox"):
        parse_results([{**grown, "detection_bbox": [1, 2, 3]}])


def test_a_torchscript_file_of_a_model_with_margins_and_covered_boxes_matches_the_eager_model(tmp_path):
    from densepose.engine.export_graph import export_graph

    model = _model(0.2, 0.1)
    model.cfg = replace(model.cfg, drop_covered_fraction=0.5)
    image = _image()
    export_graph(model, tmp_path / "m.ts", "torchscript", example=image)
    graph = torch.jit.load(str(tmp_path / "m.ts"))
    for img in (image, torch.rand(3, 90, 140, generator=torch.Generator().manual_seed(4)) * 255):
        with torch.no_grad():
            out = dict(zip(["boxes", "scores", "labels", "u", "v", "map_boxes"], graph(img)))
            eager = model([img])[0]
        assert len(eager["boxes"]) > 0
        torch.testing.assert_close(out["boxes"], eager["boxes"], atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(out["map_boxes"], eager["dp_boxes"], atol=1e-3, rtol=1e-4)
