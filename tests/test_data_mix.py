"""`python -m densepose.data.mix`: dataset folders joined, small sets repeated, files linked."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from densepose.data.mix import main, parse_input
from densepose.errors import UserError


def _folder(root, names, people_per_image, licence=None):
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i, name in enumerate(names, start=1):
        Image.new("RGB", (32, 24), (i * 40, 0, 0)).save(root / "images" / name)
        images.append({"id": i * 10, "file_name": name, "width": 32, "height": 24, **({"license": 7} if licence else {})})
        for _ in range(people_per_image):
            anns.append({"id": len(anns) + 1, "image_id": i * 10, "category_id": 1, "bbox": [1, 2, 5, 9],
                         "area": 45, "iscrowd": 0})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    if licence:
        coco["licenses"] = [{"id": 7, "name": licence}]
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_two_folders_with_a_repeat(tmp_path, capsys):
    a = _folder(tmp_path / "synth", ["00000000.jpg", "00000001.jpg"], 2)
    b = _folder(tmp_path / "real", ["00000000.jpg"], 3, licence="CC0")  # same name as in a: no clash
    out = tmp_path / "mix"
    assert main([str(a), f"{b}:3", "--out", str(out)]) == 0
    assert "3 images, 5 entries with repeats, 13 annotations" in capsys.readouterr().out
    coco = json.loads((out / "annotations.json").read_text())
    names = [im["file_name"] for im in coco["images"]]
    assert names == ["0_00000000.jpg", "0_00000001.jpg"] + ["1_00000000.jpg"] * 3
    assert len({im["id"] for im in coco["images"]}) == 5 and len({a["id"] for a in coco["annotations"]}) == 13
    per_image = {}
    for ann in coco["annotations"]:
        per_image[ann["image_id"]] = per_image.get(ann["image_id"], 0) + 1
    assert [per_image[im["id"]] for im in coco["images"]] == [2, 2, 3, 3, 3]
    assert coco["licenses"] == [{"id": 1, "name": "CC0"}] and coco["images"][-1]["license"] == 1
    assert (out / "images" / "1_00000000.jpg").samefile(b / "images" / "00000000.jpg")


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(UserError, match="repeat count"):
        parse_input("folder:0")
    with pytest.raises(UserError, match="whole number"):
        parse_input("folder:x")
    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "mix")]) == 2
    assert "annotations.json: not found" in capsys.readouterr().err
    assert not (tmp_path / "mix").exists()


@pytest.mark.parametrize("content, message", [
    (b"{\"images\": [", "not valid JSON"),
    ('{"images": [], "name": "Müller"}'.encode("latin-1"), "not UTF-8 text"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
], ids=["cut", "latin-1", "deep"])
def test_a_bad_annotation_file_is_a_one_line_error(tmp_path, capsys, content, message):
    """Every way a folder's annotations.json can be unreadable ends in one line naming it, not a traceback."""
    folder = _folder(tmp_path / "synth", ["00000000.jpg"], 1)
    (folder / "annotations.json").write_bytes(content)
    assert main([str(folder), "--out", str(tmp_path / "mix")]) == 2
    err = capsys.readouterr().err
    assert "annotations.json: " in err and message in err and "Traceback" not in err
    assert not (tmp_path / "mix").exists()
