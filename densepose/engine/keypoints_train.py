"""Fine-tune a model file's keypoint network (`densepose.modeling.movenet`) on the renders' true keypoints.

    densepose train-keypoints densepose/assets/model_light.pt --data data/synth_d \\
        --prior-data data/synth_a data/synth_b --out model_kp.pt --half

MoveNet Lightning was trained on COCO's real people. On renders it places 60 % of the joints
within 5 % of the person's height and swaps a quarter of the pairs of knees, ankles, elbows or
wrists that lie apart; the skeleton prior (`densepose.modeling.skeleton_prior`) follows its
mistakes. Given each person's true keypoints instead, the model's GPS AP on held-out renders
gains about 9 points (MODELS.md, "Keypoints trained on the renders"), so its keypoints are worth
training. Each step cuts ``batch`` people out of their renders as the model cuts a detection, at a
box drawn around the annotated one as the detector's boxes lie (`facing_train.jitter_boxes`),
half of them mirrored (keypoints' left and right swapped), runs the people trunk (fixed: the
facing heads read it) and trains everything after it: CenterNet's losses on MoveNet's four maps.
With ``own_trunk_from`` the keypoint network gets its own copy of the trunk's blocks from that
one to 12 (`MoveNetKeypoints` ``own_trunk_from``), started from the trunk's weights and trained along.
The skeleton prior was counted with the old keypoints, so it is counted again with the new
ones on the renders given (`densepose.engine.skeleton_prior_fit.add_skeleton_prior`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from densepose.data.coco import KEYPOINT_FLIP
from densepose.data.synth_folders import read_synth_folders
from densepose.engine.export import write_model_file
from densepose.engine.facing_train import jitter_boxes
from densepose.engine.skeleton_prior_fit import add_skeleton_prior
from densepose.errors import UserError
from densepose.io.images import load_image
from densepose.modeling.config import ModelConfig
from densepose.modeling.facing import crop_boxes, image_person_crops
from densepose.modeling.facing_people import PEOPLE_CROP, PeopleFacing
from densepose.modeling.mobilenet_v2 import STAGE_ENDS
from densepose.modeling.model_file import ModelFile, build_model, read_model_file
from densepose.modeling.movenet import (FPN_TAPS, OUTPUT_STRIDE, MoveNetKeypoints, keypoints_in_crop,
                                        own_trunk_blocks)

#: Heat-map spread of a keypoint, in cells of MoveNet's stride-4 grid; the centre's is twice it.
SIGMA = 1.5
#: Weight of the centre-to-keypoint regression's L1 loss (in cells) against the others.
REGRESS_WEIGHT = 0.1
#: The state-dict prefix of the keypoint network (`densepose.modeling.movenet.MoveNetKeypoints`).
KEYPOINT_PREFIX = "keypoints."
#: Limb pairs (COCO indices) whose left and right `keypoint_accuracy` checks for swaps.
SWAP_PAIRS = ((7, 8), (9, 10), (13, 14), (15, 16))


@dataclass
class KeypointPeople:
    """Annotated people of render folders: ``boxes`` (N, 4) xyxy, ``keypoints`` (N, 17, 3) x, y
    (image pixels) and COCO visibility, ``image`` (N,) index into ``files``, ``image_ids`` (N,)."""

    files: list[Path]
    boxes: np.ndarray
    keypoints: np.ndarray
    image: np.ndarray
    image_ids: np.ndarray

    def rows(self, rows: np.ndarray) -> "KeypointPeople":
        return replace(self, boxes=self.boxes[rows], keypoints=self.keypoints[rows], image=self.image[rows],
                       image_ids=self.image_ids[rows])


def read_keypoint_people(folders: Sequence[str | Path], min_height: float = 32.0) -> KeypointPeople:
    """The people of ``densepose synth`` folders at least ``min_height`` pixels tall with a keypoint."""
    renders = read_synth_folders(folders)
    kept, keypoints = [], []
    for person in renders.people:
        try:
            kps = np.asarray(person.annotation.get("keypoints") or [0.0] * 51, np.float32).reshape(17, 3)
        except (ValueError, TypeError):
            raise UserError(f"{renders.folder[person.image]}/annotations.json: keypoints that are not 17 "
                            f"(x, y, v) triples") from None
        if not person.crowd and person.height >= min_height and (kps[:, 2] > 0).any():
            kept.append(person)
            keypoints.append(kps)
    if not kept:
        raise UserError(f"no person with keypoints and {min_height}+ pixels in {[str(f) for f in folders]}")
    return KeypointPeople(renders.files, np.asarray([p.box for p in kept], np.float32), np.stack(keypoints),
                          np.asarray([p.image for p in kept]), np.asarray([renders.image_ids[p.image] for p in kept]))


def people_crops(people: KeypointPeople, boxes: np.ndarray, mirror: np.ndarray | None = None,
                 images: dict | None = None) -> tuple[Tensor, Tensor]:
    """Every person of ``people`` cut at their row of (N, 4) ``boxes`` -> (N, 3, *PEOPLE_CROP) crops
    in the people trunk's normalisation and (N, 17, 3) keypoints in crop pixels; the rows where
    ``mirror`` is True mirrored, with left and right keypoints swapped. ``images``: a cache of
    decoded images by index."""
    images = {} if images is None else images
    crops = torch.empty(len(boxes), 3, *PEOPLE_CROP)
    for index in np.unique(people.image).tolist():  # each image normalised once for all its people
        rows = np.flatnonzero(people.image == index)
        if index not in images:
            images[index] = torch.from_numpy(load_image(people.files[index])[0].copy()).permute(2, 0, 1)
        crops[torch.from_numpy(rows)] = image_person_crops(images[index], torch.from_numpy(boxes[rows]), PEOPLE_CROP)
    keypoints = keypoints_in_crop(torch.from_numpy(people.keypoints), crop_boxes(torch.from_numpy(boxes)),
                                  PEOPLE_CROP)
    if mirror is not None and mirror.any():
        flip = torch.from_numpy(mirror)
        crops[flip] = crops[flip].flip(-1)
        mirrored = keypoints[flip][:, KEYPOINT_FLIP]
        mirrored[..., 0] = PEOPLE_CROP[1] - mirrored[..., 0]
        keypoints[flip] = mirrored
    return crops, keypoints


def _focal(logits: Tensor, target: Tensor, peak: Tensor) -> Tensor:
    """CenterNet's penalty-reduced focal loss, per cell: (..., h, w) logits, Gaussian targets, 0/1 peaks."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    return -(1 - p) ** 2 * p.log() * peak - (1 - target) ** 4 * p ** 2 * (1 - p).log() * (1 - peak)


