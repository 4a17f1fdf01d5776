"""Average several facing classifiers: the heads of other model files added to one's.

    densepose add-facing-heads densepose/assets/model_light.pt facing_a.pt facing_b.pt --out model.pt

Each `densepose train-facing` run gives one small head on the same fixed ImageNet crop features;
heads trained on other people or other boxes err on different people, and the mean of their
logits errs less (MODELS.md, "Which way people face"). This adds the heads of each other file's
facing classifier to the model file's (``ModelConfig.facing_members``), keeping everything else
of the model file, its chart ratios included.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from densepose.engine.export import write_model_file
from densepose.errors import UserError
from densepose.modeling.model_file import read_model_file

#: Most heads a facing classifier may average.
MAX_FACING_MEMBERS = 8


def _head_weights(weights: dict[str, torch.Tensor], members: int) -> list[dict[str, torch.Tensor]]:
    """Per head of a model file's facing classifier, its weights by name within the head."""
    prefixes = ["facing.head."] + [f"facing.more_heads.{i}." for i in range(members - 1)]
    return [{k[len(p):]: v for k, v in weights.items() if k.startswith(p)} for p in prefixes]


def add_facing_heads(model_path: str | Path, head_paths: Sequence[str | Path], out: str | Path,
                     log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``model_path`` with the facing heads of the files at
    ``head_paths`` added to its own (their logits averaged); returns its meta."""
    source = read_model_file(model_path)
    if not source.config.facing_on:
        raise UserError(f"{model_path}: no facing classifier to add heads to (densepose train-facing makes one)")
    weights = dict(source.weights)
    trunk = {k: v for k, v in weights.items() if k.startswith(("facing.stem.", "facing.blocks."))}
    members = source.config.facing_members
    for path in head_paths:
        other = read_model_file(path)
        if not other.config.facing_on:
            raise UserError(f"{path}: no facing classifier")
        if any(not torch.equal(v, other.weights[k]) for k, v in trunk.items()):
            raise UserError(f"{path}: its facing classifier reads other crop features than {model_path}'s")
        for head in _head_weights(other.weights, other.config.facing_members):
            weights.update({f"facing.more_heads.{members - 1}.{k}": v for k, v in head.items()})
            members += 1
    if members > MAX_FACING_MEMBERS:
        raise UserError(f"{members} facing heads: at most {MAX_FACING_MEMBERS}")
    config = replace(source.config, facing_members=members)
    facing = dict(source.meta.get("facing", {}))
    facing["added_heads"] = list(facing.get("added_heads", [])) + [str(p) for p in head_paths]
    meta = write_model_file(out, config.to_dict(), weights, {**source.meta, "facing": facing}, str(model_path))
    log(f"wrote {out}: a facing classifier of {members} heads")
    return meta
