"""Pseudo-labelled pedestrians by background subtraction (`python -m densepose.data.pseudo_labels`)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from densepose.data.pseudo_labels import (
    BlobRules,
    label_blobs,
    main,
    paint_uncertain,
    parse_frame_range,
    person_boxes,
)
from densepose.errors import UserError

H, W = 120, 320


def _background() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.zeros((H, W, 3), np.uint8)
    base[:] = (90, 140, 80)
    return np.clip(base + rng.integers(-10, 10, (H, W, 3)), 0, 255).astype(np.uint8)


def _frame(t: int, wide: bool = False, pair: bool = False) -> np.ndarray:
    """Two upright 'pedestrians' (14 x 44 px) walking 12 px a frame in opposite directions and, when
    ``wide``, a solid blob too wide for one person; when ``pair``, two more walking side by side."""
    frame = _background().copy()
    frame[10:54, 10 + 12 * t:24 + 12 * t] = (20, 20, 160)
    frame[66:110, 290 - 12 * t:304 - 12 * t] = (200, 200, 30)
    if wide:
        frame[10:54, 200:240] = (10, 10, 10)
    if pair:
        mask = _pair_mask(gap_rows=slice(8, 20), gap=6)  # wider than the foreground's closing
        frame[10:54, 200:200 + mask.shape[1]][mask] = (10, 10, 10)
    return frame


RULES = BlobRules(min_height=20)


def test_upright_blobs_are_people_and_a_wide_blob_is_uncertain():
    people, uncertain = person_boxes(_frame(0, wide=True), _background(), RULES)
    assert sorted(people.tolist()) == [[10, 10, 24, 54], [290, 66, 304, 110]]
    assert uncertain.tolist() == [[200, 10, 240, 54]]


def test_uncertain_regions_are_painted_with_the_background():
    frame, background = _frame(0, wide=True), _background()
    labels, boxes, is_person = label_blobs(frame, background, RULES)
    painted, mask = paint_uncertain(frame, background, labels, is_person, dilation=2)
    assert mask[10:54, 200:240].all() and np.array_equal(painted[mask], background[mask])
    assert np.array_equal(painted[10:54, 10:24], frame[10:54, 10:24])  # the people are untouched
    people, uncertain = person_boxes(painted, background, RULES)
    assert len(people) == 2 and len(uncertain) == 0


def test_dataset_from_a_video_is_coco_that_the_loader_reads(tmp_path, capsys):
    av = pytest.importorskip("av")
    from densepose.data.dataset import DensePoseDataset

    video = tmp_path / "clip.mkv"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "bgr0"
        for t in range(12):
            frame = _frame(t, wide=t in (3, 4), pair=t in (7, 8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = tmp_path / "pseudo"
    # The default rules are vtest.avi's (people >= 30 px); the clip's people are 44 px tall.
    assert main(["--video", str(video), "--frames", "2:12", "--out", str(out)]) == 0
    assert "wrote 10 of 10 frames, 24 boxes (4 from blobs of two), 2 regions painted out" in capsys.readouterr().out
    coco = json.loads((out / "annotations.json").read_text())
    assert [im["frame_index"] for im in coco["images"]] == list(range(2, 12))
    assert all(im["license"] == coco["licenses"][0]["id"] for im in coco["images"])
    assert all(a["category_id"] == 1 and a["iscrowd"] == 0 and a["bbox"][3] == 44 for a in coco["annotations"])
    dataset = DensePoseDataset(out / "images", out / "annotations.json")
    assert len(dataset) == 10
    # Without splitting, the pairs are painted out like the solid blobs.
    assert main(["--video", str(video), "--frames", "2:12", "--out", str(tmp_path / "unsplit"), "--no-split-pairs"]) == 0
    assert "wrote 10 of 10 frames, 20 boxes (0 from blobs of two), 4 regions painted out" in capsys.readouterr().out


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["--video", str(tmp_path / "missing.avi"), "--frames", "0:5", "--out", str(tmp_path / "o")]) == 2
    assert "video not found" in capsys.readouterr().err
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    assert main(["--video", str(video), "--frames", "5:5", "--out", str(tmp_path / "o")]) == 2
    assert "the frame range is empty" in capsys.readouterr().err
    with pytest.raises(UserError, match="START:STOP"):
        parse_frame_range("10")


@pytest.mark.slow
def test_real_frames_of_vtest(shared_dir, tmp_path):
    """Five real frames: several tight single-person boxes per frame, at pedestrian heights."""
    from densepose.data.pseudo_labels import write_dataset

    coco = write_dataset(shared_dir / "data" / "video" / "vtest.avi", range(660, 670, 2), tmp_path / "v", log=lambda s: None)
    assert len(coco["images"]) >= 4 and len(coco["annotations"]) >= 10
    heights = [a["bbox"][3] for a in coco["annotations"]]
    assert 30 <= min(heights) and max(heights) <= 160


def _pair_mask(gap_rows: slice, gap: int = 2, width: int = 14, height: int = 44) -> np.ndarray:
    """The pixels of two 'pedestrians' side by side (each ``width`` x ``height``), ``gap`` columns
    apart and joined over ``gap_rows`` (their shoulders)."""
    mask = np.zeros((height, 2 * width + gap), bool)
    mask[:, :width] = True
    mask[:, width + gap:] = True
    mask[gap_rows, width:width + gap] = True
    return mask


def test_a_blob_of_two_walkers_side_by_side_is_split_in_two():
    from densepose.data.pseudo_labels import split_pair

    height_model = (0.0, 44.0)  # every pedestrian is 44 px tall
    mask = _pair_mask(gap_rows=slice(8, 20))  # joined at the shoulders, heads and legs apart
    box = np.array([100, 10, 100 + mask.shape[1], 54])
    pair = split_pair(box, mask, (H, W), RULES, height_model)
    assert pair is not None
    assert pair.tolist() == [[100, 10, 115, 54], [115, 10, 130, 54]]  # cut in the middle of the neck
    # A solid block (no neck between two people) and a blob too short for its row stay uncertain.
    assert split_pair(box, np.ones_like(mask), (H, W), RULES, height_model) is None
    assert split_pair(box, mask, (H, W), RULES, (0.0, 80.0)) is None


def test_pairs_become_two_boxes_and_are_not_painted(tmp_path):
    """A frame with two single walkers and a pair: with a height model the pair gives two boxes."""
    from densepose.data.pseudo_labels import split_pairs

    frame = _frame(0, pair=True)
    labels, boxes, is_person = label_blobs(frame, _background(), RULES, (0.0, 44.0))
    assert is_person.sum() == 2
    pairs, split = split_pairs(labels, boxes, is_person, RULES, (0.0, 44.0))
    assert split.sum() == 1 and len(pairs) == 2
    assert all(b[3] - b[1] == 44 and 14 <= b[2] - b[0] <= 18 for b in pairs.tolist()), pairs
    # Without a height model (or with splitting off) nothing is split: the blob stays uncertain.
    assert len(split_pairs(labels, boxes, is_person, RULES, None)[0]) == 0
    assert len(split_pairs(labels, boxes, is_person, BlobRules(min_height=20, split_pairs=False), (0.0, 44.0))[0]) == 0
