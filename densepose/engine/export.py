"""Turn a training checkpoint into a model file: ``{"config": ModelConfig dict, "model": state_dict}``.

A model file is what ``densepose predict --model``, ``densepose.load(path)`` and the bundled
``densepose/assets/model_light.pt`` hold: no optimizer, RNG or data state, and it loads with
``torch.load(weights_only=True)``. ``meta`` records where it came from (run, iteration). The
checkpoint is read as data and checked like a model file (`densepose.modeling.model_file`), so
what is written loads; ``backbone_weights`` is cleared (the weights are in the file).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Sequence

import torch

from densepose.cache import atomic_write_bytes
from densepose.engine import checkpoint as ckpt
from densepose.errors import UserError
from densepose.engine.config import set_value, split_override
from densepose.modeling.model_file import model_config_from_dict, model_file_from_dict


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its newest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        last = ckpt.find_last(path)
        if last is None:
            raise UserError(f"{path}: run folder without checkpoints")
        return last
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint or run folder")
    return path


def export_model(checkpoint: str | Path, out: str | Path, test_sizes: Sequence[int] | None = None,
                 settings: Sequence[str] = (), log: Callable[[str], None] = print, half: bool = False) -> dict:
    """Write the model file of ``checkpoint`` (file, run folder, or a model file) to ``out``; returns its ``meta``.

    ``test_sizes``: the shorter sides the model file tests at (the first is ``min_size_test``, the
    others ``extra_test_sizes``); default: those of the run's config. ``settings``: ``key=value``
    strings that set fields of the model config (``ModelConfig``), e.g. ``drop_group_boxes=true``;
    the weights must still fit it, except those of a part a setting turns off (``head_ruler_on=false``,
    ``facing_on=false``), which are left out and said so through ``log``. ``half``: store every
    float weight as float16 (`stored_small`).
    """
    src = resolve_checkpoint(checkpoint)
    state = ckpt.load_checkpoint(src)
    config = state.get("config")
    is_model_file = isinstance(state.get("meta"), dict)
    source_meta = state["meta"] if is_model_file else {}
    if is_model_file and isinstance(config, dict) and "model" not in config:
        config = {"model": config}  # a model file: written again, e.g. with other test sizes
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise UserError(f"{src}: not a `densepose train` checkpoint (needs 'model' and 'config.model')")
    weights = {k: v.detach().cpu().contiguous() if isinstance(v, torch.Tensor) else v for k, v in state["model"].items()}
    model_config = dict(config["model"])
    if test_sizes:
        model_config["min_size_test"], model_config["extra_test_sizes"] = test_sizes[0], list(test_sizes[1:])
    if settings:
        before, model_config = model_config, _with_settings(model_config, settings, str(src))
        weights = _with_small_flip_tables(model_config, weights, log)
        dropped = _weights_turned_off(before, model_config, weights)
        if dropped:
            weights = {k: v for k, v in weights.items() if k not in dropped}
            parts = sorted({k.split(".")[0] for k in dropped})
            log(f"left out {len(dropped)} weight(s) of what the settings turn off: {', '.join(parts)}")
    iteration = state.get("iteration", source_meta.get("iteration", -1))
    # A model file written again keeps the checkpoint it came from as its source, and the record of
    # what was added to it after training (``facing``, ``person_check``).
    meta = {**source_meta, "source": str(source_meta.get("source") or src),
            "iteration": iteration if isinstance(iteration, int) else -1,
            "model_preset": str(config.get("model_preset") or source_meta.get("model_preset", ""))}
    return write_model_file(out, model_config, weights, meta, str(src), half)


def export_onto(checkpoint: str | Path, onto: str | Path, out: str | Path, densepose_only: bool = False) -> dict:
    """Write the model file ``onto`` again with weights taken from ``checkpoint`` (file or run folder
    of a run started from ``onto``): all of them, or with ``densepose_only`` its DensePose branch
    (`DENSEPOSE_BRANCH` weights, e.g. of a ``train_only_densepose`` run). The file's config and
    settings (test sizes, thresholds, box rules) and every weight not taken stay as they are; the
    taken weights must be exactly the file's (names), or it is an error. Returns the new file's ``meta``."""
    from densepose.engine.train import DENSEPOSE_BRANCH
    from densepose.modeling.model_file import read_model_file

    src = resolve_checkpoint(checkpoint)
    state = ckpt.load_checkpoint(src)
    base = read_model_file(onto)
    prefixes = DENSEPOSE_BRANCH if densepose_only else ("",)
    taken = {k: v for k, v in state["model"].items() if k.startswith(prefixes)}
    wanted = {k for k in base.weights if k.startswith(prefixes)}
    what = "DensePose branch does" if densepose_only else "weights do"
    if not taken or taken.keys() != wanted:
        extra, missing = sorted(taken.keys() - wanted), sorted(wanted - taken.keys())
        raise UserError(f"{src}: its {what} not fit {onto} ({len(missing)} of its tensors missing, "
                        f"{len(extra)} unknown; first: {(missing or extra or ['none at all'])[0]})")
    weights = {**base.weights, **{k: v.detach().cpu().to(base.weights[k].dtype).contiguous() for k, v in taken.items()}}
    iteration = state.get("iteration", -1)
    key = "densepose_branch" if densepose_only else "weights_from"
    meta = {**base.meta, key: {"source": str(src), "iteration": iteration if isinstance(iteration, int) else -1}}
    return write_model_file(out, base.config.to_dict(), weights, meta, str(src))


def write_model_file(out: str | Path, model_config: dict, weights: dict[str, torch.Tensor], meta: dict,
                     where: str, half: bool = False) -> dict:
    """Check ``model_config`` and ``weights`` as a model file is checked when read (``where`` names
    their source in errors), then write them with ``meta`` and its parameter count to ``out``
    atomically; returns that meta. Weights are stored as `stored_small` keeps them (``half``:
    every float weight rounded to float16)."""
    checked = model_file_from_dict({"config": model_config, "model": weights}, where)
    meta = {**meta, "parameters": int(sum(v.numel() for v in checked.weights.values() if v.is_floating_point()))}
    buf = io.BytesIO()
    stored = stored_once(stored_small(checked.weights, half))
    torch.save({"config": checked.config.to_dict(), "model": stored, "meta": meta}, buf)
    atomic_write_bytes(out, buf.getvalue())
    return meta


def stored_small(weights: dict[str, torch.Tensor], half: bool = False) -> dict[str, torch.Tensor]:
    """``weights`` with each float32 tensor that float16 holds exactly stored as float16 (half the
    bytes, the same values once read back as float32: MoveNet's weights came as float16); with
    ``half``, every float32 tensor within float16's range rounded to it (a relative error of at
    most 2^-11, finer than the bfloat16 the CPU computes in by default)."""
    out = {}
    for name, value in weights.items():
        if value.dtype == torch.float32 and value.numel():
            small = value.to(torch.float16)
            exact = torch.equal(small.float(), value)
            if exact or (half and bool(torch.isfinite(small).all())):
                value = small
        out[name] = value
    return out


def stored_once(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` with every tensor equal to an earlier one (dtype, shape and values) replaced by
    that one, so that ``torch.save`` writes its values once: the facing classifier's crop trunk is
    the detector's frozen ImageNet stem..C4, 2.9 MB a file would otherwise hold twice. Readers get
    the same names and values (``check_weights`` gives each name its own tensor again)."""
    first: dict[tuple, torch.Tensor] = {}
    out = {}
    for name, value in weights.items():
        raw = value.detach().cpu().contiguous().flatten().view(torch.uint8)
        key = (value.dtype, tuple(value.shape), hash(raw.numpy().tobytes()))
        seen = first.setdefault(key, value)
        out[name] = seen if seen is value or torch.equal(seen, value) else value
    return out