def _gaussian(cy: Tensor, cx: Tensor, h: int, w: int, sigma: float) -> Tensor:
    """(...) centres in cells -> (..., h, w) unnormalised Gaussians."""
    rows = torch.arange(h, dtype=torch.float32)[:, None]
    cols = torch.arange(w, dtype=torch.float32)[None]
    return torch.exp(-((rows - cy[..., None, None]) ** 2 + (cols - cx[..., None, None]) ** 2) / (2 * sigma ** 2))


def keypoint_losses(maps: tuple[Tensor, Tensor, Tensor, Tensor], keypoints: Tensor) -> dict[str, Tensor]:
    """CenterNet's losses of `MoveNetKeypoints.maps` against (N, 17, 3) crop-pixel keypoints.

    Keypoints with visibility 0 or outside the grid are left out. Heat maps: the focal loss
    against a Gaussian of ``SIGMA`` cells at each keypoint; offsets: L1 at each keypoint's nearest
    cell to its exact place (decoding adds them to the peak cell); centre: the focal loss at the
    middle of the person's keypoints (spread ``2 SIGMA``); regression: L1, from that centre cell to
    each keypoint, times ``REGRESS_WEIGHT``. All in cells, each a mean per keypoint or person.
    """
    heatmap, center, regress, offset = (m.float() for m in maps)
    n, k, h, w = heatmap.shape
    gy, gx = keypoints[..., 1] / OUTPUT_STRIDE, keypoints[..., 0] / OUTPUT_STRIDE
    used = (keypoints[..., 2] > 0) & (gy >= 0) & (gy <= h - 1) & (gx >= 0) & (gx <= w - 1)  # (N, K)
    count = used.sum().clamp(min=1)
    ky, kx = gy.round().clamp(0, h - 1).long(), gx.round().clamp(0, w - 1).long()
    person, joint = torch.arange(n)[:, None].expand(n, k), torch.arange(k)[None].expand(n, k)
    peak = torch.zeros_like(heatmap)
    peak[person[used], joint[used], ky[used], kx[used]] = 1
    heat = (_focal(heatmap, _gaussian(gy, gx, h, w, SIGMA), peak) * used[..., None, None]).sum() / count
    at_peak = offset.view(n, k, 2, h, w)[person, joint, :, ky, kx]  # (N, K, 2) dy, dx
    off = ((at_peak - torch.stack([gy - ky, gx - kx], -1)).abs().sum(-1) * used).sum() / count
    weight = used.float()
    seen = used.any(1)
    cy = (gy * weight).sum(1) / weight.sum(1).clamp(min=1)
    cx = (gx * weight).sum(1) / weight.sum(1).clamp(min=1)
    iy, ix = cy.round().clamp(0, h - 1).long(), cx.round().clamp(0, w - 1).long()
    centre_peak = torch.zeros_like(center)
    centre_peak[torch.arange(n)[seen], 0, iy[seen], ix[seen]] = 1
    centre_target = _gaussian(cy, cx, h, w, 2 * SIGMA)[:, None]
    centre = (_focal(center, centre_target, centre_peak) * seen[:, None, None, None]).sum() / seen.sum().clamp(min=1)
    guess = regress.view(n, k, 2, h, w)[person, joint, :, iy[:, None], ix[:, None]]  # (N, K, 2)
    to_joint = torch.stack([gy - iy[:, None], gx - ix[:, None]], -1)
    reg = ((guess - to_joint).abs().sum(-1) * used).sum() / count
    return {"heatmap": heat, "offset": off, "centre": centre, "regress": REGRESS_WEIGHT * reg}


