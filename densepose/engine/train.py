"""The training loop: ``train(cfg)``.

One iteration = one batch of ``solver.ims_per_batch`` images per process. The learning rate is a
plain function of the iteration (``solver.lr_factor``), the data order a function of the number
of samples consumed (``SeededSampler``), so a checkpoint at iteration k plus the RNG states is
enough to continue exactly as if the run had never stopped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import math
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm import tqdm

from densepose.data.dataset import DensePoseDataset, build_train_loader, to_device
from densepose.data.transforms import AugmentConfig, TrainTransform
from densepose.engine import checkpoint as ckpt
from densepose.engine.config import TrainConfig, config_to_dict, dump_config
from densepose.engine.distributed import DistInfo, barrier, cleanup_distributed, init_distributed, reduce_mean
from densepose.engine.metrics import MetricsWriter, format_log_line
from densepose.engine.run_folder import create_run_folder
from densepose.engine.solver import build_optimizer, lr_factor, set_lr
from densepose.engine.start_weights import (
    check_start_weights,
    load_start_weights,
    with_resumed_settings,
    with_start_settings,
)
from densepose.errors import UserError
from densepose.modeling.model_file import read_model_file
from densepose.progress import on_terminal

log = logging.getLogger("densepose.train")

#: Parameter-name prefixes of the DensePose branch of `DensePoseRCNN` (both cascade stages).
DENSEPOSE_BRANCH = ("dp_", "cascade_fusion.")
#: ``evaluate(model, iteration) -> {metric: value}`` or None; called on rank 0 with the bare model.
EvalFn = Callable[[nn.Module, int], "dict[str, float] | None"]


def train(
    cfg: TrainConfig,
    resume: bool = False,
    model: nn.Module | None = None,
    dataset: Dataset | None = None,
    evaluate: EvalFn | None = None,
) -> nn.Module:
    """Train ``cfg`` into the run folder ``cfg.out``; returns the trained (unwrapped) model.

    ``model``, ``dataset`` and ``evaluate`` default to ``DensePoseRCNN(cfg.model)``, the dataset
    under ``cfg.data.root`` and the evaluator on ``cfg.data.val_root``; tests pass their own.
    With ``resume`` the newest checkpoint in ``cfg.out`` is loaded (none: a fresh start).
    """
    device = _pick_device(cfg.device)
    info = init_distributed(device.type)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        return _train(cfg, resume, model, dataset, evaluate, device, info)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        cleanup_distributed()


def _train(cfg, resume, model, dataset, evaluate, device, info: DistInfo) -> nn.Module:
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    run_dir = Path(cfg.out)
    last = ckpt.find_last(run_dir) if run_dir.is_dir() else None
    if last is not None and not resume:
        raise UserError(f"{run_dir}: already holds a run ({last.name}); pass --resume or choose another --out")
    # Every input is checked before the run folder is created: a mistake leaves nothing behind.
    amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(cfg.amp_dtype)
    if amp_dtype is None:
        raise UserError(f"amp_dtype must be 'bfloat16' or 'float16', got {cfg.amp_dtype!r}")
    state = ckpt.load_resume_state(last) if resume and last is not None else None
    start = read_model_file(cfg.weights) if cfg.weights and state is None else None
    saved_model = state["config"].get("model") if state is not None else None
    if isinstance(saved_model, dict) and model is None:  # e.g. a facing classifier from the run's start file
        cfg = dataclasses.replace(cfg, model=with_resumed_settings(cfg.model, saved_model))
    if start is not None and model is None:
        cfg = dataclasses.replace(cfg, model=with_start_settings(cfg.model, start))
        check_start_weights(cfg.model, start, cfg.weights)
    if dataset is None:  # bad data should fail before minutes of model building
        dataset = build_train_dataset(cfg)
    if evaluate is None and cfg.data.val_root:
        evaluate = default_evaluator(cfg, device)
    if info.is_main:
        create_run_folder(run_dir, dump_config(cfg))
        _log_to_file(run_dir / "log.txt")

    # Same seed on every rank for the model init (DDP also broadcasts rank 0's weights), then a
    # per-rank seed so that random choices inside the model differ between ranks.
    _seed_all(cfg.seed)
    if model is None:
        from densepose.modeling import DensePoseRCNN

        # A checkpoint or a start model file overwrites every weight: the backbone's init file (e.g.
        # the ImageNet weights of the `densepose[train]` extra) is then neither read nor needed.
        overwritten = state is not None or start is not None
        model = DensePoseRCNN(dataclasses.replace(cfg.model, backbone_weights=None) if overwritten else cfg.model)
    if start is not None:
        load_start_weights(model, start, cfg.weights)
    if cfg.train_only_densepose:
        frozen = freeze_all_but_densepose(model)
        log.info("train_only_densepose: %d detector tensors frozen", frozen)
    model.to(device)
    _seed_all(cfg.seed + 1000003 * info.rank)

    optimizer = build_optimizer(model, cfg.solver)
    use_amp = (cfg.amp and device.type == "cuda") or (cfg.cpu_amp and device.type == "cpu")
    if device.type == "cpu":
        amp_dtype = torch.bfloat16  # the only autocast type on CPU
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)

    start_iter = 0
    if state is not None:
        if state["data"]["world_size"] != info.world_size or state["data"]["ims_per_batch"] != cfg.solver.ims_per_batch:
            raise UserError(f"{last}: was written with {state['data']['world_size']} processes x "
                            f"{state['data']['ims_per_batch']} images; resume with the same setting")
        _restore(last, state, model, optimizer, scaler)
        start_iter = state["iteration"]
        log.info("resumed from %s at iteration %d", last, start_iter)
        changed = sorted(k for k, v in flatten_config(config_to_dict(cfg)).items()
                         if flatten_config(state.get("config", {})).get(k, v) != v)
        if changed:  # legitimate (e.g. a longer max_iter) but the run is then no longer "exact"
            log.warning("resumed with settings that differ from the checkpoint's: %s", ", ".join(changed))
    elif resume:
        log.info("--resume: no checkpoint in %s, starting from scratch", run_dir)

    ddp_model = model
    if info.enabled:
        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters,
        )
    batch = cfg.solver.ims_per_batch
    loader, sampler = build_train_loader(
        dataset, batch, cfg.seed, cfg.data.num_workers, info.rank, info.world_size, start=start_iter * batch,
    )
    data_iter = iter(loader)
    if state is not None:
        # After every object that might draw from the RNGs has been built.
        rngs = state["rng"]
        try:
            ckpt.set_rng_state(rngs[info.rank] if len(rngs) == info.world_size else rngs[0])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            raise UserError(f"{last}: cannot resume: its RNG state is damaged") from None

    writer = MetricsWriter(run_dir, start_iter) if info.is_main else None
    max_iter = cfg.solver.max_iter
    # A bar only on a terminal: in a log file (nohup, a cluster job) it is thousands of \r-joined
    # updates, and the periodic loss lines already give the iteration and the eta.
    bar = tqdm(total=max_iter, initial=start_iter, desc="train", disable=not info.is_main or not on_terminal(),
               dynamic_ncols=True)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype) if use_amp else contextlib.nullcontext()
    )
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    it = start_iter
    window: list[dict] = []
    t_last = time.perf_counter()
    while it < max_iter:
        lr = cfg.solver.base_lr * lr_factor(it, cfg.solver)
        set_lr(optimizer, lr)
        t0 = time.perf_counter()
        images, targets = next(data_iter)
        images = to_device(images, device, non_blocking=True)
        targets = to_device(targets, device, non_blocking=True)
        t_data = time.perf_counter() - t0

        with autocast:
            losses = ddp_model(images, targets)
        loss = sum(losses.values())
        # The step's figures in one host read, before the backward pass is queued: a read after it
        # would wait for the whole backward pass, and the next batch could not be prepared meanwhile.
        values = torch.stack([loss.detach(), *(v.detach() for v in losses.values())]).float().tolist()
        if not math.isfinite(values[0]):
            raise UserError(
                f"training diverged at iteration {it} ({', '.join(f'{k}={v:.3g}' for k, v in zip(losses, values[1:]))}); "
                "lower solver.base_lr or raise solver.warmup_iters"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        record = {"loss": values[0], **dict(zip(losses, values[1:])), "lr": lr, "data_time": t_data}
        if cfg.solver.clip_grad_norm > 0:
            scaler.unscale_(optimizer)
            # Kept on the device and read at the next log line, not now.
            record["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, cfg.solver.clip_grad_norm).detach()
        scaler.step(optimizer)
        scaler.update()
        it += 1
        window.append(record)

        if it % cfg.log_period == 0 or it == max_iter:
            now = time.perf_counter()
            metrics = {k: float(np.mean([float(r[k]) for r in window if k in r])) for k in window[-1]}
            metrics["lr"] = lr
            metrics["time"] = (now - t_last) / len(window)
            metrics = reduce_mean(metrics, info, device)
            metrics["images_per_s"] = batch * info.world_size * len(window) / max(now - t_last, 1e-9)
            if device.type == "cuda":
                metrics["max_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
            if writer is not None:
                writer.write(it, metrics)
                log.info(format_log_line(it, max_iter, metrics))
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", lr=f"{lr:.2g}")
            window, t_last = [], time.perf_counter()
        bar.update(1)

        if it % cfg.checkpoint_period == 0 or it == max_iter:
            _save(cfg, run_dir, it, model, optimizer, scaler, sampler, info)
        if evaluate is not None and ((cfg.eval_period and it % cfg.eval_period == 0) or it == max_iter):
            if info.is_main:
                model.eval()
                with torch.no_grad(), autocast:
                    results = evaluate(model, it)
                model.train()
                if results and writer is not None:
                    writer.write(it, {f"eval/{k}": v for k, v in results.items()})
                    headline = {k: round(v, 4) for k, v in results.items() if k.endswith("/AP")}
                    log.info("iteration %d evaluation (all in metrics.jsonl): %s", it, headline or results)
            barrier(info)
    bar.close()
    if writer is not None:
        writer.close()
    return model


def freeze_all_but_densepose(model: nn.Module) -> int:
    """Stop gradients to every parameter outside the DensePose branch; returns how many were frozen."""
    frozen = 0
    for name, p in model.named_parameters():
        if not name.startswith(DENSEPOSE_BRANCH) and p.requires_grad:
            p.requires_grad_(False)
            frozen += 1
    return frozen


def _restore(path: Path, state: dict, model: nn.Module, optimizer, scaler) -> None:
    """Load a checked resume state; a checkpoint of another model or optimizer is a one-line error."""
    for what, target in (("model", model), ("optimizer", optimizer), ("scaler", scaler)):
        try:
            target.load_state_dict(state[what])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: cannot resume: its {what} state does not fit this run "
                            f"({str(exc).splitlines()[0][:200]})") from None


def build_train_dataset(cfg: TrainConfig) -> DensePoseDataset:
    """The training set of ``cfg.data`` with the training transform (flip needs the body surface)."""
    d = cfg.data
    if not d.root:
        raise UserError("no training data: pass --data DIR (or set data.root)")
    root = dataset_folder(Path(d.root), d.annotations, "train")
    if not d.val_root and (Path(d.root) / "val" / d.annotations).is_file():
        log.info("found %s; pass data.val_root=%s to evaluate on it", Path(d.root) / "val", Path(d.root) / "val")
    surface = None
    if d.flip_prob > 0:
        from densepose.surface import load_surface

        surface = load_surface(d.surface)
    aug = AugmentConfig(d.min_sizes, d.max_size, d.flip_prob, d.brightness, d.contrast, d.saturation, d.hue,
                        d.zoom_prob, tuple(d.zoom_fill), d.grayscale_prob, d.low_res_prob, tuple(d.low_res_scale))
    with_masks = d.with_masks or cfg.model.mask_on  # a mask head needs the instance masks
    return DensePoseDataset(root / d.images, root / d.annotations, TrainTransform(aug, surface), d.skip_empty, with_masks)


def dataset_folder(root: Path, annotations: str, split: str) -> Path:
    """``root`` if it holds the annotation file, else ``root/<split>`` (``densepose synth`` with a split)."""
    if (root / annotations).is_file():
        return root
    if (root / split / annotations).is_file():
        return root / split
    raise UserError(f"{root}: no {annotations} here nor in {root / split}")


def default_evaluator(cfg: TrainConfig, device: torch.device) -> EvalFn | None:
    """Periodic evaluation on ``cfg.data.val_root`` through ``densepose.evaluation.evaluate_model``.

    ``evaluate_model(model, image_dir, annotations, surface, device, max_images, progress) -> dict``
    (nested metrics); arguments it does not declare are not passed. Without it: a logged note.
    """
    try:
        from densepose.evaluation import evaluate_model
    except ImportError:
        log.warning("densepose.evaluation.evaluate_model is not available: skipping periodic evaluation")
        return None
    root = dataset_folder(Path(cfg.data.val_root), cfg.data.annotations, "val")
    offered = {"image_dir": root / cfg.data.images, "annotations": root / cfg.data.annotations,
               "surface": cfg.data.surface, "device": device, "progress": False,
               "max_images": cfg.data.val_max_images or None}
    params = inspect.signature(evaluate_model).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_all or k in params}

    def run(model: nn.Module, iteration: int) -> dict[str, float] | None:
        results = evaluate_model(model, **kwargs)
        # The AP tables; counts, warnings and curves stay in the evaluator's own outputs.
        return flatten_metrics({k: results[k] for k in ("densepose", "coco") if k in results})

    return run


def flatten_metrics(results, prefix: str = "") -> dict[str, float]:
    """Nested dict of results -> ``{"a/b/c": number}`` keeping only finite numbers."""
    out: dict[str, float] = {}
    if isinstance(results, dict):
        for k, v in results.items():
            out.update(flatten_metrics(v, f"{prefix}{k}/"))
    elif isinstance(results, (int, float)) and not isinstance(results, bool) and np.isfinite(results):
        out[prefix.rstrip("/")] = float(results)
    return out


def _save(cfg, run_dir: Path, it: int, model, optimizer, scaler, sampler, info: DistInfo) -> None:
    rngs = ckpt.rng_state()
    if info.enabled:
        gathered: list = [None] * info.world_size
        torch.distributed.all_gather_object(gathered, rngs)
        rngs = gathered
    else:
        rngs = [rngs]
    if info.is_main:
        name = f"model_{it:07d}.pt"
        ckpt.save_checkpoint(run_dir / name, {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": {"iteration": it, "base_lr": cfg.solver.base_lr, "schedule": cfg.solver.schedule},
            "scaler": scaler.state_dict(),
            "rng": rngs,
            "data": {**sampler.state(it * cfg.solver.ims_per_batch), "world_size": info.world_size,
                     "ims_per_batch": cfg.solver.ims_per_batch},
            "iteration": it,
            "config": config_to_dict(cfg),
        })
        ckpt.write_last(run_dir, name)
        if cfg.keep_checkpoints > 0:
            for old in sorted(run_dir.glob("model_*.pt"))[: -cfg.keep_checkpoints]:
                old.unlink()
    barrier(info)


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> ``{"a.b": value}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _log_to_file(path: Path) -> None:
    logger = logging.getLogger("densepose")
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()) for h in logger.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
