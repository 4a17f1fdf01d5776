"""A detectron2 model file through densepose.load: SMPL-chart results with confidences (a hostile .pkl given
to load / predict --model: tests/test_reliability_load.py)."""
from __future__ import annotations


import numpy as np

import densepose.api


def test_load_gives_smpl_chart_results_with_confidences(detectron2_legacy_file):
    predictor = densepose.api.load(detectron2_legacy_file, min_score=0.05, min_size=96, max_size=128, precision="fp32")
    assert predictor.model.chart == "smpl"
    image = (np.random.default_rng(2).random((96, 128, 3)) * 255).astype(np.uint8)
    people = predictor(image)
    assert people, "random official-format weights find someone at min_score 0.05"
    for person in people:
        assert person.chart == "smpl"
        assert set(person.confidences) == {"sigma_2"}
        assert person.confidences["sigma_2"].shape == person.labels.shape
        assert not person.confidences["sigma_2"][person.labels == 0].any()
        assert person.labels.max() <= 24 and person.iuv.shape == (3,) + person.labels.shape

