"""Shared fixtures: the 24-chart sphere (instant, exact geodesics) and the real Anny surface."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(scope="session")
def detectron2_legacy_file(tmp_path_factory) -> Path:
    """A detectron2 R_50_FPN_WC1 legacy .pkl (15 coarse channels, sigma_2) with random weights."""
    import pickle

    from detectron2_checkpoints import detectron2_state

    path = tmp_path_factory.mktemp("d2") / "model_final_wc1_legacy.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": detectron2_state(legacy=True, uv_confidence="iid_iso")}, f)
    return path


@pytest.fixture
def one_thread():
    """Tiny ops are far slower with several threads on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """--model points at a file; building it returns the deterministic FakeModel."""
    import densepose.api
    from test_predict_common import FakeModel

    path = tmp_path / "fake.pt"
    path.write_bytes(b"not used")
    monkeypatch.setattr(densepose.api, "build_model_from_checkpoint", lambda p: FakeModel())
    return str(path)
