"""DensePose-COCO loading: validation errors name the file and record; targets follow the contract."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from densepose.data.coco import annotation_to_target, image_target, load_coco, parse_coco
from densepose.data.rle import decode_dp_masks
from densepose.errors import UserError
from test_data_dataset import make_person


def _data(n_points=5):
    rng = np.random.default_rng(1)
    ann = make_person(rng, 7, 1, 60, 80, n_points)
    return {"images": [{"id": 1, "file_name": "a.png", "height": 60, "width": 80}], "annotations": [ann],
            "categories": [{"id": 1, "name": "person"}]}


def test_load_and_index(tmp_path):
    data = _data()
    data["images"].append({"id": 5, "file_name": "b.png", "height": 10, "width": 10})
    data["annotations"].append({"id": 8, "image_id": 5, "bbox": [0, 0, 3, 4]})  # no DensePose: allowed
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    coco = load_coco(path)
    assert coco.image_ids == [1, 5] and len(coco) == 2 and coco.num_people() == 2
    assert [a["id"] for a in coco.annotations[5]] == [8]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.pop("bbox"), "missing 'bbox'"),
        (lambda a: a.update(dp_U=a["dp_U"][:-1]), "dp_U has 4 values but dp_x has 5"),
        (lambda a: a.pop("dp_V"), "not dp_V"),
        (lambda a: a["dp_I"].__setitem__(0, 25.0), r"dp_I must be integers in 1\.\.24"),
        (lambda a: a["dp_I"].__setitem__(0, 0.0), r"dp_I must be integers in 1\.\.24"),
        (lambda a: a["dp_V"].__setitem__(1, 1.5), r"dp_V must be in \[0, 1\]"),
        (lambda a: a["dp_U"].__setitem__(1, float("nan")), "dp_U contains NaN"),
        (lambda a: a["dp_x"].__setitem__(1, None), "dp_x contains NaN"),
        (lambda a: a.update(dp_masks=a["dp_masks"][:13]), "dp_masks must be a list of 14 entries, got 13"),
        (lambda a: a.update(keypoints=[1, 2, 3]), "keypoints must be 51"),
        (lambda a: a.update(bbox=[0, 0, -1, 3]), "bbox must be 4 finite"),
        (lambda a: a.update(image_id=99), "image_id 99 is not in 'images'"),
    ],
)
def test_validation_errors(tmp_path, edit, message):
    data = _data()
    edit(data["annotations"][0])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=message) as exc:
        load_coco(path)
    assert str(path) in str(exc.value) and "id 7" in str(exc.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_coco(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(UserError, match="x.json: not valid JSON"):
        load_coco(tmp_path / "x.json")
    with pytest.raises(UserError, match="missing 'width'"):
        parse_coco({"images": [{"id": 1, "file_name": "a", "height": 3}], "annotations": []}, "f.json")


def test_targets():
    data = _data()
    ann = data["annotations"][0]
    t = annotation_to_target(ann, 60, 80, with_mask=True)
    x, y, w, h = ann["bbox"]
    assert torch.allclose(t["box"], torch.tensor([x, y, x + w, y + h]))
    assert t["keypoints"].shape == (17, 3) and t["mask"].shape == (60, 80)
    dp = t["dp"]
    assert dp["I"].dtype == torch.int64 and dp["I"].tolist() == [int(i) for i in ann["dp_I"]]
    assert torch.allclose(dp["U"], torch.tensor(ann["dp_U"])) and dp["x"].shape == (5,)
    assert np.array_equal(dp["mask"].numpy(), decode_dp_masks(ann["dp_masks"]))
    crowd = copy.deepcopy(ann)
    crowd["iscrowd"] = 1
    target = image_target([ann, crowd], 60, 80)
    assert target["boxes"].shape == (1, 4) and len(target["dp"]) == 1
