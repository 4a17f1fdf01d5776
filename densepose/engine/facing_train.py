"""Give a model file the facing classifier (`densepose.modeling.facing`), trained on renders.

    densepose train-facing densepose/assets/model_light.pt --data data/synth_a --out model_facing.pt

Steps: every annotated person of the ``densepose synth`` folders at least ``min_height`` pixels
tall is cut out of its image (and its mirror image: facing does not change under a flip), at its
annotated box and at ``jittered_copies`` boxes drawn around it as the detector's boxes lie
around the annotated ones (`jitter_boxes`: inference reads the detector's boxes); its
label is the share of its torso points on the torso's front (``dp_I`` 2 of 1 and 2); the
ImageNet Lite0 stages of the classifier (``densepose[train]``) turn each crop into C4 features
once; the small head is trained on them with a soft binary cross-entropy (images whose id is a
multiple of 10 are held out and reported); the chart ratios ``P(chart | facing) / P(chart)`` are
counted from the same people's points, per column of their boxes. The result is the input model file with
``facing_on=true`` and these weights: nothing else changes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densepose.data.synth_folders import read_synth_folders
from densepose.engine.export import write_model_file
from densepose.errors import UserError
from densepose.io.images import load_image
from densepose.modeling.efficientnet_lite import packaged_weights_path, read_efficientnet_weights, split_classifier_keys
from densepose.modeling.facing import FACING_CROP, RATIO_COLUMNS, FacingClassifier, image_person_crops
from densepose.modeling.model_file import read_model_file
from densepose.modeling.rcnn import DensePoseRCNN
from densepose.surface.parts import NUM_CHARTS

TORSO_BACK, TORSO_FRONT = 1, 2
#: A person needs this many torso points for a facing label.
MIN_TORSO_POINTS = 4
#: Spread of the detector's boxes around the annotated ones: standard deviations of the centre's
#: shift (fraction of the width, of the height) and of the log of the width and height ratios.
#: Measured for the bundled model's detections (score >= 0.5, box IoU >= 0.5; 349 of them) on
#: 200 held-out renders (``densepose synth --seed 999``).
BOX_JITTER_STD = (0.08, 0.05, 0.2, 0.12)


@dataclass
class FacingPeople:
    """People of the training folders: ``boxes`` (N, 4) xyxy, ``labels`` (N,) torso-front share,
    ``charts`` (N, RATIO_COLUMNS, 25) point counts per box column and chart, ``image`` (N,) index
    into ``files``, ``image_ids`` (N,)."""

    files: list[Path]
    boxes: np.ndarray
    labels: np.ndarray
    charts: np.ndarray
    image: np.ndarray
    image_ids: np.ndarray


def torso_front_share(dp_i: Sequence[float]) -> float | None:
    """Share of a person's torso points on the front; None below ``MIN_TORSO_POINTS`` torso points."""
    parts = np.asarray(dp_i, dtype=np.int64)
    front, back = int((parts == TORSO_FRONT).sum()), int((parts == TORSO_BACK).sum())
    return front / (front + back) if front + back >= MIN_TORSO_POINTS else None


def chart_counts(dp_i: Sequence[float], dp_x: Sequence[float]) -> np.ndarray:
    """(RATIO_COLUMNS, 25) a person's point counts per box column (``dp_x`` 0..256 across the box) and chart."""
    column = np.clip(np.asarray(dp_x, dtype=np.float64) * RATIO_COLUMNS / 256, 0, RATIO_COLUMNS - 1).astype(np.int64)
    flat = column * (NUM_CHARTS + 1) + np.asarray(dp_i, dtype=np.int64)
    return np.bincount(flat, minlength=RATIO_COLUMNS * (NUM_CHARTS + 1)).reshape(RATIO_COLUMNS, NUM_CHARTS + 1)


