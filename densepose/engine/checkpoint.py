"""Checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint holds the model, optimizer, scheduler (the iteration drives the plain-function
schedule) and AMP scaler states, the RNG states (python, numpy, torch CPU, every CUDA device),
the data-order state of the sampler, the iteration, and the config.
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


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    """``torch.save`` into memory, then temp file + rename: a crash never leaves a torn file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        # Our own files: they hold numpy RNG state and python tuples, which weights_only rejects.
        return torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"{path}: cannot read checkpoint ({exc})") from None


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
