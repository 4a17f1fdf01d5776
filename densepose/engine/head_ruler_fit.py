"""Give a model file the head ruler (`densepose.modeling.head_ruler`), counted on renders.

    densepose add-head-ruler densepose/assets/model_light.pt --data data/synth_a --out model_ruled.pt

Every person of the ``densepose synth`` folders' dense ground truth (``dense/*.npz``: instance and
part index per pixel) whose head shows and is not cut by the image's top edge adds the part index
of each of their pixels to the count of the pixel's ruler bin, ``d = (row - top) / height`` with
the head's top row and height (charts 23 and 24) from the same truth. The counts become the
model's ``head_ruler_log_ratio``; the model file is written with ``head_ruler_on=true`` and the
power asked for, nothing else changed. No training: a few thousand renders take a minute or two.
"""
from __future__ import annotations

import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from densepose.engine.export import write_model_file
from densepose.errors import UserError
from densepose.modeling.detectron2 import is_detectron2_file
from densepose.modeling.head_ruler import HEAD_CHARTS, RULER_BINS, ruler_bins, ruler_log_ratio
from densepose.modeling.model_file import model_config_from_dict, read_model_file
from densepose.synth.writer import load_dense

#: A head needs this many pixels to measure the ruler from.
MIN_HEAD_PIXELS = 30


def dense_files(folders: Sequence[str | Path], max_images: int | None = None) -> list[Path]:
    """The ``dense/*.npz`` files of ``densepose synth`` folders (and their train/val splits), sorted,
    at most ``max_images`` from each folder."""
    files = []
    for folder in map(Path, folders):
        found = sorted(folder.glob("dense/*.npz")) or sorted(folder.glob("*/dense/*.npz"))
        if not found:
            raise UserError(f"{folder}: no dense/*.npz (pass a `densepose synth` output folder)")
        files += found[:max_images]
    return files


def person_counts(instance: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Dense truth of one image, (H, W) person index (0 none) and (H, W) part index ->
    (RULER_BINS, 25) pixel counts of each part per ruler bin, over the people whose head shows."""
    counts = np.zeros((RULER_BINS, 25), np.int64)
    for person in np.unique(instance[instance > 0]):
        body = (instance == person) & (part > 0)
        head = body & (part >= HEAD_CHARTS[0]) & (part <= HEAD_CHARTS[1])
        if head.sum() < MIN_HEAD_PIXELS:
            continue
        head_rows = np.nonzero(head.any(1))[0]
        top, bottom = head_rows.min(), head_rows.max()
        if top == 0:  # cut by the image's top edge: its top is unknown
            continue
        rows, cols = np.nonzero(body)
        d = torch.from_numpy((rows - top) / (bottom - top + 1))
        np.add.at(counts, (ruler_bins(d).numpy(), part[rows, cols]), 1)
    return counts


def count_ruler_charts(folders: Sequence[str | Path], max_images: int | None = None,
                       log: Callable[[str], None] = print) -> np.ndarray:
    """(RULER_BINS, 25) part counts per ruler bin over the people of ``folders`` (module docstring)."""
    files = dense_files(folders, max_images)
    counts = np.zeros((RULER_BINS, 25), np.int64)
    start = time.time()
    for i, path in enumerate(files, 1):
        try:
            truth = load_dense(path)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path}: not a dense truth file of `densepose synth` ({exc})") from None
        if truth["instance"].shape != truth["I"].shape:
            raise UserError(f"{path}: its instance and I maps differ in shape")
        counts += person_counts(truth["instance"], truth["I"])
        if i % 500 == 0 or i == len(files):
            log(f"  {i}/{len(files)} images counted ({time.time() - start:.0f} s)")
    if counts[:, 1:].sum() == 0:
        raise UserError(f"no person with a visible head in {[str(f) for f in folders]}")
    return counts


def add_head_ruler(model_path: str | Path, folders: Sequence[str | Path], out: str | Path, power: float = 1.0,
                   max_images: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``model_path`` with the head ruler counted on ``folders``; returns its meta."""
    if is_detectron2_file(model_path):
        raise UserError(f"{model_path}: a detectron2 model file; the head ruler is added to this toolkit's model files")
    source = read_model_file(model_path)
    if not source.config.densepose_on:
        raise UserError(f"{model_path}: the head ruler needs a model with a DensePose head")
    config = replace(source.config, head_ruler_on=True, head_ruler_power=power)
    model_config_from_dict(config.to_dict(), "add-head-ruler --power")  # its range, before the counting
    counts = count_ruler_charts(folders, max_images, log)
    weights = {k: v for k, v in source.weights.items() if k != "head_ruler_log_ratio"}
    weights["head_ruler_log_ratio"] = ruler_log_ratio(torch.from_numpy(counts))
    meta = {**source.meta, "head_ruler": {"data": [str(f) for f in folders], "max_images": max_images,
                                          "pixels": int(counts.sum()), "power": power}}
    meta = write_model_file(out, config.to_dict(), weights, meta, str(model_path))
    log(f"wrote {out}: head ruler from {int(counts.sum())} pixels, power {power}")
    return meta