def read_people(folders: Sequence[str | Path], min_height: float = 40.0) -> FacingPeople:
    """The labelled people of ``densepose synth`` folders (``annotations.json`` + ``images/``)."""
    renders = read_synth_folders(folders)
    kept = [p for p in renders.people if not p.crowd and p.height >= min_height]
    shares = [torso_front_share(p.annotation.get("dp_I", ())) for p in kept]
    kept, labels = [p for p, s in zip(kept, shares) if s is not None], [s for s in shares if s is not None]
    if not labels:
        raise UserError(f"no person with {MIN_TORSO_POINTS}+ torso points and {min_height}+ pixels in {list(folders)}")
    return FacingPeople(renders.files, np.asarray([p.box for p in kept], np.float32), np.asarray(labels, np.float32),
                        np.stack([chart_counts(p.annotation["dp_I"], p.annotation["dp_x"]) for p in kept]
                                 ).astype(np.float64),
                        np.asarray([p.image for p in kept]), np.asarray([renders.image_ids[p.image] for p in kept]))


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 4) xyxy boxes -> (N, 4) boxes with centres shifted and sides scaled at random, as
    ``BOX_JITTER_STD`` says the detector's boxes differ from the annotated ones (normal draws)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    shift_x, shift_y, log_w, log_h = (rng.normal(0.0, s, len(boxes)) for s in BOX_JITTER_STD)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + shift_x * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + shift_y * h
    w, h = w * np.exp(log_w), h * np.exp(log_h)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def chart_ratio(charts: np.ndarray, labels: np.ndarray) -> Tensor:
    """(N, B, 25) point counts, (N,) torso-front shares -> (2, B, 25) ``P(chart | away, column),
    P(chart | camera, column)`` over ``P(chart | column)`` (people with a share > 0.5 face the
    camera); chart 0 is 1."""
    def freq(rows: np.ndarray) -> np.ndarray:
        counts = rows[:, :, 1:].sum(0) + 1.0  # +1: a chart never seen keeps a finite ratio
        return counts / counts.sum(1, keepdims=True)

    camera = labels > 0.5
    if camera.all() or not camera.any():
        raise UserError("the chart ratios need people facing the camera and people facing away")
    overall = freq(charts)
    ratio = np.ones((2,) + charts.shape[1:])
    ratio[0, :, 1:] = freq(charts[~camera]) / overall
    ratio[1, :, 1:] = freq(charts[camera]) / overall
    return torch.tensor(ratio, dtype=torch.float32)


@torch.no_grad()
def crop_features(features: Callable[[Tensor], Tensor], files: Sequence[Path], boxes: np.ndarray, image: np.ndarray,
                  batch: int = 64, log: Callable[[str], None] = print, log_every: int = 2000,
                  size: tuple[int, int] = FACING_CROP) -> tuple[Tensor, Tensor]:
    """``features`` (crops (B, 3, *size) -> (B, C, h, w); a classifier's, in eval mode) of the
    crop of every box and of its mirror image (float16).

    Args:
        files: image paths; boxes: (N, 4) xyxy in their pixels; image: (N,) index into ``files``.
    """
    feats, mirrored = [], []
    order = np.argsort(image, kind="stable")
    crops, done, logged = [], 0, 0

    def flush():
        nonlocal crops
        x = torch.cat(crops)
        feats.append(features(x).half())
        mirrored.append(features(x.flip(-1)).half())
        crops = []

    for img_index in np.unique(image):
        rows = order[image[order] == img_index]
        pixels = torch.tensor(load_image(files[img_index])[0]).permute(2, 0, 1)
        crops.append(image_person_crops(pixels, torch.from_numpy(boxes[rows]), size))
        done += len(rows)
        if sum(len(c) for c in crops) >= batch:
            flush()
            if done - logged >= log_every:
                log(f"features: {done}/{len(order)} crops")
                logged = done
    if crops:
        flush()
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    back = torch.from_numpy(inverse)
    return torch.cat(feats)[back], torch.cat(mirrored)[back]


def train_head(head: nn.Module, logits: Callable[[Tensor], Tensor], feats: Tensor, mirrored: Tensor, labels: Tensor,
               epochs: int = 12, lr: float = 1e-3, seed: int = 0, log: Callable[[str], None] = print) -> None:
    """Train ``head`` (the parameters of ``logits``: C4 features (B, 112, 12, 6) -> (B,) logits)
    with a soft-label BCE on precomputed features (both mirror images), AdamW, batch 128."""
    g = torch.Generator().manual_seed(seed)
    head.requires_grad_(True).train()
    opt = torch.optim.AdamW(head.parameters(), lr, weight_decay=1e-2)
    x_all, y_all = torch.cat([feats, mirrored]), torch.cat([labels, labels])
    for epoch in range(epochs):
        perm = torch.randperm(len(x_all), generator=g)
        total = 0.0
        for i in range(0, len(perm), 128):
            idx = perm[i:i + 128]
            loss = F.binary_cross_entropy_with_logits(logits(x_all[idx].float()), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(perm):.3f}")
    head.eval().requires_grad_(False)