def held_out_split(people: KeypointPeople) -> tuple[KeypointPeople, KeypointPeople]:
    """(people to train on, people held out): those of images whose id is a multiple of 10 are held out."""
    held = people.image_ids % 10 == 0
    return people.rows(np.flatnonzero(~held)), people.rows(np.flatnonzero(held))


@torch.no_grad()
def keypoint_accuracy(people_net: PeopleFacing, keypoint_net: MoveNetKeypoints, people: KeypointPeople,
                      seed: int = 5, batch: int = 64) -> dict[str, float]:
    """The keypoints decoded on ``people`` cut at jittered boxes (fixed ``seed``): the share of
    labelled keypoints within 5 % and 10 % of the crop's height (``pck5``, ``pck10``) and the share
    of ``SWAP_PAIRS`` lying apart (10 %+) whose two predictions are nearer the other side's truth."""
    boxes = jitter_boxes(people.boxes, np.random.default_rng(seed))
    near5 = near10 = labelled = swapped = pairs = 0
    images: dict = {}
    for start in range(0, len(boxes), batch):
        rows = np.arange(start, min(start + batch, len(boxes)))
        crops, truth = people_crops(people.rows(rows), boxes[rows], images=images)
        found = keypoint_net(people_net.taps(crops, FPN_TAPS))
        ok = truth[..., 2] > 0
        error = (found[..., :2] - truth[..., :2]).norm(dim=-1) / PEOPLE_CROP[0]
        near5 += int(((error < 0.05) & ok).sum())
        near10 += int(((error < 0.1) & ok).sum())
        labelled += int(ok.sum())

        def miss(i: int, j: int) -> Tensor:  # how far each prediction of joint i lies from the truth of joint j
            return (found[:, i, :2] - truth[:, j, :2]).norm(dim=-1)

        for a, b in SWAP_PAIRS:
            apart = ok[:, a] & ok[:, b] & ((truth[:, a, :2] - truth[:, b, :2]).norm(dim=-1) / PEOPLE_CROP[0] > 0.1)
            same, crossed = miss(a, a) + miss(b, b), miss(a, b) + miss(b, a)
            swapped += int((apart & (crossed < same)).sum())
            pairs += int(apart.sum())
    return {"pck5": near5 / max(labelled, 1), "pck10": near10 / max(labelled, 1), "swapped": swapped / max(pairs, 1)}


