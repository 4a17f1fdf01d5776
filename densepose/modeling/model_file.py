"""Model files: read, check and build. A model file is data, and it is self-contained.

A model file is ``torch.save({"config": ModelConfig dict, "model": state_dict, "meta": dict})``
(``densepose export`` writes one; ``densepose/assets/model_light.pt`` is one). Reading it never
runs code (``torch.load(weights_only=True)``) and never opens another path: a ``backbone_weights``
entry in its config is dropped, since the weights are in the state dict. Everything is checked
before the real model is allocated: config types and ranges, finite weights, and the state
dict's names and shapes against the architecture the config describes (built on the meta device,
which allocates nothing). A damaged or hostile file is a one-line `UserError` naming the file,
never a traceback, an out-of-memory or a model that silently finds nobody.

    model = load_model_file("model.pt")          # DensePoseRCNN in eval mode
    mf = read_model_file("model.pt")             # ModelFile(config, weights, meta), checked
"""
from __future__ import annotations

import math
import os
import types
import typing
import zipfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from densepose.errors import UserError
from densepose.modeling.config import ModelConfig

#: Fields that may be 0; every other integer is a count or a size and must be >= 1.
_MAY_BE_ZERO = frozenset({"freeze_at", "dp_max_rois_per_image", "dp_zoom_size", "facing_people_members",
                          "guided_radius", "chart_smoothing"})
#: Fields whose values must be > 0 (divisors, anchor shapes, box-delta scales).
_POSITIVE = frozenset({"pixel_std", "anchor_sizes", "aspect_ratios", "box_reg_weights", "facing_power",
                       "head_ruler_power", "skeleton_prior_power", "skeleton_uv_variance", "guided_eps"})
#: Upper bounds that keep a hostile config from allocating without end (generous for real models).
_MAX_WIDTH = 8192  # *_dim, *_channels, *_width
_MAX_IMAGE_SIDE = 16384  # min_size_*, max_size, dp_zoom_size
_MAX_COUNT = 100_000  # any other integer
_MAX_CHART_POWER = 10.0  # chart weights to this power are already all or nothing
_MAX_BOX_HEAD_PASSES = 8  # each pass reads every row again; more than a few move nothing
#: Lists that may be empty.
_MAY_BE_EMPTY = frozenset({"extra_test_sizes"})


@dataclass
class ModelFile:
    """What a checked model file holds: ``config`` (``backbone_weights`` cleared), ``weights``
    (name -> tensor, finite, matching the config's architecture) and ``meta`` (provenance)."""

    config: ModelConfig
    weights: dict[str, Tensor]
    meta: dict


