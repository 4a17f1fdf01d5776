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
