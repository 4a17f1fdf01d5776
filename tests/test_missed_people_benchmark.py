"""benchmarks/missed_people.py: which annotated people the detections miss, and their traits."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # it imports real_photos as the script does
_spec = importlib.util.spec_from_file_location("missed_people", REPO / "benchmarks" / "missed_people.py")
missed_people = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(missed_people)


def _person(image_id: int, bbox: list[float], area: float, joints: int = 17) -> dict:
    return {"image_id": image_id, "bbox": bbox, "area": area, "num_keypoints": joints, "dp_x": [1.0]}


def _annotations() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 200},
                   {"id": 2, "file_name": "b.png", "width": 200, "height": 200}],
        "annotations": [
            _person(1, [10, 10, 40, 120], 3000),  # found
            _person(1, [100, 20, 40, 120], 3000),  # a detection half on them: a near miss
            _person(2, [20, 150, 90, 30], 500, joints=4),  # lying, under 64 px, sparse, few joints: missed
            {"image_id": 2, "bbox": [150, 10, 40, 100], "area": 4000, "num_keypoints": 17},  # no dp: not scored
            {"image_id": 2, "bbox": [0, 0, 60, 60], "area": 3600, "iscrowd": 1},
        ],
    }


def test_people_are_matched_as_coco_does_and_the_missed_described():
    results = [
        {"image_id": 1, "bbox": [8, 8, 44, 126], "score": 0.9},
        # the grown maps box (bbox) would cover the second person; the detector's own box does not
        {"image_id": 1, "bbox": [95, 15, 60, 140], "detection_bbox": [100, 20, 40, 50], "score": 0.8,
         "detection_score": 0.8},
        {"image_id": 1, "bbox": [100, 20, 40, 120], "score": 0.2},  # under --min-score
        {"image_id": 2, "bbox": [150, 10, 40, 100], "score": 0.9},  # the person without dp
    ]
    rows = missed_people.person_rows(_annotations(), results, min_score=0.3)
    assert [r["found"] for r in rows] == [True, False, False]
    assert rows[1]["best_iou"] == pytest.approx(50 / 120) and rows[1]["near miss"]
    third = rows[2]
    assert third["best_iou"] == 0 and not third["near miss"]
    assert third["lying"] and third["under 64 px"] and third["sparse"] and third["few joints"]
    assert not any(rows[0][t] for t in missed_people.TRAITS)
    s = missed_people.summarise(rows)
    assert (s["people"], s["missed"]) == (3, 2)
    assert s["traits"]["near miss"] == {"missed": 0.5, "found": 0.0}
    assert s["traits"]["lying"] == {"missed": 0.5, "found": 0.0}
    # A lower threshold keeps the third detection, which finds the second person.
    assert [r["found"] for r in missed_people.person_rows(_annotations(), results, 0.1)] == [True, True, False]


def test_the_script_writes_the_summary_and_a_sheet_of_the_missed(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((200, 200, 3), 90, dtype=np.uint8)).save(tmp_path / "images" / name)
    (tmp_path / "annotations.json").write_text(json.dumps(_annotations()))
    (tmp_path / "P.json").write_text(json.dumps([{"image_id": 1, "bbox": [8, 8, 44, 126], "score": 0.9}]))
    sheet = tmp_path / "missed.png"
    assert missed_people.main(["--data", str(tmp_path), "--results", str(tmp_path / "P.json"),
                               "--pictures", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "3 people with DensePose points, 2 missed (0.67)" in out and "lying" in out
    assert Image.open(sheet).size == (2 * missed_people.TILE[0], missed_people.TILE[1])
    with pytest.raises(SystemExit, match="not found"):
        missed_people.main(["--data", str(tmp_path), "--results", str(tmp_path / "none.json")])


def _stage_model(extra_sizes: tuple[int, ...]):
    """A small untrained model with a person check that is sure of every box, scores above 0.5."""
    from dataclasses import replace

    import torch
    from facing_data import facing_config

    from densepose.modeling import DensePoseRCNN

    torch.manual_seed(0)
    model = DensePoseRCNN(facing_config(person_check_on=True)).eval()
    model.cfg = replace(model.cfg, extra_test_sizes=extra_sizes, detections_per_image=12)
    last = model.person_check.layers[-1]
    last.weight.data.zero_()
    last.bias.data.fill_(20.0)
    model.box_head.cls_score.bias.data[1] += 1.0
    return model


@pytest.mark.parametrize("extra_sizes", [(), (48,)])
def test_stages_say_where_each_person_was_lost(extra_sizes, monkeypatch):
    """People placed on the model's own detections pass every stage (what is left for a missed
    person is "taken by another": a kept box went to someone else); with the check rejecting every box they are lost at the check, with a repeat rule (the wider-box
    rule at any area) some of them there; a person where no box ever was is never boxed."""
    from dataclasses import replace

    import torch

    from densepose.modeling import covered_boxes

    model = _stage_model(extra_sizes)
    image = torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(2)) * 255
    with torch.no_grad():
        kept = model([image], score_thresh=0.3)[0]
    boxes = kept["boxes"].numpy()
    assert len(boxes) > 1
    nowhere = np.array([[-500.0, -500.0, -490.0, -480.0]])  # off the image: no box overlaps it
    people = np.concatenate([boxes, nowhere])
    stages = missed_people.lost_at(model, image, people, 0.3)
    assert stages == ["taken by another"] * len(boxes) + ["never boxed"]

    model.person_check.layers[-1].bias.data.fill_(-20.0)  # P(person) ~ 0: every checked score ~ 0
    assert missed_people.lost_at(model, image, boxes, 0.3) == ["person check"] * len(boxes)

    model.person_check.layers[-1].bias.data.fill_(20.0)
    monkeypatch.setattr(covered_boxes, "WIDER_AREA", 1.0)  # the untrained boxes are all of one size
    model.cfg = replace(model.cfg, drop_wider_iou=0.3)
    with torch.no_grad():
        left = model([image], score_thresh=0.3)[0]["boxes"]
    assert 0 < len(left) < len(boxes)
    stages = missed_people.lost_at(model, image, boxes, 0.3)
    assert stages.count("repeat rules") == len(boxes) - len(left)
    assert set(stages) == {"repeat rules", "taken by another"}


def test_the_sheet_labels_each_person_with_where_they_were_lost(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((200, 200, 3), 90, dtype=np.uint8)).save(tmp_path / "a.png")
    annotations = {"images": [{"id": 1, "file_name": "a.png"}]}
    row = {"image_id": 1, "bbox": [10, 10, 40, 120], "found": False, "best_iou": 0.0}
    plain = np.asarray(missed_people.sheet([row], annotations, tmp_path, 1))
    staged = np.asarray(missed_people.sheet([{**row, "lost at": "never boxed"}], annotations, tmp_path, 1))
    bottom = slice(missed_people.TILE[1] - 14, None)
    assert (plain[bottom] == 90).all() and (staged[bottom] != plain[bottom]).any()
    assert (staged[:14] == plain[:14]).all()  # the height and IoU label as before
