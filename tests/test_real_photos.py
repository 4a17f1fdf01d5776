"""The labelled real-photo set and its scoring (benchmarks/real_photos.py)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("real_photos", REPO / "benchmarks" / "real_photos.py")
real_photos = importlib.util.module_from_spec(_spec)
sys.modules["real_photos"] = real_photos  # its dataclasses resolve their annotations through it
_spec.loader.exec_module(real_photos)


def test_annotation_file_is_coco_with_licences():
    coco = json.loads(real_photos.ANNOTATIONS.read_text())
    images = {im["id"]: im for im in coco["images"]}
    assert len(images) == 26 and sum("frame_index" in im for im in images.values()) == 20
    licences = {lic["id"] for lic in coco["licenses"]}
    assert all(im["license"] in licences for im in images.values())
    people = [a for a in coco["annotations"] if not a["iscrowd"]]
    assert len(people) == 113
    for a in coco["annotations"]:
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert a["category_id"] == 1 and w > 5 and h > 5
        assert 0 <= x and 0 <= y and x + w <= im["width"] and y + h <= im["height"]
    # Every image holds at least one person.
    assert {a["image_id"] for a in people} == set(images)


def test_matching_counts_recall_false_positives_and_ignores():
    people = np.array([[0, 0, 10, 20], [50, 0, 60, 20]], dtype=float)
    ignore = np.array([[100, 0, 120, 30]], dtype=float)
    det = np.array([[1, 0, 10, 20],     # person 0
                    [0, 1, 10, 21],     # duplicate of person 0: false positive
                    [101, 2, 119, 28],  # inside the ignore region: not counted
                    [200, 0, 210, 20]])  # nothing there: false positive
    found, fp = real_photos.match_people(det, np.array([0.9, 0.8, 0.7, 0.6]), people, ignore)
    assert (found, fp) == (1, 2)
    assert real_photos.match_people(np.zeros((0, 4)), np.zeros(0), people, ignore) == (0, 0)
    # Row by row (`--details`), the more confident of two boxes on one person takes them, in any row order.
    person, false = real_photos.match_rows(det, np.array([0.6, 0.8, 0.7, 0.9]), people, ignore)
    assert person.tolist() == [-1, 0, -1, -1] and false.tolist() == [True, False, False, True]


def test_coarse_part_miou_counts_a_left_right_swap_as_wrong():
    official = np.zeros((4, 6), dtype=np.int64)
    official[:, :2] = 3   # right hand
    official[:, 2:4] = 4  # left hand
    official[:, 4:] = 2   # torso front
    assert real_photos.coarse_part_miou(official, official) == 1.0
    swapped = official.copy()
    swapped[official == 3], swapped[official == 4] = 4, 3
    assert real_photos.coarse_part_miou(swapped, official) == pytest.approx(1 / 3)  # only the torso agrees
    back = official.copy()
    back[official == 2] = 1  # torso back and front are one coarse part
    assert real_photos.coarse_part_miou(back, official) == 1.0


@pytest.mark.slow
def test_bundled_model_on_real_photos(shared_dir):
    """The shipped model on the labelled real photos (MODELS.md, "On real photos"), with a margin.
    At its own score threshold (``default_min_score`` 0.6, on scores lowered by the person check of
    five heads trained with pairs, shifted boxes, small parts and pseudo-labelled street frames as
    negatives, covered and wider boxes dropped), the detector ranking 300 of 1,000 proposals per
    level: recall 0.929, 0.08 false people per image; the file before (100 of 300 proposals, covered
    boxes dropped at 0.9, threshold 0.55): 0.912 and 0.08, which fails the recall bound ("More of
    the detector's proposals"); before it one head trained on renders with fragments and background
    (threshold 0.5): 0.912 and 0.19, which fails both, as do the file before the wider-box rule
    (0.912 and 0.38), the file before the covered rule (0.929 and 0.65), the file before the person
    check (0.929 and 1.04 at its 0.6), the same weights without the group-box and height-range
    filters (2.00 at 0.5) and the ResNet-18 model shipped before them (recall 0.071, 4.9 false
    people per image). The skier (DensePose head on grown boxes, facing weights squared,
    ``facing_power`` 2): 0.511 coarse-part mIoU with the official model, 0.016 of his pixels on the
    turned-around chart; 0.481 with the weights as measured, 0.453 on the detection boxes and 0.423
    when the heads read the size his box was found at (all fail the bound), 0.212 and 0.383 without
    the facing classifier.
    The targets of the project are recall >= 0.9, <= 0.1 false people per image and skier >= 0.5."""
    import densepose.api

    predictor = densepose.api.load(precision="fp32")
    assert predictor.min_score == 0.6
    scores, skier = real_photos.score_model(predictor, shared_dir / "data")
    total = real_photos.summary(scores, skier)
    assert total["people"] == 113 and total["images"] == 26
    assert total["recall"] >= 0.92, total
    assert total["false_positives_per_image"] <= 0.1, total
    assert total["skier_coarse_miou"] >= 0.5, total
    assert total["skier_turned_chart"] <= 0.2, total


def test_chart_agreement_tells_a_person_read_as_facing_away():
    from densepose.surface.parts import CHART_TURN

    official = np.array([[0, 2, 9, 10], [13, 14, 23, 24]])
    assert real_photos.chart_agreement(official, official) == (1.0, 0.0)
    assert real_photos.chart_agreement(CHART_TURN[official], official) == (0.0, 1.0)
    ours = official.copy()
    ours[0, 1:] = 0  # background where the official model sees body: not counted
    assert real_photos.chart_agreement(ours, official) == (1.0, 0.0)


def test_grey_scores_the_greyscale_image():
    """``--grey``: the model is shown each image's luma in all three channels."""
    colour = np.zeros((4, 6, 3), np.uint8)
    colour[..., 0] = 200  # red
    assert real_photos._seen(colour, False) is colour
    grey = real_photos._seen(colour, True)
    assert grey.shape == colour.shape and grey.dtype == np.uint8
    assert (grey == round(200 * 0.299)).all()


def test_scale_shows_a_resized_copy_and_reports_in_the_original_pixels():
    """``--scale F``: the model sees the image resized by F; its results are asked for in the
    original image's pixels, so the same labels score them."""
    image = np.full((40, 60, 3), 90, np.uint8)
    image[:, 30:] = 10
    half = real_photos._seen(image, False, 0.5)
    assert half.shape == (20, 30, 3) and half.dtype == np.uint8
    assert (half[:, :14] == 90).all() and (half[:, 16:] == 10).all()
    assert real_photos._seen(image, False, 1.5).shape == (60, 90, 3)
    assert real_photos._seen(image, False) is image

    class Recorder:
        def predict_batch(self, images, frame_sizes=None):
            self.seen, self.frames = [im.shape for im in images], frame_sizes
            return ["result"]

    rec = Recorder()
    assert real_photos._predict(rec, image, False, 0.5) == "result"
    assert rec.seen == [(20, 30, 3)] and [tuple(f) for f in rec.frames] == [(40, 60)]


@pytest.mark.slow
def test_bundled_model_on_greyscale_real_photos(shared_dir):
    """The same set in greyscale (``--grey``), as black-and-white photos and infrared cameras give it:
    recall 0.858, 0.19 false people per image, skier 0.487 (MODELS.md, "What still fails"): the
    detector leans on colour. The file before (100 of 300 proposals, covered boxes dropped at 0.9,
    threshold 0.55): 0.850 and 0.27, which fails the bound on false people; it missed Grace Hopper,
    whom the model file finds among its 300 proposals.
    A bound that keeps it from getting worse."""
    import densepose.api

    predictor = densepose.api.load(precision="fp32")
    scores, skier = real_photos.score_model(predictor, shared_dir / "data", grey=True)
    total = real_photos.summary(scores, skier)
    assert total["recall"] >= 0.83, total
    assert total["false_positives_per_image"] <= 0.25, total
