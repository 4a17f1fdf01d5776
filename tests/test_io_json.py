"""`densepose.io.json_files.read_json`: the one reader of JSON files, with one-line errors."""
from __future__ import annotations

import pytest

from densepose.errors import UserError
from densepose.io.json_files import read_json


def test_reads_json_and_names_the_file_in_every_error(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"images": [1, 2]}')
    assert read_json(good) == {"images": [1, 2]}
    cases = {
        "missing.json": (None, "missing.json: results file not found"),
        "cut.json": (b'{"images": [1,', "cut.json: not valid JSON (Expecting value, line 1"),
        "latin1.json": ('{"name": "Müller"}'.encode("latin-1"), "latin1.json: not UTF-8 text, so not a results file"),
        "deep.json": (b"[" * 100000 + b"]" * 100000, "deep.json: JSON nested too deeply to be a results file"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(UserError) as info:
            read_json(path, "results file")
        assert str(info.value).startswith(str(tmp_path / message.split(":")[0])) and message.split(": ", 1)[1] in str(info.value)


def test_training_the_classifiers_on_a_corrupt_folder_is_a_one_line_error(tmp_path):
    """`train-facing` and `train-person-check` read their folders' annotations through `read_json`."""
    from densepose.engine.facing_train import read_people
    from densepose.engine.person_check_train import read_render_images

    (tmp_path / "annotations.json").write_bytes(b'{"images": [')
    for read in (read_people, read_render_images):
        with pytest.raises(UserError, match="annotations.json: not valid JSON"):
            read([tmp_path])


def test_the_article_fits_the_kind_of_file(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 100000 + b"]" * 100000)
    with pytest.raises(UserError, match="to be an annotation file$"):
        read_json(path, "annotation file")
