"""benchmarks/orientation.py: the U,V correlation it reports where the chart is right."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("orientation", REPO / "benchmarks" / "orientation.py")
orientation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(orientation)


def test_uv_correlation_per_chart_group():
    """Exact U with V at random gives correlations 1 and about 0 for a group; a group with fewer
    than 20 points is left out rather than reported from noise."""
    from densepose.surface.parts import KAPPA_GROUP_NAMES

    rng = np.random.default_rng(0)
    u, v = rng.random(500), rng.random(500)
    torso = np.stack([np.full(500, 1.0), u, v, u, rng.random(500)], axis=1)
    head = np.stack([np.full(10, 8.0), *rng.random((4, 10))], axis=1)
    out = orientation.uv_correlation(np.concatenate([torso, head]), KAPPA_GROUP_NAMES)
    assert list(out) == ["torso"] and out["torso"]["points"] == 500
    assert out["torso"]["u"] > 0.999 and abs(out["torso"]["v"]) < 0.15
    assert orientation.uv_correlation(np.zeros((0, 5)), KAPPA_GROUP_NAMES) == {}


def test_each_point_goes_to_the_first_kind_it_fits():
    """Upper leg right back (7) read as itself, the left front (10: turned around), the left back
    (8: mirrored), its own front (9), the lower leg (11) or background; the head's right (23) read
    as its left is turned around, not mirrored (both tables map it to 24)."""
    truth = np.array([7, 7, 7, 7, 7, 7, 23, 2])
    seen = np.array([7, 10, 8, 9, 11, 0, 24, 2])
    assert orientation.point_kinds(truth, seen) == {"background": 1, "exact": 2, "turned": 2, "mirrored": 1,
                                                   "same part": 1, "other part": 1}