def _weights_turned_off(before: dict, after: dict, weights: dict) -> set[str]:
    """Names in ``weights`` that the model of config ``before`` has and that of ``after`` does not
    (a part switched off by a setting); empty when either config does not build (the model file
    check then says why)."""
    from densepose.modeling.rcnn import DensePoseRCNN

    try:
        with torch.device("meta"):  # names only: nothing is allocated
            had, has = (DensePoseRCNN(model_config_from_dict(c, "export --set")).state_dict().keys()
                        for c in (before, after))
    except (UserError, ValueError, KeyError, TypeError, RuntimeError):
        return set()
    return {k for k in weights if k in had and k not in has}


def _with_settings(model_config: dict, settings: Sequence[str], where: str) -> dict:
    """``model_config`` with ``key=value`` strings applied (types and names checked as for training overrides)."""
    cfg = model_config_from_dict(model_config, where)
    for text in settings:
        key, value = split_override(text)
        set_value(cfg, key, value, where="export --set")
    return cfg.to_dict()


def _with_small_flip_tables(model_config: dict, weights: dict, log: Callable[[str], None]) -> dict:
    """``weights`` with the small flip tables (``zoom_flip_uv``) of the Anny chart when the settings
    turn on ``dp_zoom_flip`` and the weights have none (turned off, `_weights_turned_off` leaves them out)."""
    if not model_config.get("dp_zoom_flip") or "zoom_flip_uv" in weights:
        return weights
    from densepose.modeling.flip_test import flip_tables
    from densepose.modeling.zoom import small_flip_tables

    log("dp_zoom_flip: the anny chart's flip tables added (zoom_flip_uv)")
    return {**weights, "zoom_flip_uv": small_flip_tables(flip_tables("anny"))}
