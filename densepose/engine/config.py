"""Training configuration: dataclasses, loaded from YAML, with typed ``key.sub=value`` overrides.

A YAML file mirrors ``TrainConfig``; ``model_preset`` ("light", "r50_fpn", or "tiny" for tests) picks the
``ModelConfig`` the ``model:`` section is applied on. Every value is converted to the type the
dataclass declares, and an unknown key is a ``UserError`` that lists the close matches.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from densepose.errors import UserError


def model_presets() -> dict[str, typing.Callable[[], Any]]:
    """Preset name -> function returning a ``densepose.modeling.ModelConfig``."""
    from densepose.modeling import efficientnet_lite_config, light_config, r50_fpn_config, tiny_config

    return {"light": light_config, "r50_fpn": r50_fpn_config, "tiny": tiny_config,
            "light_effnet": efficientnet_lite_config}


def _default_model() -> Any:
    return model_presets()["light"]()


@dataclass
class DataConfig:
    root: str = ""  # dataset folder: <root>/<annotations> and <root>/<images>/
    annotations: str = "annotations.json"
    images: str = "images"
    val_root: str = ""  # dataset for periodic evaluation ("" = none)
    val_max_images: int = 0  # evaluate on the first N images only (0 = all)
    num_workers: int = 2
    skip_empty: bool = True  # drop training images without people
    with_masks: bool = False  # decode instance masks (only for a mask head)
    surface: str = "anny"  # body surface whose symmetry drives the chart-aware flip
    # Loader-side multi-scale resize; empty = leave it to the model (ModelConfig.min_size_train),
    # which resizes on the device. Set it to shrink big images before they are sent there.
    min_sizes: list[int] = field(default_factory=list)
    max_size: int = 1333
    flip_prob: float = 0.5
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    zoom_prob: float = 0.0  # chance of a zoom-in crop that makes one person large (portraits)
    zoom_fill: list[float] = field(default_factory=lambda: [0.6, 2.5])  # person height / crop height
    grayscale_prob: float = 0.0  # chance of a greyscale image (black-and-white photos, infrared cameras)
    low_res_prob: float = 0.0  # chance of a low-resolution copy: shrunk and enlarged back (small photos)
    low_res_scale: list[float] = field(default_factory=lambda: [0.35, 0.75])  # the shrink factor's range


@dataclass
class SolverConfig:
    optimizer: str = "sgd"  # sgd | adamw
    base_lr: float = 0.01
    momentum: float = 0.9
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0  # for normalisation layers and biases
    schedule: str = "multistep"  # multistep | cosine
    steps: list[int] = field(default_factory=lambda: [100000, 120000])
    gamma: float = 0.1
    min_lr_factor: float = 0.0  # cosine floor, as a fraction of base_lr
    warmup_iters: int = 1000
    warmup_factor: float = 0.1
    max_iter: int = 130000
    ims_per_batch: int = 2  # per process
    clip_grad_norm: float = 0.0  # 0 = no clipping


@dataclass
class TrainConfig:
    model_preset: str = "light"
    model: Any = field(default_factory=_default_model)  # a densepose.modeling.ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    out: str = "runs/train"
    weights: str = ""  # model file to start from (fine-tuning), e.g. densepose/assets/model_light.pt
    # Train the DensePose branch only (decoder, head, predictor): the trunk, FPN, RPN and box head keep
    # the start weights, so a fine-tuned model detects exactly the people the start model detected.
    train_only_densepose: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # autocast on CUDA only (ignored on CPU)
    # bf16 autocast on CPU: ~1.6x faster steps on CPUs with AVX512-BF16 or AMX, slower elsewhere.
    cpu_amp: bool = False
    amp_dtype: str = "bfloat16"  # bfloat16 | float16 (float16 adds a GradScaler)
    # torch.use_deterministic_algorithms: needed for bit-exact reruns/resumes of DensePoseRCNN
    # with more than one CPU thread (its scatter-adds are otherwise order-dependent); slower on GPU.
    deterministic: bool = False
    find_unused_parameters: bool = False  # DDP, for models whose graph varies between steps
    log_period: int = 20
    checkpoint_period: int = 1000
    keep_checkpoints: int = 3  # older model_*.pt files are deleted (0 = keep all)
    eval_period: int = 0  # 0 = evaluate only at the end (when data.val_root is set)


# ----------------------------------------------------------------------------- loading
def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """YAML file (optional) + ``key.sub=value`` overrides -> ``TrainConfig``.

    Raises:
        UserError: unreadable file, unknown key (with suggestions), or a value of the wrong type.
    """
    raw: dict = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise UserError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: top level must be a mapping")
    parsed = [split_override(o) for o in overrides]
    preset = raw.get("model_preset", TrainConfig.model_preset)
    for key, value in parsed:
        if key == "model_preset":
            preset = value
    presets = model_presets()
    if preset not in presets:
        raise UserError(f"{where}: model_preset must be one of {', '.join(presets)}, got {preset!r}")
    cfg = TrainConfig(model=presets[preset]())
    apply_dict(cfg, raw, where)
    for key, value in parsed:
        set_value(cfg, key, value, "override")
    return cfg


def apply_dict(obj: Any, values: dict, where: str, prefix: str = "") -> None:
    """Recursively set dataclass ``obj``'s fields from a nested dict (typed, with key checks)."""
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        current = _get_field(obj, str(key), dotted, where)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            apply_dict(current, value, where, dotted + ".")
        else:
            setattr(obj, key, _coerce(value, _field_type(obj, key), f"{where}: {dotted}"))