def train_keypoints(model_path: str | Path, folders: Sequence[str | Path], prior_folders: Sequence[str | Path],
                    out: str | Path, iterations: int = 2000, lr: float = 2e-4, batch: int = 32, seed: int = 0,
                    min_height: float = 32.0, half: bool = False, own_trunk_from: int | None = None,
                    log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``model_path`` with its keypoint network trained on the
    people of ``folders`` (module docstring) and its skeleton prior counted again with it on
    ``prior_folders`` (`densepose.engine.skeleton_prior_fit.add_skeleton_prior`, the file's power
    and U, V variance; ``half``: every weight stored as float16); returns its meta.
    ``own_trunk_from`` (3 or 6): train the network's own copy of the trunk's blocks from this one
    to 12 too, copied from the trunk where the file has none (`with_own_keypoint_trunk`).

    AdamW at ``lr`` after 50 warm-up steps, a tenth of it for the last fifth; people of images
    whose id is a multiple of 10 are held out and `keypoint_accuracy` reports them before and after.
    """
    if iterations < 1 or batch < 1 or not lr > 0:
        raise UserError(f"train-keypoints: iterations and batch must be at least 1 and lr above 0, "
                        f"got {iterations}, {batch}, {lr}")
    start = time.time()
    source = read_model_file(model_path)
    if not source.config.skeleton_prior_on:
        raise UserError(f"{model_path}: no keypoint network to train (densepose add-skeleton-prior --movenet adds one)")
    if own_trunk_from is not None:
        source = with_own_keypoint_trunk(source, own_trunk_from)
    model = build_model(source).eval()
    people_net, keypoint_net = model.facing.people, model.keypoints
    people_net.requires_grad_(False)
    train, test = held_out_split(read_keypoint_people(folders, min_height))
    if len(train.boxes) < batch or not len(test.boxes):
        raise UserError(f"train-keypoints: {len(train.boxes)} people to train on and {len(test.boxes)} held out "
                        f"in {[str(f) for f in folders]}; give more renders or a smaller --batch")
    log(f"{len(train.boxes)} people to train on, {len(test.boxes)} held out (image id a multiple of 10)")
    before = keypoint_accuracy(people_net, keypoint_net.eval(), test)
    log("held out before: " + accuracy_line(before))
    keypoint_net.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(keypoint_net.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    images: dict = {}
    window: dict[str, float] = {}
    for step in range(1, iterations + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, step / 50) * (0.1 if step > 0.8 * iterations else 1.0)
        rows = rng.choice(len(train.boxes), batch, replace=False)
        picked = train.rows(rows)
        if len(images) > 2000:  # decoded renders are 0.8 MB each
            images.clear()
        crops, truth = people_crops(picked, jitter_boxes(picked.boxes, rng), rng.random(batch) < 0.5, images)
        with torch.no_grad():
            taps = people_net.taps(crops, FPN_TAPS)
        losses = keypoint_losses(keypoint_net.maps(taps), truth)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise UserError(f"train-keypoints: the loss is not finite at step {step}; try a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        for name, value in losses.items():
            window[name] = window.get(name, 0.0) + value.item()
        if step % 50 == 0 or step == iterations:
            count = 50 if step % 50 == 0 else step % 50
            log(f"step {step}/{iterations}: " + ", ".join(f"{k} {v / count:.3f}" for k, v in window.items())
                + f" ({time.time() - start:.0f} s)")
            window = {}
    after = keypoint_accuracy(people_net, keypoint_net.eval(), test)
    log("held out after: " + accuracy_line(after))
    weights = dict(source.weights)
    weights.update({KEYPOINT_PREFIX + k: v.detach().clone() for k, v in keypoint_net.state_dict().items()})
    record = {"data": [str(f) for f in folders], "people": int(len(train.boxes)), "held_out": int(len(test.boxes)),
              "iterations": iterations, "lr": lr, "batch": batch, "seed": seed,
              "own_trunk_from": source.config.keypoint_own_trunk_from,
              "held_out_before": accuracy_record(before), "held_out_after": accuracy_record(after)}
    log(f"keypoints trained ({time.time() - start:.0f} s); counting the skeleton prior with them")
    return write_with_prior_counted(source.config, weights, {**source.meta, "keypoints": record}, str(model_path),
                                    prior_folders, out, half=half, log=log)


def write_with_prior_counted(config: ModelConfig, weights: dict[str, Tensor], meta: dict, where: str,
                             prior_folders: Sequence[str | Path], out: str | Path, half: bool = False,
                             log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file of ``config``, ``weights`` and ``meta`` (``where``: their source,
    for errors) with its skeleton prior and U, V means counted again on ``prior_folders`` with the
    keypoint network ``weights`` hold (the config's power and U, V variance; ``half``: every weight
    stored as float16, the keypoint network's before the prior is counted with it, so that the
    file's prior is the one its own network gives); returns its meta."""
    # The prior's tables still hold the old keypoints' counts: a file beside ``out`` carries the new
    # network until the prior is counted again, so ``out`` never holds the two mismatched.
    pending = Path(out).with_name(Path(out).name + ".keypoints.tmp")
    write_model_file(pending, config.to_dict(), weights, meta, where, half=half)
    try:
        return add_skeleton_prior(pending, None, prior_folders, out, config.skeleton_prior_power, half=half, log=log,
                                  uv_variance=config.skeleton_uv_variance if config.skeleton_uv_on else 0.0)
    finally:
        pending.unlink(missing_ok=True)


def with_own_keypoint_trunk(source: ModelFile, first: int) -> ModelFile:
    """``source`` with its keypoint network's own copy of the people trunk's blocks from ``first``
    (3 or 6, `movenet.OWN_TRUNK_STARTS`) to 12, or from where the file's own copy starts if that is
    earlier. The file's own blocks are kept; the blocks before them are copies of the people trunk's,
    so the file's keypoints are as before until they are trained."""
    config = source.config
    own = config.keypoint_own_trunk_from  # where the file's own copy starts, if it has one
    has = STAGE_ENDS[2] + 1 if own is None else own
    blocks = own_trunk_blocks(min(first, has))
    weights = {k: v for k, v in source.weights.items() if not k.startswith("keypoints.trunk.")}
    for key, value in source.weights.items():
        if key.startswith("keypoints.trunk."):  # the file's own blocks, at their place in the longer copy
            index, rest = key[len("keypoints.trunk."):].split(".", 1)
            weights[f"keypoints.trunk.{int(index) + has - blocks.start}.{rest}"] = value
        elif key.startswith("facing.people.blocks."):
            index, rest = key[len("facing.people.blocks."):].split(".", 1)
            if blocks.start <= int(index) < has:
                weights[f"keypoints.trunk.{int(index) - blocks.start}.{rest}"] = value.clone()
    return replace(source, weights=weights,
                   config=replace(config, skeleton_own_trunk=True, skeleton_own_trunk_from=blocks.start))


def accuracy_record(accuracy: dict[str, float]) -> dict[str, float]:
    """`keypoint_accuracy`'s figures as a model file's meta keeps them: four decimals."""
    return {k: round(v, 4) for k, v in accuracy.items()}


def accuracy_line(accuracy: dict[str, float]) -> str:
    return (f"within 5 % of the crop height {accuracy['pck5']:.3f}, within 10 % {accuracy['pck10']:.3f}, "
            f"limb pairs swapped {accuracy['swapped']:.3f}")
