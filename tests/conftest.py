"""Shared fixtures: the 24-chart sphere (instant, exact geodesics) and the real Anny surface."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DENSEPOSE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def sphere_surface():
    from densepose.surface.sphere import sphere_surface

    return sphere_surface()


@pytest.fixture(scope="session")
def anny_surface():
    """The default surface; the first build in a fresh cache takes about two minutes."""
    from densepose.surface import load_surface

    return load_surface("anny")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED
