"""Give a model file the person check (`densepose.modeling.person_check`), trained on renders.

    densepose train-person-check model_facing.pt --data data/synth_a data/synth_b data/vtest_pseudo \
        --members 5 --out model_checked.pt

The model file must have the facing classifier (``densepose train-facing``): the check reads its
crop features. Steps, on the first ``max_images`` images of each folder (``densepose synth``
output, or any folder of ``images/`` and a COCO ``annotations.json``, such as the pseudo-labelled
frames of `densepose.data.pseudo_labels`):

1. the model detects people (score >= ``min_score``); a detection is a person (1) at box IoU
   >= 0.6 with an annotated one, not a person (0) below 0.4 (skipped between, and when mostly
   inside a crowd region): the model's own false people, the boxes the check must learn to doubt;
2. made-up boxes for each annotated person ``min_height`` pixels or taller: the box jittered by
   5 % (1), a fragment of it (its top, bottom, left or right 30-60 %, or an inner box 15-30 % of
   its size: 0), a small part of it (an inner box 5-15 % of its height, as a buckle or a hand: 0),
   the box shifted sideways by 35-70 % of its width (half a person, half what is beside them: 0),
   the box around it and a neighbour of about its height beside it (a pair: 0), and two boxes of
   background per image (0);
3. the C4 features of every box's crop and its mirror image (as `train-facing`);
4. the head is trained with BCE (images whose id is a multiple of 10 are held out), or each of
   ``members`` heads from its own seed (``seed``, ``seed + 1``, ...: `PersonCheckEnsemble`), and
   the held-out detections' ROC AUC is reported per folder for the detector's score and for the
   checked score.

The result is the input model file with ``person_check_on=true`` and the head's weights: nothing
else changes. Checked scores are lower than the detector's; ``densepose export FILE --out FILE2
--set default_min_score=S`` sets the threshold the file keeps people from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from densepose.data.synth_folders import read_synth_folders
from densepose.engine.export import write_model_file
from densepose.engine.facing_train import crop_features, train_head
from densepose.errors import UserError
from densepose.io.images import load_image
from densepose.modeling.model_file import read_model_file
from densepose.modeling.ops.boxes import box_iou, contained_fraction
from densepose.modeling.person_check import PersonCheckHead, checked_scores, cut_by_bottom
from densepose.modeling.rcnn import DensePoseRCNN

#: Kinds of candidate boxes: the detector's, and made-up ones (`made_up_boxes`).
DETECTION, JITTERED, FRAGMENT, BACKGROUND, PAIR, SHIFTED, SMALL_PART = range(7)
KIND_NAMES = ("detections", "jittered people", "fragments", "background", "pairs", "shifted", "small parts")
#: A pair's box is not one person up to this IoU with either of the two.
PAIR_IOU = 0.55
#: A detection at this IoU with an annotated person is one; below ``NOT_PERSON_IOU`` it is not.
PERSON_IOU, NOT_PERSON_IOU = 0.6, 0.4


@dataclass
class RenderImages:
    """Images of ``densepose synth`` folders: ``files``, ``image_ids``, and per image the
    annotated ``people`` and ``crowd`` regions as (K, 4) xyxy float32 arrays and the data
    ``folder`` it was read from."""

    files: list[Path]
    image_ids: list[int]
    people: list[np.ndarray]
    crowd: list[np.ndarray]
    folder: list[str]


@dataclass
class Candidates:
    """Boxes to train the check on: ``boxes`` (N, 4) xyxy, ``labels`` (N,) 1 person / 0 not,
    ``kind`` (N,) (``DETECTION`` ...), ``scores`` (N,) the detector's (-1 for made-up boxes),
    ``image`` (N,) index into the `RenderImages`, ``cut`` (N,) the box is a half-length portrait's
    (`cut_by_bottom`: inference counts the check's probability as at least ``PORTRAIT_FLOOR``)."""

    boxes: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    scores: np.ndarray
    image: np.ndarray
    cut: np.ndarray


def read_render_images(folders: Sequence[str | Path], max_images: int | None = None) -> RenderImages:
    """The first ``max_images`` images of each folder (all when None) with their annotated boxes."""
    renders = read_synth_folders(folders, max_images)
    if not renders.files:
        raise UserError(f"no images in {list(folders)}")
    people: list[list] = [[] for _ in renders.files]
    crowd: list[list] = [[] for _ in renders.files]
    for person in renders.people:
        (crowd if person.crowd else people)[person.image].append(person.box)
    return RenderImages(renders.files, renders.image_ids, [np.asarray(b, np.float32).reshape(-1, 4) for b in people],
                        [np.asarray(b, np.float32).reshape(-1, 4) for b in crowd], renders.folder)


def label_detections(boxes: np.ndarray, people: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """(N, 4) detections, annotated people (P, 4), crowd regions (Q, 4) -> (N,) 1 person, 0 not a
    person, -1 skipped (between the IoU bounds, or a non-person mostly inside a crowd region)."""
    det = torch.from_numpy(boxes).float()
    iou = box_iou(det, torch.from_numpy(people)).amax(1) if len(people) else torch.zeros(len(det))
    in_crowd = torch.zeros(len(det), dtype=torch.bool)
    if len(crowd):
        in_crowd = contained_fraction(det, torch.from_numpy(crowd)).amax(1) >= 0.5
    labels = torch.full((len(det),), -1.0)
    labels[iou >= PERSON_IOU] = 1.0
    labels[(iou < NOT_PERSON_IOU) & ~in_crowd] = 0.0
    return labels.numpy()


def made_up_boxes(people: np.ndarray, height: int, width: int, rng: np.random.Generator,
                  min_height: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jittered people (1); fragments, small parts, shifted boxes and pairs of people, and
    background boxes (0) for one image (the module's docstring says which boxes).

    Returns boxes (M, 4) xyxy, labels (M,), kinds (M,); a jittered box is kept at IoU >= 0.7 with
    the annotated people, a fragment, small part or shifted box below 0.4, a pair below
    ``PAIR_IOU``, a background box below 0.1."""
    out, labels, kinds = [], [], []
    known = torch.from_numpy(people).float()

    def keep(box: list[float], label: float, kind: int, low: float, high: float) -> None:
        iou = float(box_iou(torch.tensor([box]), known).max()) if len(known) else 0.0
        if low <= iou < high:
            out.append(box), labels.append(label), kinds.append(kind)

    for i, (x0, y0, x1, y1) in enumerate(people):
        w, h = x1 - x0, y1 - y0
        if h < min_height:
            continue
        jitter = rng.normal(0.0, 0.05, 4) * np.array([w, h, w, h])
        keep([x0 + jitter[0], y0 + jitter[1], x1 + jitter[2], y1 + jitter[3]], 1.0, JITTERED, 0.7, 1.01)
        f = rng.uniform(0.3, 0.6)
        fx, fy = rng.uniform(0, 1 - f * 0.5), rng.uniform(0, 1 - f * 0.5)  # an inner fragment's corner
        fragment = [[x0, y0, x1, y0 + f * h], [x0, y1 - f * h, x1, y1],  # top, bottom
                    [x0, y0, x0 + f * w, y1], [x1 - f * w, y0, x1, y1],  # left, right
                    [x0 + fx * w, y0 + fy * h, x0 + (fx + f * 0.5) * w, y0 + (fy + f * 0.5) * h]][int(rng.integers(5))]
        keep(fragment, 0.0, FRAGMENT, 0.0, NOT_PERSON_IOU)
        side = rng.uniform(0.05, 0.15) * h * np.sqrt(rng.uniform(0.6, 1.6, 2))  # (width, height)
        px, py = x0 + rng.uniform(0, max(w - side[0], 0)), y0 + rng.uniform(0, max(h - side[1], 0))
        keep([px, py, px + side[0], py + side[1]], 0.0, SMALL_PART, 0.0, NOT_PERSON_IOU)
        shift = rng.uniform(0.35, 0.7) * w * rng.choice([-1.0, 1.0])
        keep([x0 + shift, y0 + jitter[1], x1 + shift, y1 + jitter[3]], 0.0, SHIFTED, 0.0, NOT_PERSON_IOU)
        pair = _pair_box(people, i, rng)
        if pair is not None:
            keep(pair, 0.0, PAIR, 0.0, PAIR_IOU)
    for _ in range(2):
        h = rng.uniform(min_height, max(min_height, min(height, 400)))
        w = h * rng.uniform(0.3, 0.6)
        x0, y0 = rng.uniform(0, max(width - w, 1)), rng.uniform(0, max(height - h, 1))
        keep([x0, y0, x0 + w, y0 + h], 0.0, BACKGROUND, 0.0, 0.1)
    return np.asarray(out, np.float32).reshape(-1, 4), np.asarray(labels, np.float32), np.asarray(kinds, np.int64)


def _pair_box(people: np.ndarray, i: int, rng: np.random.Generator) -> list[float] | None:
    """The box around person ``i`` of ``people`` (P, 4) and a neighbour drawn at random among those
    of 2/3 to 3/2 of its height, overlapping it by half the shorter one's height vertically, and
    less than half the wider one's width apart sideways; None when it has no such neighbour."""
    x0, y0, x1, y1 = people[i]
    heights, widths = people[:, 3] - people[:, 1], people[:, 2] - people[:, 0]
    ratio = heights / max(y1 - y0, 1e-6)
    rows_shared = np.minimum(people[:, 3], y1) - np.maximum(people[:, 1], y0)
    gap = np.maximum(people[:, 0], x0) - np.minimum(people[:, 2], x1)  # < 0 when the boxes overlap
    near = ((ratio >= 2 / 3) & (ratio <= 1.5) & (rows_shared >= 0.5 * np.minimum(heights, y1 - y0))
            & (gap < 0.5 * np.maximum(widths, x1 - x0)))
    near[i] = False
    if not near.any():
        return None
    j = int(rng.choice(np.flatnonzero(near)))
    return [min(x0, people[j, 0]), min(y0, people[j, 1]), max(x1, people[j, 2]), max(y1, people[j, 3])]


@torch.no_grad()
def gather_candidates(model: DensePoseRCNN, images: RenderImages, min_score: float = 0.2, min_height: float = 40.0,
                      seed: int = 0, log: Callable[[str], None] = print, log_every: int = 250) -> Candidates:
    """Run ``model`` (its detector scores: no person check) on every image and label its detections;
    add the made-up boxes."""
    model.eval()
    rng = np.random.default_rng(seed)
    parts: list[tuple[np.ndarray, ...]] = []
    start = time.time()
    for i, path in enumerate(images.files):
        pixels = load_image(path)[0]
        out = model([torch.tensor(pixels).permute(2, 0, 1).float()], score_thresh=min_score)[0]
        boxes, scores = out["boxes"].float().numpy(), out["scores"].float().numpy()
        labels = label_detections(boxes, images.people[i], images.crowd[i])
        use = labels >= 0
        made, made_labels, kinds = made_up_boxes(images.people[i], pixels.shape[0], pixels.shape[1], rng, min_height)
        all_boxes = np.concatenate([boxes[use], made])
        parts.append((all_boxes, np.concatenate([labels[use], made_labels]),
                      np.concatenate([np.full(int(use.sum()), DETECTION), kinds]),
                      np.concatenate([scores[use], np.full(len(made), -1.0, np.float32)]),
                      np.full(len(all_boxes), i),
                      cut_by_bottom(torch.from_numpy(all_boxes), pixels.shape[0]).numpy()))
        if (i + 1) % log_every == 0 or i + 1 == len(images.files):
            log(f"detections: {i + 1}/{len(images.files)} images, {time.time() - start:.0f} s")
    return Candidates(*(np.concatenate(column) for column in zip(*parts)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (N,) for binary ``labels`` (N,) (ties count half)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels) > 0.5
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    # Mean rank (1-based) of each distinct score: a tie shares the ranks of its run.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts + 1
    ranks = (first + (counts - 1) / 2)[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def train_person_check(model_path: str | Path, folders: Sequence[str | Path], out: str | Path, epochs: int = 4,
                       max_images: int | None = 2500, min_height: float = 40.0, seed: int = 0, members: int = 1,
                       log: Callable[[str], None] = print) -> dict:
    """Write ``out``: the model file at ``model_path`` with a trained person check of ``members``
    heads (member k trained from seed ``seed + k`` on the same boxes); returns its meta."""
    start = time.time()
    if members < 1:
        raise UserError(f"--members must be at least 1, not {members}")
    source = read_model_file(model_path)
    if not source.config.facing_on:
        raise UserError(f"{model_path}: no facing classifier, whose crop features the person check reads "
                        "(add it first: densepose train-facing)")
    detector = DensePoseRCNN(replace(source.config, person_check_on=False))
    own = {k: v for k, v in source.weights.items() if not k.startswith("person_check.")}
    detector.load_state_dict(own)
    images = read_render_images(folders, max_images)
    log(f"{len(images.files)} images")
    found = gather_candidates(detector, images, min_height=min_height, seed=seed, log=log)
    counts = np.bincount(found.kind, minlength=len(KIND_NAMES))
    people = int(found.labels[found.kind == DETECTION].sum())
    log(f"{len(found.labels)} boxes: {counts[DETECTION]} detections ({people} people), "
        + ", ".join(f"{n} {name}" for n, name in zip(counts[1:], KIND_NAMES[1:])))
    feats, mirrored = crop_features(detector.facing.eval().features, images.files, found.boxes, found.image, log=log)
    config = replace(source.config, person_check_on=True, person_check_members=members)
    model = DensePoseRCNN(config)
    missing = model.load_state_dict(own, strict=False).missing_keys
    assert all(k.startswith("person_check.") for k in missing), missing  # the file was checked
    held = torch.from_numpy(np.asarray(images.image_ids)[found.image] % 10 == 0)
    labels = torch.from_numpy(found.labels)
    heads = [model.person_check] if members == 1 else list(model.person_check.members)
    for k, head in enumerate(heads):
        torch.manual_seed(seed + k)
        head.load_state_dict(PersonCheckHead().state_dict())  # each member starts from its own seed
        train_head(head, head, feats[~held], mirrored[~held], labels[~held], epochs, seed=seed + k, log=log)
    aucs = held_out_aucs(model, images, found, feats, held.numpy(), log)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {**source.meta, "person_check": {
        "data": [str(f) for f in folders], "images": len(images.files), "boxes": int(len(labels)), "epochs": epochs,
        "members": members, "held_out_auc": aucs}}
    meta = write_model_file(out, config.to_dict(), weights, meta, str(model_path))
    log(f"wrote {out} in {time.time() - start:.0f} s")
    return meta


@torch.no_grad()
def held_out_aucs(model: DensePoseRCNN, images: RenderImages, found: Candidates, feats: Tensor, held: np.ndarray,
                  log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Per data folder, the ROC AUC of telling the held-out detections' people from the rest by the
    detector's score and by the checked score: {folder: {"detector": a, "checked": b}}."""
    folder_of = np.asarray(images.folder)[found.image]
    out = {}
    for folder in dict.fromkeys(images.folder):
        rows = held & (found.kind == DETECTION) & (folder_of == folder)
        if not rows.any():
            continue
        p_person = model.person_check(feats[torch.from_numpy(rows)].float()).float().sigmoid()
        det_scores = torch.from_numpy(found.scores[rows])
        checked = checked_scores(det_scores, p_person, torch.from_numpy(found.cut[rows]))
        out[folder] = {"detector": round(roc_auc(det_scores.numpy(), found.labels[rows]), 4),
                       "checked": round(roc_auc(checked.numpy(), found.labels[rows]), 4)}
        log(f"{folder}: held-out detections ({int(rows.sum())}): ROC AUC of the detector's score "
            f"{out[folder]['detector']:.3f}, of the checked score {out[folder]['checked']:.3f}")
    return out
