"""Mix COCO dataset folders into one training folder, each repeated a whole number of times.

    python -m densepose.data.mix --out DIR FOLDER[:REPEAT] [FOLDER[:REPEAT] ...]

Each input is a folder with ``annotations.json`` and ``images/`` (what ``densepose synth`` and
``python -m densepose.data.pseudo_labels`` write). The output folder gets ``images/`` with every
input image hard-linked (copied where links are impossible) under ``<k>_<name>`` (k = the input's
position, so names never clash) and one ``annotations.json``. ``REPEAT`` lists the images of a
small set several times (fresh image and annotation ids each time), which is how a few hundred
real frames get a say next to thousands of renders: the trainer samples image entries uniformly.
DensePose fields, ``iscrowd``, licences and the images' extra keys are kept as they are.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from densepose.cache import atomic_write_bytes, link_or_copy
from densepose.errors import UserError
from densepose.io.json_files import read_json


@dataclass
class MixInput:
    folder: Path
    repeat: int = 1


def parse_input(text: str) -> MixInput:
    """``FOLDER`` or ``FOLDER:REPEAT`` (REPEAT a positive integer)."""
    folder, _, repeat = text.rpartition(":") if ":" in text else (text, "", "1")
    try:
        times = int(repeat)
    except ValueError:
        raise UserError(f"{text}: the repeat count after ':' must be a whole number") from None
    if times < 1:
        raise UserError(f"{text}: the repeat count must be at least 1")
    return MixInput(Path(folder), times)


def mix(inputs: list[MixInput], out: str | Path) -> dict[str, int]:
    """Write the mixed folder; returns counts (distinct images, image entries, annotations)."""
    out = Path(out)
    sources = []
    for k, item in enumerate(inputs):
        path = item.folder / "annotations.json"
        if not path.is_file():
            raise UserError(f"{path}: not found; each input needs annotations.json and images/")
        sources.append((k, item, read_json(path, "annotation file")))
    images, annotations, licences, distinct = [], [], [], 0
    for k, item, coco in sources:
        licence_ids = {}
        for lic in coco.get("licenses", []):
            licence_ids[lic["id"]] = len(licences) + 1
            licences.append({**lic, "id": len(licences) + 1})
        by_image: dict[int, list[dict]] = {}
        for ann in coco.get("annotations", []):
            by_image.setdefault(ann["image_id"], []).append(ann)
        for record in coco["images"]:
            name = f"{k}_{record['file_name']}"
            src = item.folder / "images" / record["file_name"]
            if not src.is_file():
                raise UserError(f"{src}: listed in {item.folder / 'annotations.json'} but missing")
            link_or_copy(src, out / "images" / name)
            distinct += 1
            for _ in range(item.repeat):
                image_id = len(images) + 1
                entry = {**record, "id": image_id, "file_name": name}
                if "license" in record:
                    entry["license"] = licence_ids.get(record["license"], record["license"])
                images.append(entry)
                for ann in by_image.get(record["id"], []):
                    annotations.append({**ann, "id": len(annotations) + 1, "image_id": image_id})
    data = {"info": {"description": "densepose.data.mix of " + ", ".join(f"{i.folder}:{i.repeat}" for i in inputs)},
            "licenses": licences, "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    atomic_write_bytes(out / "annotations.json", json.dumps(data, separators=(",", ":")).encode())
    return {"distinct_images": distinct, "image_entries": len(images), "annotations": len(annotations)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m densepose.data.mix", description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="dataset folders, each optionally FOLDER:REPEAT")
    parser.add_argument("--out", required=True, help="output folder (annotations.json + images/)")
    args = parser.parse_args(argv)
    try:
        counts = mix([parse_input(t) for t in args.inputs], args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {counts['distinct_images']} images, {counts['image_entries']} entries with repeats, "
          f"{counts['annotations']} annotations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
