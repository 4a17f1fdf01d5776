"""Give a model file's facing classifier heads on a people-trained trunk (`densepose.modeling.facing_people`).

    densepose train-facing densepose/assets/model_light.pt --data data/synth_a data/synth_b \\
        --movenet-trunk package/models/movenet-lightning.json --members 2 --out model_people.pt

The people of the ``densepose synth`` folders are cut out and labelled as for the first heads
(`densepose.engine.facing_train`: the share of their torso points on its front, each crop and its
mirror image, optionally jittered boxes); MoveNet Lightning's trunk, read from its TF.js graph,
turns each crop into C4 features once; ``members`` heads are trained on them, each from its own
seed. The file's Lite0 heads, chart ratios and everything else are kept; any people heads it had
are replaced. The model file then carries the trunk's weights: inference needs nothing more.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from densepose.engine.export import write_model_file
from densepose.engine.facing_heads import MAX_FACING_MEMBERS
from densepose.engine.facing_train import crop_features, jitter_boxes, read_people, read_right, train_head
from densepose.errors import UserError
from densepose.modeling.facing_people import PEOPLE_CROP, load_movenet_trunk
from densepose.modeling.model_file import read_model_file
from densepose.modeling.rcnn import DensePoseRCNN


def train_people_heads(model_path: str | Path, folders: Sequence[str | Path], movenet_json: str | Path,
                       out: str | Path, members: int = 2, epochs: int = 12, min_height: float = 40.0, seed: int = 0,
                       jittered_copies: int = 0, log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``model_path`` with ``members`` facing heads on MoveNet
    Lightning's crop features (the module docstring); returns its meta."""
    if not 1 <= members <= MAX_FACING_MEMBERS:
        raise UserError(f"people heads: give 1 to {MAX_FACING_MEMBERS}, not {members}")
    if jittered_copies < 0:
        raise UserError(f"jittered copies must be 0 or more, got {jittered_copies}")
    start = time.time()
    source = read_model_file(model_path)
    if not source.config.facing_on:
        raise UserError(f"{model_path}: no facing classifier to add people heads to (densepose train-facing makes one)")
    config = replace(source.config, facing_people_members=members)
    model = DensePoseRCNN(config).eval()
    own = {k: v for k, v in source.weights.items() if not k.startswith("facing.people.")}
    missing = model.load_state_dict(own, strict=False).missing_keys
    assert all(k.startswith("facing.people.") for k in missing), missing  # the file was checked
    people_facing = model.facing.people
    load_movenet_trunk(people_facing, movenet_json)
    people = read_people(folders, min_height)
    log(f"{len(people.labels)} people in {len(np.unique(people.image))} images")
    rng = np.random.default_rng(seed)
    boxes = [people.boxes] + [jitter_boxes(people.boxes, rng) for _ in range(jittered_copies)]
    copies = [crop_features(people_facing.features, people.files, b, people.image, log=log, size=PEOPLE_CROP)
              for b in boxes]
    labels = torch.from_numpy(people.labels)
    held = torch.from_numpy(people.image_ids % 10 == 0)
    train_x = torch.cat([f[~held] for f, _ in copies])
    train_mirrored = torch.cat([m[~held] for _, m in copies])
    for i, head in enumerate(people_facing.heads):
        log(f"head {i + 1}/{members}")
        torch.manual_seed(seed + i)
        train_head(head, lambda x, head=head: head(x)[:, 0], train_x, train_mirrored,
                   labels[~held].repeat(len(copies)), epochs, seed=seed + i, log=log)
    with torch.no_grad():
        rows = np.flatnonzero(held.numpy())
        lite_c4, _ = crop_features(model.facing.features, people.files, people.boxes[rows], people.image[rows], log=log)
        people_logits = people_facing.classify(copies[0][0][held].float())
        lite_logits = model.facing.lite0_logits(lite_c4.float())
    record = {"data": [str(f) for f in folders], "people": int(len(labels)), "members": members, "epochs": epochs,
              "jittered_copies": jittered_copies, "trunk": Path(movenet_json).name,
              "held_out_accuracy_people_heads": round(read_right(people_logits, labels[held]), 4),
              "held_out_accuracy_lite0_heads": round(read_right(lite_logits, labels[held]), 4),
              "held_out_accuracy": round(read_right((people_logits + lite_logits) / 2, labels[held]), 4)}
    log(f"held-out people read right: people heads {record['held_out_accuracy_people_heads']:.3f}, "
        f"the file's heads {record['held_out_accuracy_lite0_heads']:.3f}, both {record['held_out_accuracy']:.3f}")
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {**source.meta, "facing": {**source.meta.get("facing", {}), "people": record}}
    meta = write_model_file(out, config.to_dict(), weights, meta, str(model_path))
    log(f"wrote {out} in {time.time() - start:.0f} s")
    return meta
