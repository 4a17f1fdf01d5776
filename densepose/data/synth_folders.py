"""The annotations of ``densepose synth`` output folders: their renders and annotated people.

Every trainer that reads renders (`train-facing`, `train-person-check`, `train-keypoints`,
`add-skeleton-prior`) reads the folders here, so a missing or malformed ``annotations.json``
is the same one-line error everywhere; each keeps the people it can use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from densepose.errors import UserError
from densepose.io.json_files import read_json


@dataclass
class SynthPerson:
    """One annotation of a render: ``image`` indexes `SynthFolders.files`, ``box`` is xyxy, and
    ``annotation`` the COCO annotation itself (``keypoints``, ``dp_I``, ``iscrowd`` ...)."""

    image: int
    box: tuple[float, float, float, float]
    annotation: dict

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def crowd(self) -> bool:
        return bool(self.annotation.get("iscrowd"))


@dataclass
class SynthFolders:
    """Renders of ``densepose synth`` folders: per image its ``files`` path, COCO ``image_ids``
    entry and the ``folder`` it came from; ``people`` are all annotations, in each folder's
    annotation order (instance k + 1 of a render's dense truth is its k-th annotation)."""

    files: list[Path] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    folder: list[str] = field(default_factory=list)
    people: list[SynthPerson] = field(default_factory=list)


def read_synth_folders(folders: Sequence[str | Path], max_images: int | None = None) -> SynthFolders:
    """The renders of ``folders`` (the first ``max_images`` of each; all when None) and their
    annotated people. A folder without ``annotations.json``, or one whose images and annotations
    are not COCO's (an ``id`` and ``file_name`` per image, an ``image_id`` and a ``bbox`` of four
    finite numbers per annotation), raises `UserError` naming the file."""
    out = SynthFolders()
    for folder in map(Path, folders):
        path = folder / "annotations.json"
        if not path.is_file():
            raise UserError(f"{folder}: no annotations.json (pass a `densepose synth` output folder)")
        coco = read_json(path, "annotation file")
        try:
            index: dict = {}  # image id -> its index in ``out.files``; None past ``max_images``
            for number, im in enumerate(coco["images"]):
                kept = max_images is None or number < max_images
                index[im["id"]] = len(out.files) if kept else None
                if kept:
                    out.files.append(folder / "images" / str(im["file_name"]))
                    out.image_ids.append(im["id"])
                    out.folder.append(str(folder))
            for ann in coco["annotations"]:
                x, y, w, h = (float(v) for v in ann["bbox"])
                if not all(map(math.isfinite, (x, y, w, h))):
                    raise ValueError("a bbox that is not finite")
                if ann["image_id"] not in index:
                    raise KeyError(f"image_id {ann['image_id']} is not among its images")
                image = index[ann["image_id"]]
                if image is not None:
                    out.people.append(SynthPerson(image, (x, y, x + w, y + h), ann))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"{path}: not the annotations of a `densepose synth` folder "
                            f"({exc.__class__.__name__}: {exc})") from None
    return out
