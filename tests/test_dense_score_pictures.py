"""benchmarks/dense_score_pictures.py: each person's part agreement with the render's truth."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from densepose.predict import PersonResult

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # it imports orientation as the script does
_spec = importlib.util.spec_from_file_location("dense_score_pictures", REPO / "benchmarks" / "dense_score_pictures.py")
pictures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pictures)


def test_part_agreement_counts_the_matched_instances_pixels_only():
    """A 10 x 10 predicted body at (20, 30): 60 pixels on the right chart, 40 on another; truth is
    instance 2 there, and instance 1's body beside it must not count."""
    image = np.zeros((64, 64, 3), np.uint8)
    truth, instance = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    truth[30:40, 20:30], instance[30:40, 20:30] = 2, 2
    truth[30:40, 30:34], instance[30:40, 30:34] = 2, 1  # another person inside the maps' box
    labels = np.zeros((10, 14), np.uint8)
    labels[:, :10] = 2
    labels[6:, :10] = 3  # 40 pixels on the wrong chart
    person = PersonResult(np.array([20, 30, 34, 40], np.float32), 0.9, labels, labels * 0.0, labels * 0.0, (20, 30))
    crop = pictures.person_crop(image, truth, instance, person)
    assert crop["agreement"] == pytest.approx(0.6)
    assert crop["photo"].shape == (10, 14, 3) and (crop["truth"][:, 10:] == 0).all()
    labels[:] = 0
    assert pictures.person_crop(image, truth, instance, person) is None  # nobody under an empty body
    tile = pictures.tile(crop, "dense 0.50")
    assert tile.shape[0] == pictures.TILE_HEIGHT + 18


def test_rank_correlation():
    a = np.array([0.1, 0.5, 0.3, 0.9])
    assert pictures.rank_correlation(a, a * 2) == pytest.approx(1.0)
    assert pictures.rank_correlation(a, -a) == pytest.approx(-1.0)
