"""The one reader of `densepose synth` folders that every trainer shares."""
import json

import numpy as np
import pytest

from densepose.data.synth_folders import read_synth_folders
from densepose.engine.facing_train import read_people
from densepose.engine.keypoints_train import read_keypoint_people
from densepose.engine.person_check_train import read_render_images
from densepose.engine.skeleton_prior_fit import _boxes_by_image
from densepose.errors import UserError

READERS = {
    "facing": lambda folder: read_people([folder]),
    "keypoints": lambda folder: read_keypoint_people([folder]),
    "person check": lambda folder: read_render_images([folder]),
    "skeleton prior": lambda folder: _boxes_by_image(folder),
}


def _person(image_id: int, bbox: list, **extra) -> dict:
    keypoints = [50.0, 60.0, 2.0] * 17
    return {"image_id": image_id, "bbox": bbox, "keypoints": keypoints, "dp_I": [1.0, 2.0, 2.0, 2.0],
            "dp_x": [10.0, 100.0, 150.0, 200.0], **extra}


def _folder(tmp_path, annotations: list[dict], images=({"id": 1, "file_name": "a.png"},
                                                        {"id": 2, "file_name": "b.png"})):
    folder = tmp_path / "synth"
    folder.mkdir(exist_ok=True)
    (folder / "annotations.json").write_text(json.dumps({"images": list(images), "annotations": annotations}))
    return folder


def test_people_keep_their_image_box_and_order(tmp_path):
    folder = _folder(tmp_path, [_person(2, [10, 20, 30, 40]), _person(1, [0, 0, 5, 50], iscrowd=1),
                                _person(2, [1, 2, 3, 4])])
    renders = read_synth_folders([folder])
    assert [f.name for f in renders.files] == ["a.png", "b.png"] and renders.image_ids == [1, 2]
    assert [(p.image, p.box, p.crowd) for p in renders.people] == [
        (1, (10, 20, 40, 60), False), (0, (0, 0, 5, 50), True), (1, (1, 2, 4, 6), False)]
    assert _boxes_by_image(folder) == {"b": [(10, 20, 40, 60), (1, 2, 4, 6)], "a": [(0, 0, 5, 50)]}
    images = read_render_images([folder])
    np.testing.assert_array_equal(images.people[1], [[10, 20, 40, 60], [1, 2, 4, 6]])
    np.testing.assert_array_equal(images.crowd[0], [[0, 0, 5, 50]])
    people = read_keypoint_people([folder], min_height=10)  # the crowd region and the 4-pixel person left out
    np.testing.assert_array_equal(people.boxes, [[10, 20, 40, 60]])
    assert people.image.tolist() == [1] and people.image_ids.tolist() == [2]


def test_max_images_keeps_the_first_images_and_their_people(tmp_path):
    folder = _folder(tmp_path, [_person(2, [10, 20, 30, 40]), _person(1, [0, 0, 5, 50])])
    renders = read_synth_folders([folder], max_images=1)
    assert renders.image_ids == [1] and [p.box for p in renders.people] == [(0, 0, 5, 50)]
    folder = _folder(tmp_path, [_person(2, [10, 20, 30, 40]), _person(7, [0, 0, 5, 50])])
    with pytest.raises(UserError, match=r"not the annotations .*KeyError"):  # a missing image, even past max_images
        read_synth_folders([folder], max_images=1)


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("annotations, message", [
    ([_person(7, [10, 20, 30, 40])], r"annotations.json: not the annotations of a `densepose synth` folder \(KeyError"),
    ([_person(1, [10, 20, 30])], r"annotations.json: not the annotations of a `densepose synth` folder \(ValueError"),
    ([_person(1, [10, "x", 30, 40])], r"annotations.json: not the annotations of a `densepose synth` folder"),
    ([_person(1, [10, float("nan"), 30, 40])], r"annotations.json: not the annotations .* not finite"),
])
def test_every_trainer_reads_a_malformed_folder_as_the_same_one_line_error(tmp_path, reader, annotations, message):
    """Before one reader served them all, an annotation naming a missing image crashed `train-facing`
    with a KeyError and was dropped in silence by `train-person-check`, and a NaN box went through."""
    with pytest.raises(UserError, match=message):
        READERS[reader](_folder(tmp_path, annotations))


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_trainer_names_a_folder_without_annotations(tmp_path, reader):
    with pytest.raises(UserError, match="no annotations.json"):
        READERS[reader](tmp_path)
    (tmp_path / "annotations.json").write_bytes(b'{"images": [')
    with pytest.raises(UserError, match="annotations.json: not valid JSON"):
        READERS[reader](tmp_path)
