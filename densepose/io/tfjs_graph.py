"""TensorFlow.js graph models (``model.json`` + binary weight shards), read as data.

A TF.js graph model is a JSON file with the graph (``modelTopology.node``: name, op, inputs,
attributes) and a ``weightsManifest``: groups of weights, each group stored in the shard files it
lists, the weights laid end to end in manifest order. A weight may be quantised: stored as
float16, or as uint8 / uint16 with ``scale`` and ``min`` (value = q * scale + min).

Nothing here runs code from the file. The shards must be plain file names next to the JSON (a
name with a folder in it is refused, so a file cannot point the reader anywhere else), and their
sizes must add up to what the manifest says.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from densepose.errors import UserError

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
           "uint8": np.uint8, "uint16": np.uint16}


@dataclass
class TfjsGraph:
    """``nodes``: the graph's nodes as in the file (dicts with ``name``, ``op``, ``input``, ``attr``);
    ``weights``: name -> array in the weight's own shape and dtype (quantised ones restored)."""

    nodes: list[dict[str, Any]]
    weights: dict[str, np.ndarray]
    source: str  # the JSON's ``convertedBy`` / ``generatedBy``, for messages


def _shard_path(folder: Path, name: Any, json_path: Path) -> Path:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise UserError(f"{json_path}: weight shard {name!r} is not a plain file name next to the model file")
    path = folder / name
    if not path.is_file():
        raise UserError(f"{json_path}: weight shard {name} not found beside it")
    return path


def _decode(raw: memoryview, spec: dict[str, Any], json_path: Path) -> tuple[np.ndarray, int]:
    """One weight from the start of ``raw`` -> (array, bytes used)."""
    name, shape, dtype = spec.get("name"), spec.get("shape"), spec.get("dtype")
    if dtype not in ("float32", "int32", "bool") or not isinstance(shape, list):
        raise UserError(f"{json_path}: weight {name!r} has an unsupported dtype {dtype!r} or shape")
    count = int(np.prod(shape)) if shape else 1
    quant = spec.get("quantization")
    stored = quant.get("dtype") if isinstance(quant, dict) else dtype
    if stored not in ("float32", "int32", "bool", "float16", "uint8", "uint16"):
        raise UserError(f"{json_path}: weight {name!r} is quantised as {stored!r}, which is not supported")
    size = count * np.dtype(_DTYPES[stored]).itemsize
    if len(raw) < size:
        raise UserError(f"{json_path}: the weight shards end inside weight {name!r}")
    values = np.frombuffer(raw[:size], dtype=np.dtype(_DTYPES[stored]).newbyteorder("<"))
    if stored in ("uint8", "uint16"):
        values = values.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
    return values.astype(_DTYPES[dtype]).reshape(shape), size


def read_tfjs_graph(json_path: str | Path) -> TfjsGraph:
    """Read a TF.js graph model and all its weights (module docstring); one-line errors on bad files."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise UserError(f"{json_path}: no such file")
    try:
        model = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{json_path}: not a readable JSON file ({exc.__class__.__name__})") from None
    if not isinstance(model, dict) or model.get("format") != "graph-model":
        raise UserError(f"{json_path}: not a TensorFlow.js graph model (its \"format\" is not \"graph-model\")")
    nodes = (model.get("modelTopology") or {}).get("node")
    manifest = model.get("weightsManifest")
    if not isinstance(nodes, list) or not isinstance(manifest, list):
        raise UserError(f"{json_path}: graph model without modelTopology.node or weightsManifest")
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        paths, specs = group.get("paths"), group.get("weights")
        if not isinstance(paths, list) or not isinstance(specs, list):
            raise UserError(f"{json_path}: a weightsManifest group lacks paths or weights")
        raw = memoryview(b"".join(_shard_path(json_path.parent, p, json_path).read_bytes() for p in paths))
        offset = 0
        for spec in specs:
            array, used = _decode(raw[offset:], spec, json_path)  # a view: the rest is not copied per weight
            weights[str(spec["name"])] = array
            offset += used
        if offset != len(raw):
            raise UserError(f"{json_path}: the weight shards hold {len(raw) - offset} bytes more than the manifest lists")
    source = str(model.get("convertedBy") or model.get("generatedBy") or "unknown")
    return TfjsGraph(nodes=nodes, weights=weights, source=source)
