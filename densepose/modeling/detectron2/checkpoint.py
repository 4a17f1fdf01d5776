"""Read a detectron2 DensePose checkpoint and build the model it describes.

Accepted files (weights are data, never code):

* model-zoo ``.pkl`` (``model_final_*.pkl``): a pickle of ``{"model": {name: ndarray}, ...}``, read
  with `densepose.io.safe_pickle.load_restricted_pickle` (arrays and plain containers only);
* ``.pth`` / ``.pt``: a state dict, or ``{"model": state_dict, ...}`` as detectron2's trainer
  writes, read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from densepose.errors import UserError
from densepose.io.safe_pickle import load_restricted_pickle
from densepose.modeling.detectron2.model import Detectron2DensePoseRCNN
from densepose.modeling.detectron2.variant import detect_variant, to_model_keys
from densepose.modeling.model_file import check_weights, first_mismatch

#: First bytes of a pickle (protocol 2..5 start with PROTO) and of torch's zip container.
_PICKLE_MAGIC = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"
#: Key fragments only detectron2 DensePose files have (our own models name the stem ``backbone.bottom_up.conv1``).
_D2_MARKERS = (b"backbone.bottom_up.stem.", b"roi_heads.densepose_predictor.")
#: How much of a plain pickle the sniff reads (the first key name comes first in the file).
_SNIFF_BYTES = 1 << 16


def _as_tensor(value, key: str, label: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return torch.from_numpy(np.ascontiguousarray(value))
    raise UserError(f"{label}: entry {key!r} is a {type(value).__name__}, not an array of numbers")


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The ``{name: tensor}`` weights of a detectron2 ``.pkl`` or ``.pth`` file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model file not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"{path}: not a readable torch file ({exc.__class__.__name__})") from None
    else:
        obj = load_restricted_pickle(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise UserError(f"{path}: expected a dict of weights (or {{'model': weights}}), got {type(obj).__name__}")
    return {k: _as_tensor(v, k, str(path)) for k, v in obj.items()}


def is_detectron2_file(path: str | os.PathLike) -> bool:
    """Cheap sniff: a ``.pkl`` file, a plain pickle whose start names detectron2's ResNet stem, or a
    torch zip whose pickled key names are detectron2 DensePose names.

    Reads only the file's start (pickle) or the zip's small ``data.pkl`` entry (torch file); never
    unpickles anything.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if path.suffix == ".pkl" or (head[:1] == _PICKLE_MAGIC and _D2_MARKERS[0] in head):
            return True
        if head[:4] != _ZIP_MAGIC:
            return False
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if name is None:
                return False
            data = z.read(name)
        return all(marker in data for marker in _D2_MARKERS)
    except (OSError, zipfile.BadZipFile):
        return False


def load_detectron2_model(path: str | os.PathLike) -> Detectron2DensePoseRCNN:
    """Build the detectron2 DensePose model stored in ``path`` (variant detected from its keys), in eval mode.

    Raises `UserError` (one line, naming the file) for an unreadable, unsafe or foreign file, and
    for weights that do not fit the detected variant (naming the first missing/unexpected key).
    """
    state = read_state_dict(path)
    variant = detect_variant(state, str(path))
    weights = to_model_keys(state, variant)
    model = Detectron2DensePoseRCNN(variant)
    own = model.state_dict()
    mismatch = first_mismatch(own, weights)
    if mismatch is not None:
        raise UserError(f"{path}: weights do not fit detectron2 {variant.name}: {mismatch}")
    weights = check_weights({k: v.to(own[k].dtype) for k, v in weights.items()}, str(path))
    model.load_state_dict(weights)
    return model.eval()