def read_right(logits: Tensor, labels: Tensor) -> float:
    """Share of the people clearly facing one way (torso-front share > 0.75 or < 0.25) whose (N,)
    facing logits are on the side of their (N,) labels."""
    clear = (labels > 0.75) | (labels < 0.25)
    return float(((logits > 0) == (labels > 0.5))[clear].float().mean()) if clear.any() else float("nan")


@torch.no_grad()
def accuracy(classifier: FacingClassifier, feats: Tensor, labels: Tensor) -> float:
    """`read_right` of the classifier's Lite0 heads on people's crops (``feats`` their C4 features)."""
    return read_right(classifier.lite0_logits(feats.float()), labels)


def train_facing(model_path: str | Path, folders: Sequence[str | Path], out: str | Path, epochs: int = 12,
                 min_height: float = 40.0, seed: int = 0, jittered_copies: int = 0,
                 log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``model_path`` with a trained facing classifier, trained on
    each person's annotated box and ``jittered_copies`` boxes around it (`jitter_boxes`); returns its meta."""
    if jittered_copies < 0:  # checked before the model, the ImageNet weights and the people are read
        raise UserError(f"jittered copies must be 0 or more, got {jittered_copies}")
    start = time.time()
    source = read_model_file(model_path)
    config = replace(source.config, facing_on=True)
    model = DensePoseRCNN(config)
    # The Lite0 classifier is trained anew; heads on MoveNet's trunk (train-facing --movenet-trunk) are kept.
    own = {k: v for k, v in source.weights.items()
           if not k.startswith(("facing.", "facing_chart_ratio")) or k.startswith("facing.people.")}
    missing = model.load_state_dict(own, strict=False).missing_keys
    assert all(k.startswith(("facing.", "facing_chart_ratio")) for k in missing), missing  # the file was checked
    trunk, _ = split_classifier_keys(read_efficientnet_weights(packaged_weights_path()))
    wanted = model.facing.state_dict()
    missing = model.facing.load_state_dict({k: v for k, v in trunk.items() if k in wanted}, strict=False).missing_keys
    absent = [k for k in missing if not k.startswith(("head.", "people."))]  # the head is what is trained here
    if absent:
        raise UserError(f"EfficientNet weights: no {absent[0]!r} for the facing classifier")
    people = read_people(folders, min_height)
    log(f"{len(people.labels)} people in {len(np.unique(people.image))} images")
    rng = np.random.default_rng(seed)
    boxes = [people.boxes] + [jitter_boxes(people.boxes, rng) for _ in range(jittered_copies)]
    copies = [crop_features(model.facing.eval().features, people.files, b, people.image, log=log) for b in boxes]
    labels = torch.from_numpy(people.labels)
    held = torch.from_numpy(people.image_ids % 10 == 0)
    torch.manual_seed(seed)
    train_head(model.facing.head, model.facing.lite0_logits, torch.cat([f[~held] for f, _ in copies]),
               torch.cat([m[~held] for _, m in copies]), labels[~held].repeat(len(copies)), epochs, seed=seed, log=log)
    val = accuracy(model.facing, copies[0][0][held], labels[held])
    model.facing_chart_ratio.copy_(chart_ratio(people.charts, people.labels))
    log(f"held-out people read right: {val:.3f}")
    val_jittered = None
    if jittered_copies:
        val_jittered = accuracy(model.facing, copies[1][0][held], labels[held])
        log(f"held-out people read right from a jittered box: {val_jittered:.3f}")
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    record = {"data": [str(f) for f in folders], "people": int(len(labels)), "held_out_accuracy": round(val, 4),
              "epochs": epochs, "jittered_copies": jittered_copies}
    if val_jittered is not None:
        record["held_out_accuracy_jittered"] = round(val_jittered, 4)
    meta = {**source.meta, "facing": record}
    meta = write_model_file(out, config.to_dict(), weights, meta, str(model_path))
    log(f"wrote {out} in {time.time() - start:.0f} s")
    return meta