def set_value(cfg: Any, dotted: str, text: str, where: str = "override") -> None:
    """Set ``a.b.c`` from a command-line string, converted to the declared type."""
    parts = dotted.split(".")
    obj = cfg
    for i, name in enumerate(parts[:-1]):
        obj = _get_field(obj, name, ".".join(parts[: i + 1]), where)
        if not dataclasses.is_dataclass(obj):
            raise UserError(f"{where}: {'.'.join(parts[: i + 1])} is not a section")
    name = parts[-1]
    _get_field(obj, name, dotted, where)
    typ = _field_type(obj, name)
    value = text if typ is str else _parse_text(text, dotted, where)
    setattr(obj, name, _coerce(value, typ, f"{where}: {dotted}"))


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict (for YAML dumps and checkpoints)."""
    return dataclasses.asdict(cfg)


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def all_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a (nested) dataclass instance."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(all_keys(value, f"{prefix}{f.name}."))
    return keys


# ----------------------------------------------------------------------------- internals
def split_override(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserError(f"override {text!r} must look like key.sub=value")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _parse_text(text: str, dotted: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"{where}: cannot parse value {text!r} of {dotted}") from None


def _get_field(obj: Any, name: str, dotted: str, where: str) -> Any:
    """``getattr(obj, name)`` for a declared field, else a ``UserError`` with close matches."""
    if name not in {f.name for f in dataclasses.fields(obj)}:
        prefix = dotted[: len(dotted) - len(name)]
        candidates = [prefix + k for k in all_keys(obj)]
        close = difflib.get_close_matches(dotted, candidates, n=4, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; keys here: {', '.join(k for k in candidates if k.count('.') == dotted.count('.'))}"
        raise UserError(f"{where}: unknown key {dotted!r}{hint}")
    return getattr(obj, name)


def _field_type(obj: Any, name: str) -> Any:
    hints = typing.get_type_hints(type(obj))
    typ = hints.get(name, Any)
    if typ is Any:
        # Untyped (e.g. TrainConfig.model): keep the type of the current value.
        current = getattr(obj, name)
        return type(current) if current is not None else Any
    return typ


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert a YAML value to ``typ`` or raise ``UserError``."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"{where}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple) or typ in (list, tuple):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and origin is not None:
            value = [value]  # `steps=1000` means [1000]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise UserError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, where) for v in value]
        return tuple(items) if (origin is tuple or typ is tuple) else items
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        obj = typ()
        apply_dict(obj, value, where.split(": ")[0], where.split(": ", 1)[-1] + ".")
        return obj
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise UserError(f"{where}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            try:
                return int(str(value))
            except ValueError:
                raise UserError(f"{where}: expected an integer, got {value!r}") from None
        return int(value)
    if typ is float:
        if isinstance(value, bool):
            raise UserError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)  # also '1e-3', which YAML 1.1 reads as a string
        except (TypeError, ValueError):
            raise UserError(f"{where}: expected a number, got {value!r}") from None
    if typ is str:
        if isinstance(value, (dict, list)):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if isinstance(typ, type) and not isinstance(value, typ):
        raise UserError(f"{where}: expected {typ.__name__}, got {value!r}")
    return value
