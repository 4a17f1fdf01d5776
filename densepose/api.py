"""Python API: load a model and get, per image, the people found (`ImageResult` of `PersonResult`).

    >>> import densepose.api
    >>> model = densepose.api.load()                 # bundled light model (densepose/assets/model_light.pt)
    >>> people = model("photo.jpg")                  # path, PIL image or RGB uint8 array (H, W, 3)
    >>> people[0].box, people[0].score, people[0].labels.shape
    >>> people.plot("parts,contours,boxes")          # RGB picture with a colour legend; .save(path), .to_json()
    >>> iuv = people[0].iuv_image(H, W)              # uint8 (H, W, 3) [I, U*255, V*255], box pasted in place
    >>> ys, xs, xyz = people[0].surface_xyz()        # 3D points on the Anny body for every body pixel

The pieces live in `densepose.predict` (`Predictor`, results, CPU precision); model files are read
by `densepose.modeling.model_file`. This module adds the bundled model and `load`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from densepose.errors import UserError
from densepose.predict.cpu import PRECISIONS, cpu_has_fast_bf16, resolve_precision
from densepose.predict.predictor import Predictor
from densepose.predict.results import ImageResult, PersonResult, chart_outputs_to_result, compose

__all__ = [
    "ASSETS_DIR", "BUNDLED_MODEL", "ImageResult", "PRECISIONS", "PersonResult", "Predictor", "build_model_from_checkpoint",
    "bundled_model_path", "chart_outputs_to_result", "compose", "cpu_has_fast_bf16", "load", "resolve_precision",
]

#: Where the bundled model and demo images live (tests monkeypatch this).
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
BUNDLED_MODEL = "model_light.pt"


def bundled_model_path() -> Path:
    return ASSETS_DIR / BUNDLED_MODEL


def build_model_from_checkpoint(path: str | os.PathLike) -> torch.nn.Module:
    """The `DensePoseRCNN` of a model file, checked (`densepose.modeling.model_file.load_model_file`)."""
    from densepose.modeling.model_file import load_model_file

    return load_model_file(path)


def load(
    path: str | os.PathLike | None = None,
    device: str = "cpu",
    min_score: float | None = None,
    min_size: int | Sequence[int] | None = None,
    max_size: int | None = None,
    precision: str = "auto",
    flip: bool = False,
    symmetry_file: str | os.PathLike | None = None,
    zoom: int | None = None,
) -> Predictor:
    """A `Predictor` for the model file at ``path`` (default: the bundled light model).

    ``min_score``: keep people scoring at least this; default: the model's ``default_min_score``
    (0.5 when the file sets none). ``flip``: the flip test (`Predictor`); ``symmetry_file``: the
    chart's ``UV_symmetry_transforms.mat`` for it (detectron2 files need one). ``zoom``: read small
    people at this larger shorter side (`Predictor`).
    """
    if path is None:
        path = bundled_model_path()
        if not path.is_file():
            raise UserError(
                f"the bundled weights {path} are not installed (this build ships without a trained model); "
                "pass a model file with --model PATH / load(path)"
            )
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return Predictor(build_model_from_checkpoint(path), device, min_score, min_size, max_size, precision, flip,
                     symmetry_file, zoom)
