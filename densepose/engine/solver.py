"""Optimisers (SGD, AdamW) and learning-rate schedules as plain functions of the iteration."""
from __future__ import annotations

import math

import torch
from torch import nn

from densepose.engine.config import SolverConfig
from densepose.errors import UserError

_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.SyncBatchNorm)


def param_groups(model: nn.Module, weight_decay: float, weight_decay_norm: float) -> list[dict]:
    """Trainable parameters in two groups: weights of conv/linear layers, and norm layers + biases.

    Decaying the scale/shift of normalisation layers and biases hurts more than it regularises,
    hence the separate (usually zero) decay.
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if isinstance(module, _NORM_TYPES) or name == "bias" or p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": weight_decay_norm})
    return groups


def build_optimizer(model: nn.Module, cfg: SolverConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over ``param_groups``; the lr is set every step by ``lr_factor``."""
    groups = param_groups(model, cfg.weight_decay, cfg.weight_decay_norm)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.base_lr, betas=tuple(cfg.betas))
    raise UserError(f"solver.optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")


def lr_factor(iteration: int, cfg: SolverConfig) -> float:
    """Multiplier of ``base_lr`` at ``iteration`` (0-based): linear warmup, then multistep or cosine.

    Warmup goes linearly from ``warmup_factor`` at iteration 0 to 1 at ``warmup_iters``, as in
    detectron2's ``WarmupMultiStepLR``; it multiplies the main schedule.
    """
    if cfg.schedule == "multistep":
        factor = cfg.gamma ** sum(1 for s in cfg.steps if iteration >= s)
    elif cfg.schedule == "cosine":
        t = min(iteration / max(cfg.max_iter, 1), 1.0)
        factor = cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
    else:
        raise UserError(f"solver.schedule must be 'multistep' or 'cosine', got {cfg.schedule!r}")
    if iteration < cfg.warmup_iters:
        alpha = iteration / cfg.warmup_iters
        factor *= cfg.warmup_factor * (1 - alpha) + alpha
    return factor


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
