"""Torch dataset over (image folder, DensePose-COCO JSON), a reproducible sampler, a loader builder.

Determinism: the sampler yields ``(index, sample_seed)`` pairs; the dataset feeds ``sample_seed``
to the transform. The order of samples and every sample's augmentation are therefore a function
of (seed, epoch, position) only, not of worker count, worker RNG or wall-clock, and a run resumed
at sample ``k`` sees exactly what an uninterrupted run would have seen from ``k`` on.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from densepose.data.coco import CocoDensePose, image_target, load_coco
from densepose.errors import UserError

Transform = Callable[[torch.Tensor, dict, int], "tuple[torch.Tensor, dict]"]


class DensePoseDataset(Dataset):
    """Images and per-image targets of a DensePose-COCO dataset.

    ``dataset[i]`` or ``dataset[(i, seed)]`` returns ``(image (3, H, W) float32 0..255, target)``
    with the target of ``densepose.data.coco.image_target`` after ``transform(image, target, seed)``.

    Args:
        image_dir: folder the ``file_name`` of every image record is relative to.
        annotations: the JSON file, or an already loaded ``CocoDensePose``.
        transform: callable ``(image, target, seed) -> (image, target)`` or None.
        skip_empty: drop images that have no (non-crowd) person.
        with_masks: decode ``segmentation`` into ``masks`` (G, H, W) (costs time and memory).
    """

    def __init__(
        self,
        image_dir: str | Path,
        annotations: str | Path | CocoDensePose,
        transform: Transform | None = None,
        skip_empty: bool = False,
        with_masks: bool = False,
    ):
        self.image_dir = Path(image_dir)
        self.coco = annotations if isinstance(annotations, CocoDensePose) else load_coco(annotations)
        self.transform = transform
        self.with_masks = with_masks
        ids = self.coco.image_ids
        if skip_empty:
            ids = [i for i in ids if any(not a.get("iscrowd", 0) for a in self.coco.annotations[i])]
        self.image_ids: list[int] = list(ids)
        if not self.image_dir.is_dir():
            raise UserError(f"{self.image_dir}: image folder not found (annotations {self.coco.path})")

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_path(self, index: int) -> Path:
        return self.image_dir / self.coco.images[self.image_ids[index]]["file_name"]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        image_id = self.image_ids[index]
        record = self.coco.images[image_id]
        path = self.image_path(index)
        try:
            with Image.open(path) as im:
                array = np.array(im.convert("RGB"))  # a writable copy
        except FileNotFoundError:
            raise UserError(f"{path}: image of record id {image_id} in {self.coco.path} not found") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read image ({exc})") from None
        h, w = array.shape[:2]
        if (h, w) != (record["height"], record["width"]):
            raise UserError(
                f"{path}: image is {w}x{h} but record id {image_id} in {self.coco.path} says "
                f"{record['width']}x{record['height']}"
            )
        image = torch.from_numpy(array).permute(2, 0, 1).float()
        target = image_target(self.coco.annotations[image_id], h, w, self.with_masks)
        if self.transform is not None:
            image, target = self.transform(image, target, seed)
        return image, target


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Images differ in size, so a batch stays a list of images and a list of targets."""
    return [b[0] for b in batch], [b[1] for b in batch]


def to_device(obj, device: torch.device | str, non_blocking: bool = False):
    """Move tensors nested in dicts/lists/tuples to ``device`` (None and scalars pass through)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device, non_blocking) for v in obj)
    return obj


class SeededSampler(Sampler):
    """Endless stream of ``(index, sample_seed)`` for one rank, reproducible and resumable.

    Epoch ``e`` is a permutation of ``range(size)`` drawn from ``(seed, e)`` (or the identity when
    ``shuffle`` is False), padded by wrapping to a multiple of ``world_size``; rank ``r`` takes
    global positions ``r, r + world_size, ...`` as ``DistributedSampler`` does. ``start`` is the
    number of samples this rank has already consumed: the stream continues from there.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1, start: int = 0):
        if size <= 0:
            raise UserError("the training set is empty")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size, self.start = rank, world_size, start
        self.per_rank = math.ceil(size / world_size)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """(per_rank * world_size,) int64 global order of epoch ``epoch``."""
        if self.shuffle:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.arange(self.size)
        total = self.per_rank * self.world_size
        return order.repeat(math.ceil(total / self.size))[:total]

    def state(self, consumed: int) -> dict:
        """The data-order state after this rank consumed ``consumed`` samples (for checkpoints)."""
        epoch, position = divmod(consumed, self.per_rank)
        return {"seed": self.seed, "consumed": consumed, "epoch": epoch, "position": position}

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, position = divmod(self.start, self.per_rank)
        while True:
            order = self.epoch_order(epoch).tolist()
            for p in range(position, self.per_rank):
                g = p * self.world_size + self.rank
                yield order[g], _mix(self.seed, epoch, g)
            epoch, position = epoch + 1, 0


def _mix(*values: int) -> int:
    """A well-spread 63-bit seed from a tuple of integers."""
    return int(np.random.SeedSequence([int(v) & 0xFFFFFFFF for v in values]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def _seed_worker(worker_id: int) -> None:
    # Transforms take their randomness from the per-sample seed; this only tames stray RNG use.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_train_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    start: int = 0,
    pin_memory: bool | None = None,
) -> tuple[DataLoader, SeededSampler]:
    """An endless training loader of ``batch_size`` images per rank, starting after ``start`` samples.

    Workers are persistent (no re-spawn per epoch), memory is pinned when CUDA is available, and
    the loader gets its own generator so that creating it does not consume the global torch RNG.
    """
    sampler = SeededSampler(len(dataset), seed, True, rank, world_size, start)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=num_workers > 0,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        prefetch_factor=2 if num_workers > 0 else None,
    )
    return loader, sampler
