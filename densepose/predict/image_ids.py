"""COCO ``image_id`` of each input for ``results.json``: unique, and the same in every run."""
from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

ANNOTATIONS_NAME = "annotations.json"


def _annotation_ids(folder: Path, cache: dict[Path, dict[str, int] | None]) -> dict[str, int] | None:
    """file name -> id from ``folder/annotations.json`` (None when absent or unreadable)."""
    if folder not in cache:
        cache[folder] = None
        path = folder / ANNOTATIONS_NAME
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                cache[folder] = {Path(im["file_name"]).name: int(im["id"]) for im in data["images"]}
            except (OSError, ValueError, KeyError, TypeError):
                cache[folder] = None
    return cache[folder]


def name_id(name: str) -> int:
    """An id derived from a file name alone: the number of a COCO-style name (an all-digit stem,
    ``000000000785.jpg`` -> 785, or 6+ digits after ``_``/``-``, ``COCO_val2014_000000000785.jpg``
    -> 785), else a 31-bit CRC of the name."""
    m = re.fullmatch(r"(\d{1,15})|(?:.*[_-])?(\d{6,15})", Path(name).stem)
    if m:
        return int(m.group(1) or m.group(2))
    return zlib.crc32(name.encode()) & 0x7FFFFFFF or 1


def assign_image_ids(paths: list[Path], given: dict[str, int] | None = None) -> tuple[dict[Path, int], list[str]]:
    """Image id per path, and notes on where ids came from.

    In order: ``given`` (file name -> id, from ``--coco-json``); the ``annotations.json`` of the
    image's folder or of the folder above it (a ``densepose synth`` dataset keeps its images in
    ``images/`` next to it); `name_id`. Ids from names that collide with an id already taken move
    to the next free number, in sorted path order, so every image gets its own id.
    """
    ids: dict[Path, int] = {}
    notes: list[str] = []
    cache: dict[Path, dict[str, int] | None] = {}
    derived: list[Path] = []
    used_files: set[Path] = set()
    for path in paths:
        if given is not None and path.name in given:
            ids[path] = given[path.name]
            continue
        for folder in (path.parent, path.parent.parent):
            table = _annotation_ids(folder, cache)
            if table is not None and path.name in table:
                ids[path] = table[path.name]
                used_files.add(folder / ANNOTATIONS_NAME)
                break
        else:
            derived.append(path)
    taken = set(ids.values())
    for path in sorted(derived):
        candidate = name_id(path.name)
        while candidate in taken:
            candidate = candidate + 1 if candidate < 0x7FFFFFFF else 1
        taken.add(candidate)
        ids[path] = candidate
    notes += [f"image ids from {p}" for p in sorted(used_files)]
    return ids, notes
