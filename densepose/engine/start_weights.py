"""Fine-tuning: start a training run from the weights of a model file (``train --weights FILE``).

The model is built from the training config; the file's weights must fit it exactly (names and
shapes). When they do not, the error names the architecture settings in which the file's config
and the training config differ, which is nearly always the cause (e.g. another ``model_preset``).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch
from torch import Tensor, nn

from densepose.errors import UserError
from densepose.modeling.model_file import ModelFile, first_mismatch

log = logging.getLogger("densepose.train")


#: Parts of a model file that training does not learn (each trained apart, on a trained model):
#: flag -> (what it is, the settings that come with it: its shape, how it is read).
UNTRAINED_PARTS = {"facing_on": ("a facing classifier (densepose train-facing)",
                                 ("facing_power", "facing_members", "facing_people_members")),
                   "person_check_on": ("a person check (densepose train-person-check)", ("person_check_members",)),
                   "head_ruler_on": ("a head ruler (densepose add-head-ruler)", ("head_ruler_power",)),
                   "skeleton_prior_on": ("a skeleton prior (densepose add-skeleton-prior)",
                                         ("skeleton_prior_power", "skeleton_own_trunk",
                                          "skeleton_own_trunk_from")),
                   "skeleton_uv_on": ("U, V from the skeleton (densepose add-skeleton-prior)",
                                      ("skeleton_uv_variance",)),
                   "dp_zoom_flip": ("the small people's flip tables (densepose export --set dp_zoom_flip=true)",
                                    ("dp_zoom_size", "dp_zoom_max_height"))}


def with_start_settings(model_config: Any, start: ModelFile) -> Any:
    """``model_config`` with the parts of ``start`` that training does not learn switched on, with
    their settings (`UNTRAINED_PARTS`), so a model fine-tuned from the bundled one still weighs its
    charts by each person's facing, head and skeleton and checks its detections."""
    return _with_untrained_parts(model_config, start.config.to_dict(), "the start model file")


def with_resumed_settings(model_config: Any, saved_model_config: dict) -> Any:
    """``model_config`` with the untrained parts that a checkpoint's run had (``config.model`` of the
    checkpoint) switched on: a run started from a model file with them resumes without ``--weights``."""
    return _with_untrained_parts(model_config, saved_model_config, "the checkpoint")


def _with_untrained_parts(model_config: Any, source: dict, source_name: str) -> Any:
    for flag, (what, names) in UNTRAINED_PARTS.items():
        if source.get(flag) and not getattr(model_config, flag):
            log.info("%s has %s: kept as it is (%s=true)", source_name, what, flag)
            settings = {name: source[name] for name in names if name in source}
            model_config = dataclasses.replace(model_config, **{flag: True}, **settings)
    return model_config


def check_start_weights(model_config: Any, start: ModelFile, where: str) -> None:
    """Before anything is built or written: the weights of ``start`` fit ``DensePoseRCNN(model_config)``
    (checked on the meta device, which allocates nothing)."""
    from densepose.modeling.rcnn import DensePoseRCNN

    with torch.device("meta"):
        probe = DensePoseRCNN(dataclasses.replace(model_config, backbone_weights=None))
    _check_fits(probe.state_dict(), model_config, start, where)


def load_start_weights(model: nn.Module, start: ModelFile, where: str) -> None:
    """Copy the checked weights of ``start`` into ``model`` (names and shapes must match exactly)."""
    _check_fits(model.state_dict(), getattr(model, "cfg", None), start, where)
    model.load_state_dict(start.weights)
    log.info("starting from the weights of %s (%d tensors)", where, len(start.weights))


def _check_fits(own: dict[str, Tensor], model_config: Any, start: ModelFile, where: str) -> None:
    problem = first_mismatch(own, start.weights)
    if problem:
        raise UserError(f"{where}: its weights do not fit the model of this config ({problem})"
                        f"{_config_diff(model_config, start)}")


def _config_diff(model_config: Any, start: ModelFile) -> str:
    if model_config is None or not dataclasses.is_dataclass(model_config):
        return ""
    mine, theirs = dataclasses.asdict(model_config), start.config.to_dict()
    diff = [f"{k}: file {theirs[k]!r}, config {mine[k]!r}" for k in mine
            if k in theirs and k != "backbone_weights" and tuple(_seq(mine[k])) != tuple(_seq(theirs[k]))]
    return f"; settings that differ: {'; '.join(diff[:4])}" if diff else ""


def _seq(value):
    return value if isinstance(value, (list, tuple)) else (value,)
