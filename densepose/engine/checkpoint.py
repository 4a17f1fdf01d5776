"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model, optimizer, scheduler (the iteration drives the plain-function
schedule) and AMP scaler states, the RNG states (python, numpy, torch CPU, every CUDA device),
the data-order state of the sampler, the iteration, and the config. Everything is a tensor or a
plain container (the NumPy RNG state too), so checkpoints load with ``weights_only=True``: a
checkpoint from elsewhere is data, never code.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from densepose.cache import atomic_write_bytes
from densepose.errors import UserError

LAST = "last_checkpoint"


# Checkpoints written before the RNG state became tensors hold NumPy's state tuple: an array of
# uint32 rebuilt by NumPy's own array constructor (data, as in `densepose.io.safe_pickle`).
_NP_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_LEGACY_NUMPY_RNG = [(_NP_RECONSTRUCT, "numpy.core.multiarray._reconstruct"),
                     (_NP_RECONSTRUCT, "numpy._core.multiarray._reconstruct"),
                     np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def rng_state() -> dict:
    """Every RNG state as tensors and plain containers (NumPy's MT19937 key as an int64 tensor)."""
    numpy = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)), "pos": int(numpy["state"]["pos"]),
                  "has_gauss": int(numpy["has_gauss"]), "gauss": float(numpy["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    if isinstance(n, dict):
        n = {"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
             "has_gauss": n["has_gauss"], "gauss": n["gauss"]}
    np.random.set_state(n)  # a dict, or the legacy tuple of older checkpoints
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` into memory, then temp file + rename: a crash never leaves a torn file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint as data (``weights_only=True``); checks only that it is a dict with a state dict."""
    from densepose.modeling.model_file import read_torch_file

    with torch.serialization.safe_globals(_LEGACY_NUMPY_RNG):
        state = read_torch_file(path, "checkpoint")
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise UserError(f"{path}: not a `densepose train` checkpoint (a dict with a 'model' state dict)")
    return state


#: What `--resume` reads from a checkpoint, with the type each entry must have.
RESUME_ENTRIES = {"model": dict, "optimizer": dict, "scaler": dict, "rng": list, "data": dict, "iteration": int,
                  "config": dict}


def load_resume_state(path: str | Path) -> dict:
    """A checkpoint with everything `--resume` needs, checked: a one-line error names what is missing."""
    state = load_checkpoint(path)
    for key, typ in RESUME_ENTRIES.items():
        if not isinstance(state.get(key), typ) or isinstance(state.get(key), bool):
            raise UserError(f"{path}: cannot resume: the checkpoint has no valid {key!r} entry "
                            "(to fine-tune from a model file, start a new run with --weights)")
    if state["iteration"] < 0 or not state["rng"]:
        raise UserError(f"{path}: cannot resume: iteration {state['iteration']}, {len(state['rng'])} RNG states")
    for key in ("world_size", "ims_per_batch"):
        if not isinstance(state["data"].get(key), int):
            raise UserError(f"{path}: cannot resume: the checkpoint's data state has no {key!r}")
    return state


def write_last(run_dir: str | Path, name: str) -> None:
    """Record ``name`` as the newest checkpoint of the run (a one-line file, replaced atomically)."""
    atomic_write_bytes(Path(run_dir) / LAST, (name + "\n").encode())


def find_last(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run folder, or None when it has none."""
    marker = Path(run_dir) / LAST
    if not marker.is_file():
        return None
    path = Path(run_dir) / marker.read_text().strip()
    if not path.is_file():
        raise UserError(f"{marker}: names {path.name}, which does not exist")
    return path
