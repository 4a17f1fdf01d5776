"""Average a model file's keypoint network with the one it was fine-tuned from, then count the skeleton prior again.

    densepose average-keypoints start.pt trained.pt --prior-data data/synth_a data/synth_b --out model.pt --half

A network fine-tuned on renders forgets some of what it knew of real people. Averaging its weights
with those it started from (WiSE-FT, Wortsman et al., CVPR 2022: weight-space ensembles of a
network before and after fine-tuning) keeps part of both: on held-out renders it scores between
the two or above, and on real photos it stays nearer the start (MODELS.md, "The three priors
weighed again"). ``trained`` must come from ``start`` by `densepose train-keypoints`, so the two
networks have the same layers; the averaged file keeps ``trained``'s config, settings and every
other weight, and its skeleton prior is counted again with the averaged keypoints, as
`densepose train-keypoints` does after training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from densepose.engine.export import stored_small
from densepose.engine.keypoints_train import (
    KEYPOINT_PREFIX,
    accuracy_line,
    accuracy_record,
    held_out_split,
    keypoint_accuracy,
    read_keypoint_people,
    write_with_prior_counted,
)
from densepose.errors import UserError
from densepose.modeling.model_file import ModelFile, build_model, read_model_file


def averaged_keypoint_weights(start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor],
                              weight: float) -> dict[str, torch.Tensor]:
    """``trained``'s weights with each float tensor of the keypoint network replaced by
    ``weight * start + (1 - weight) * trained`` (computed in float32, kept in ``trained``'s dtype).
    UserError when the two networks do not have the same tensors."""
    names = {k for k in trained if k.startswith(KEYPOINT_PREFIX)}
    if not names or names != {k for k in start if k.startswith(KEYPOINT_PREFIX)}:
        raise UserError("the two files' keypoint networks have different layers (one with its own trunk blocks, "
                        "the other without?); average a train-keypoints output with the file it started from")
    averaged = dict(trained)
    for name in sorted(names):
        a, b = start[name], trained[name]
        if a.shape != b.shape:
            raise UserError(f"the two files' keypoint networks differ at {name}: {tuple(a.shape)} and {tuple(b.shape)}")
        if b.is_floating_point():
            averaged[name] = (weight * a.float() + (1 - weight) * b.float()).to(b.dtype)
    return averaged


def average_keypoints(start_path: str | Path, trained_path: str | Path, prior_folders: Sequence[str | Path],
                      out: str | Path, weight: float = 0.5, half: bool = False,
                      folders: Sequence[str | Path] = (), min_height: float = 32.0,
                      log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``trained_path`` with its keypoint network averaged with the
    one of ``start_path`` (``weight``: the start's share, in (0, 1)) and its skeleton prior and U, V
    means counted again with it on ``prior_folders`` (the file's power and U, V variance; ``half``:
    every weight stored as float16, the averaged ones before the prior is counted); returns its meta.
    With ``folders`` (`densepose synth` folders, people shorter than ``min_height`` skipped), the
    averaged network, as the file stores it, is measured on their held-out people as train-keypoints
    measures (`keypoint_accuracy`), into the meta's ``keypoints.held_out_averaged``; the training run's
    ``held_out_after`` stays that of the trained network."""
    if not 0 < weight < 1:
        raise UserError(f"average-keypoints: the start's weight must lie between 0 and 1, got {weight}")
    start, trained = read_model_file(start_path), read_model_file(trained_path)
    for path, source in ((start_path, start), (trained_path, trained)):
        if not source.config.skeleton_prior_on:
            raise UserError(f"{path}: no keypoint network (densepose add-skeleton-prior --movenet adds one)")
    weights = averaged_keypoint_weights(start.weights, trained.weights, weight)
    record = {**trained.meta.get("keypoints", {}), "averaged_with": {"file": str(start_path), "weight": weight}}
    if folders:
        _, test = held_out_split(read_keypoint_people(folders, min_height))
        if not len(test.boxes):
            raise UserError(f"average-keypoints: no held-out people (image id a multiple of 10) in "
                            f"{[str(f) for f in folders]}")
        model = build_model(ModelFile(trained.config, stored_small(weights, half), trained.meta)).eval()
        accuracy = keypoint_accuracy(model.facing.people, model.keypoints, test)
        log(f"held out ({len(test.boxes)} people), averaged: " + accuracy_line(accuracy))
        record["held_out_averaged"] = accuracy_record(accuracy)
    log(f"keypoint networks averaged ({weight:g} of {start_path}); counting the skeleton prior with them")
    return write_with_prior_counted(trained.config, weights, {**trained.meta, "keypoints": record}, str(trained_path),
                                    prior_folders, out, half=half, log=log)