def read_torch_file(path: str | os.PathLike, what: str, hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain containers, never code.

    ``what`` names the file kind in errors ("model file", "checkpoint"); ``hint`` is appended to
    the one-line error for an unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    graph = exported_graph_kind(path)
    if graph:
        raise UserError(f"{path}: a {graph} graph (as `densepose export --format {graph.lower()}` writes), not a {what}; "
                        "graphs run in their own runtimes, and densepose reads the model file they were exported from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for random bytes, truncation and refused globals
        raise UserError(f"{path}: not a readable {what} ({exc.__class__.__name__}){hint}") from None


def exported_graph_kind(path: Path) -> str | None:
    """"TorchScript" or "ONNX" when ``path`` is such a graph (told by its archive's entries or its
    suffix; nothing in it is run), else None."""
    if path.suffix.lower() == ".onnx":
        return "ONNX"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    # torch.jit.save writes the graph's code and constants beside the tensors; torch.save writes neither.
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return "TorchScript"
    return None


def read_model_file(path: str | os.PathLike) -> ModelFile:
    """Read and check the model file at ``path`` (see the module docstring)."""
    path = Path(path)
    obj = read_torch_file(path, "model file", "; a training checkpoint becomes one with "
                          "`densepose export CHECKPOINT --out FILE`")
    return model_file_from_dict(obj, str(path))


def model_file_from_dict(obj: Any, where: str) -> ModelFile:
    """Check ``{"config", "model"[, "meta"]}`` as read from a file; ``where`` starts every error."""
    if not isinstance(obj, dict) or "config" not in obj or "model" not in obj:
        raise UserError(f"{where}: a model file must be a dict with 'config' and 'model' (state_dict) entries")
    if "optimizer" in obj or (isinstance(obj["config"], dict) and isinstance(obj["config"].get("solver"), dict)):
        raise UserError(f"{where}: a training checkpoint, not a model file; make one with "
                        "`densepose export CHECKPOINT --out FILE`")
    config = model_config_from_dict(obj["config"], where)
    weights = check_weights(obj["model"], where)
    meta = obj.get("meta", {})
    check_architecture(config, weights, where)
    return ModelFile(config, weights, meta if isinstance(meta, dict) else {})


def model_config_from_dict(values: Any, where: str) -> ModelConfig:
    """A `ModelConfig` from a dict read from a file, every value type- and range-checked.

    ``backbone_weights`` is cleared: a model file carries its weights and opens no other path.
    """
    if not isinstance(values, dict):
        raise UserError(f"{where}: 'config' must be a dict of model settings, not {type(values).__name__}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        raise UserError(f"{where}: config: unknown model setting {unknown[0]!r}")
    hints = typing.get_type_hints(ModelConfig)
    checked = {name: _check_value(name, value, hints[name], where) for name, value in values.items()
               if name != "backbone_weights"}
    try:
        return replace(ModelConfig(**checked), backbone_weights=None)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def check_weights(state: Any, where: str) -> dict[str, Tensor]:
    """A state dict (name -> tensor) whose floating-point values are all finite, each name with a
    tensor of its own (a file stores equal tensors once, `densepose.engine.export.stored_once`: a
    copy keeps an in-place change to one name from reaching the others), float16 ones (a file
    stores weights as float16 where it can, `densepose.engine.export.stored_small`) as float32."""
    if not isinstance(state, dict):
        raise UserError(f"{where}: 'model' must be a state dict (name -> tensor), not {type(state).__name__}")
    storages: set[int] = set()
    for name, value in list(state.items()):
        if not isinstance(name, str) or not isinstance(value, Tensor):
            raise UserError(f"{where}: 'model' must map names to tensors; entry {name!r} is {type(value).__name__}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise UserError(f"{where}: weight {name} holds NaN or infinite values (a diverged training run?)")
        if value.dtype == torch.float16:
            state[name] = value.float()
        elif value.untyped_storage().data_ptr() in storages and value.numel():
            state[name] = value.clone()
        storages.add(value.untyped_storage().data_ptr())
    return state


def check_architecture(config: ModelConfig, weights: dict[str, Tensor], where: str) -> None:
    """The weights' names and shapes are exactly those of ``DensePoseRCNN(config)`` (checked on
    the meta device, so a config that describes a huge model allocates nothing)."""
    from densepose.modeling.rcnn import DensePoseRCNN

    try:
        with torch.device("meta"):
            expected = DensePoseRCNN(config).state_dict()
    except (UserError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"{where}: the config does not describe a buildable model ({str(exc).splitlines()[0]})") from None
    problem = first_mismatch(expected, weights)
    if problem:
        raise UserError(f"{where}: {problem}; the weights do not fit the model described by its config")


def first_mismatch(expected: dict[str, Tensor], weights: dict[str, Tensor]) -> str | None:
    """The first difference in names or shapes between a model's state dict and ``weights``, in
    words ("weight X is missing (3 missing in all)", "... has shape ..."), or None when they fit."""
    missing = [k for k in expected if k not in weights]
    if missing:
        return f"weight {missing[0]} is missing ({len(missing)} missing in all)"
    unexpected = [k for k in weights if k not in expected]
    if unexpected:
        return f"weight {unexpected[0]} does not belong to the model ({len(unexpected)} such)"
    bad = next((k for k, v in expected.items() if tuple(weights[k].shape) != tuple(v.shape)), None)
    if bad is not None:
        return f"weight {bad} has shape {tuple(weights[bad].shape)}, the model expects {tuple(expected[bad].shape)}"
    return None


def build_model(model_file: ModelFile) -> torch.nn.Module:
    """The `DensePoseRCNN` of a checked `ModelFile`, weights loaded, in eval mode."""
    from densepose.modeling.rcnn import DensePoseRCNN

    model = DensePoseRCNN(model_file.config)
    model.load_state_dict(model_file.weights)
    return model.eval()


def load_model_file(path: str | os.PathLike) -> torch.nn.Module:
    """Read, check and build the model file at ``path`` (`DensePoseRCNN` in eval mode); a detectron2
    model-zoo ``.pkl`` / ``.pth`` gives `densepose.modeling.detectron2.Detectron2DensePoseRCNN`."""
    from densepose.modeling.detectron2 import is_detectron2_file, load_detectron2_model

    if is_detectron2_file(path):
        return load_detectron2_model(path)
    return build_model(read_model_file(path))


def _check_value(name: str, value: Any, typ: Any, where: str) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    label = f"{where}: config: {name}"
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        typ = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or (len(value) == 0 and name not in _MAY_BE_EMPTY):
            raise UserError(f"{label} must be a non-empty list, not {value!r:.60}")
        inner = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(inner) != len(value):
            raise UserError(f"{label} must hold {len(inner)} values, not {len(value)}")
        return tuple(_check_scalar(name, v, t, label) for v, t in zip(value, inner))
    return _check_scalar(name, value, typ, label)


def _check_scalar(name: str, value: Any, typ: Any, label: str) -> Any:
    if typ is bool:
        if not isinstance(value, bool):
            raise UserError(f"{label} must be true or false, not {value!r:.60}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise UserError(f"{label} must be a string, not {value!r:.60}")
        return value
    if typ not in (int, float) or isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (typ is int and not isinstance(value, int)):
        raise UserError(f"{label} must be {'an integer' if typ is int else 'a number'}, not {value!r:.60}")
    if not math.isfinite(value):
        raise UserError(f"{label} must be finite, not {value!r}")
    low, high = _bounds(name, typ)
    if not low <= value <= high or (name in _POSITIVE and value <= 0):
        shown = f"{'> 0' if name in _POSITIVE else f'>= {low}'} and <= {high}"
        raise UserError(f"{label} = {value!r} is out of range (must be {shown})")
    return value


def _bounds(name: str, typ: Any) -> tuple[float, float]:
    if typ is float:
        if any(word in name for word in ("iou", "thresh", "fraction", "score", "margin")):
            return 0.0, 1.0
        if name == "pixel_mean":
            return 0.0, 255.0
        if name in ("facing_power", "head_ruler_power", "skeleton_prior_power"):
            return 0.0, _MAX_CHART_POWER
        return 0.0, 1e6
    if name == "box_head_passes":
        return 1, _MAX_BOX_HEAD_PASSES
    if name.endswith(("_dim", "_channels", "_width")):
        return 1, _MAX_WIDTH
    if name.startswith("min_size") or name in ("max_size", "extra_test_sizes", "dp_zoom_size"):
        return (0 if name in _MAY_BE_ZERO else 1), _MAX_IMAGE_SIDE
    return (0 if name in _MAY_BE_ZERO else 1), _MAX_COUNT
