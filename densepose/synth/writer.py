"""Write a synthetic DensePose-COCO dataset: resumable, shardable, mergeable.

Layout of ``DIR`` (or of ``DIR/train`` and ``DIR/val`` with a split)::

    images/<stem>.jpg        RGB (or .png)
    dense/<stem>.npz         instance, I (uint8), U, V (float16)
    parts/<stem>.json        the image record and its people, written last (the "done" marker)
    annotations.json         assembled from parts/ once every image of the run exists
    synth.json               the run's settings (a resumed run must use the same ones)

Every file goes through a temporary file and a rename, so a killed run leaves only whole files;
re-running skips the images whose ``parts/<stem>.json`` exists.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from densepose.cache import atomic_write_bytes, link_or_copy
from densepose.data.coco import KEYPOINT_NAMES
from densepose.errors import UserError

#: COCO person skeleton (1-based keypoint indices).
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
            [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINT_NAMES),
               "skeleton": SKELETON}]


@dataclass
class RunSettings:
    """What determines the images of a run (stored in synth.json)."""

    num: int
    size: int
    seed: int
    max_people: int = 4
    min_people: int = 1
    image_format: str = "jpg"
    quality: int = 95
    split: float | None = None
    min_dp_pixels: int = 300
    plain: bool = False              # the plain mode (bare bodies, painted clothes)
    negatives: float = 0.1           # realistic mode: fraction of images without people
    crowds: float = 0.08             # realistic mode: fraction of images with a crowd of 10-16
    max_props: int = 6               # realistic mode: distractor objects per image 0..max_props
    portraits: float = 0.0           # realistic mode: fraction of the images with people shot as portraits


#: Settings a directory written before them does not record, at the value that renders what it
#: holds: those of the realistic mode (such directories are plain runs), then ``portraits``.
_UNRECORDED = {"plain": True, "negatives": 0.1, "crowds": 0.08, "max_props": 6, "portraits": 0.0}


def stem(index: int) -> str:
    return f"{index:08d}"


def split_of(settings: RunSettings, index: int) -> str:
    """'' without a split, else 'train' or 'val' (a fixed draw per image, independent of sharding)."""
    if settings.split is None:
        return ""
    u = np.random.default_rng(np.random.SeedSequence([settings.seed, index, 0x5917])).random()
    return "train" if u < settings.split else "val"


def split_dirs(settings: RunSettings) -> list[str]:
    return [""] if settings.split is None else ["train", "val"]


# --------------------------------------------------------------------------- one image
def encode_dense(instance: np.ndarray, I: np.ndarray, U: np.ndarray, V: np.ndarray) -> bytes:
    """The ``dense/<stem>.npz`` bytes (fast deflate: maps are mostly background)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in (("instance", instance), ("I", I), ("U", U), ("V", V)):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))  # fixed: byte-identical reruns
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=1)
    return buf.getvalue()


def write_image(root: Path, settings: RunSettings, index: int, sample) -> None:
    """Write image, dense maps, then the per-image annotation fragment (the completion marker)."""
    sub = root / split_of(settings, index)
    name = f"{stem(index)}.{settings.image_format}"
    buf = io.BytesIO()
    img = Image.fromarray(sample.rgb)
    if settings.image_format == "jpg":
        img.save(buf, format="JPEG", quality=settings.quality)
    else:
        img.save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(sub / "images" / name, buf.getvalue())
    atomic_write_bytes(sub / "dense" / f"{stem(index)}.npz", encode_dense(sample.instance, sample.I, sample.U, sample.V))
    H, W = sample.rgb.shape[:2]
    fragment = {
        "image": {"id": index + 1, "file_name": name, "height": H, "width": W},
        "annotations": sample.people,
    }
    atomic_write_bytes(sub / "parts" / f"{stem(index)}.json", json.dumps(fragment, separators=(",", ":")).encode())


def load_dense(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``dense/<stem>.npz`` -> {instance, I, U, V}."""
    with np.load(path) as data:
        return {k: data[k] for k in ("instance", "I", "U", "V")}


# --------------------------------------------------------------------------- the run
def _settings_path(out: Path) -> Path:
    return out / "synth.json"


def check_settings(out: Path, settings: RunSettings) -> None:
    """Record the run's settings; refuse to resume a directory made with other settings."""
    path = _settings_path(out)
    if path.exists():
        old = {**_UNRECORDED, **json.loads(path.read_text())}
        if old != asdict(settings):
            diff = ", ".join(f"{k}={old.get(k)!r} (now {v!r})" for k, v in asdict(settings).items() if old.get(k) != v)
            raise UserError(f"{path}: this directory was made with other settings: {diff}; use another --out")
    else:
        atomic_write_bytes(path, json.dumps(asdict(settings), indent=1).encode())


def done(out: Path, settings: RunSettings, index: int) -> bool:
    return (out / split_of(settings, index) / "parts" / f"{stem(index)}.json").exists()


_WORKER = {}


def _init_worker(settings: RunSettings, photos: list[str], hdris: list[str] = (), assets: str | None = None) -> None:
    import torch

    from densepose.synth.scene import Synthesizer

    # One image at a time per process; parallelism comes from worker processes. NumPy's BLAS
    # threads would otherwise spin on every small (N, 3) x (3, 3) product: 10-50x slower ones on
    # a busy machine.
    torch.set_num_threads(1)
    _WORKER["blas"] = threadpool_limits(1, user_api="blas")
    _WORKER["synth"] = Synthesizer(synth_config(settings, photos, hdris, assets))


def _init_pool_worker(*args) -> None:
    """`_init_worker` in a Pool process. A Pool restarts a worker whose initializer raises, forever:
    the error is kept instead, and the worker's first job raises it in the main process."""
    try:
        _init_worker(*args)
    except Exception as exc:  # noqa: BLE001 - any failure, reported once by `_work`
        _WORKER["error"] = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def synth_config(settings: RunSettings, photos: list[str], hdris: list[str] = (), assets: str | None = None):
    """The renderer's configuration for a run's settings and its asset folders' contents."""
    from densepose.synth.scene import SynthConfig

    return SynthConfig(height=settings.size, width=settings.size, max_people=settings.max_people,
                       min_people=settings.min_people, min_dp_pixels=settings.min_dp_pixels, photos=list(photos),
                       plain=settings.plain, hdris=list(hdris), assets=assets,
                       negative_fraction=settings.negatives, crowd_fraction=settings.crowds,
                       max_props=settings.max_props, portrait_fraction=settings.portraits)


def _work(args: tuple[Path, RunSettings, int]) -> int:
    out, settings, index = args
    if "error" in _WORKER:
        raise UserError(f"a synth worker could not start: {_WORKER['error']}")
    write_image(out, settings, index, _WORKER["synth"].render(settings.seed, index))
    return index


def generate(out: str | Path, settings: RunSettings, photos: list[str], shard: tuple[int, int] = (0, 1),
             workers: int = 1, progress: bool = True, hdris: list[str] = (), assets: str | None = None) -> int:
    """Render the images of ``shard`` (i, n: indices with index % n == i) not yet done; assemble.

    ``photos``: background photo paths; ``hdris``: OpenEXR panoramas; ``assets``: MakeHuman
    clothes/hair folder (realistic mode; procedural skies and garments without them).
    ``workers`` > 1 start fresh interpreters (``spawn``): from a script, call this under
    ``if __name__ == "__main__":``.

    Returns the number of images rendered by this call.
    """
    from densepose.progress import Progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings)
    _remove_stale_temp_files(out)
    i, n = shard
    todo = [k for k in range(i, settings.num, n) if not done(out, settings, k)]
    jobs = [(out, settings, k) for k in todo]
    if workers <= 1 or len(todo) <= 1:
        import torch

        threads = torch.get_num_threads()
        try:
            if todo:
                _init_worker(settings, photos, hdris, assets)
            bar = Progress(len(todo), "synth", "img", enabled=progress)
            for job in jobs:
                _work(job)
                bar.update(1)
        finally:  # in-process use (tests, notebooks) gets its threads back
            torch.set_num_threads(threads)
            if "blas" in _WORKER:
                _WORKER.pop("blas").restore_original_limits()
    else:
        bar = Progress(len(todo), "synth", "img", enabled=progress)
        # Fresh interpreters: a forked copy of a process that runs threads (torch, BLAS, tqdm) can
        # hang on a lock some thread held at the fork (15 forked workers on a 16-core machine stood
        # still in their imports).
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_pool_worker, initargs=(settings, photos, hdris, assets)) as pool:
            for _ in pool.imap_unordered(_work, jobs, chunksize=4):
                bar.update(1)
    bar.close()
    assemble(out, settings, shard)
    return len(todo)


def assemble(out: Path, settings: RunSettings | None = None, shard: tuple[int, int] | None = None) -> int:
    """Join ``parts/*.json`` into ``annotations.json`` in each split folder (annotation ids renumbered);
    returns the number of images joined (0 when nothing was written).

    With ``shard``, nothing is written until every image of that shard is done.
    """
    out = Path(out)
    if settings is not None and shard is not None:
        i, n = shard
        if any(not done(out, settings, k) for k in range(i, settings.num, n)):
            return 0
    if settings is not None:
        subs = split_dirs(settings)
    else:
        subs = [s for s in ("", "train", "val") if (out / s / "parts").is_dir()]
    joined = 0
    for sub in subs:
        folder = out / sub
        images, annotations = [], []
        parts = sorted((folder / "parts").glob("*.json")) if (folder / "parts").is_dir() else []
        for path in parts:
            frag = json.loads(path.read_text())
            images.append(frag["image"])
            for ann in frag["annotations"]:
                annotations.append({"id": len(annotations) + 1, "image_id": frag["image"]["id"], **ann})
        data = {"info": {"description": "densepose synth (Anny)"}, "images": images, "annotations": annotations,
                "categories": CATEGORIES}
        atomic_write_bytes(folder / "annotations.json", json.dumps(data, separators=(",", ":")).encode())
        joined += len(images)
    return joined


def merge(inputs: list[str | Path], out: str | Path) -> int:
    """Join shard directories into ``out`` (files hard-linked or copied); returns the image count."""
    out = Path(out)
    settings = None
    for d in map(Path, inputs):
        path = _settings_path(d)
        if not path.exists():
            raise UserError(f"{path}: not found; is {d} a `densepose synth` output?")
        s = json.loads(path.read_text())
        if settings is not None and s != settings:
            raise UserError(f"{path}: settings differ from {inputs[0]}'s; shards of one run must share them")
        settings = s
    out.mkdir(parents=True, exist_ok=True)
    run = RunSettings(**settings)
    check_settings(out, run)
    count = 0
    for d in map(Path, inputs):
        for frag in sorted(d.glob("**/parts/*.json")):
            sub = frag.parent.parent.relative_to(d)
            name = json.loads(frag.read_text())["image"]["file_name"]
            s = frag.stem
            for src, dst in ((d / sub / "images" / name, out / sub / "images" / name),
                             (d / sub / "dense" / f"{s}.npz", out / sub / "dense" / f"{s}.npz"),
                             (frag, out / sub / "parts" / frag.name)):  # the fragment last: it marks "done"
                if not src.exists():
                    raise UserError(f"{src}: missing (the shard is incomplete)")
                link_or_copy(src, dst)
            count += 1
    assemble(out, run)
    return count


def _remove_stale_temp_files(out: Path, min_age_s: float = 60.0) -> None:
    """Delete temp files left by a killed run (old enough not to belong to a live concurrent shard)."""
    import time

    now = time.time()
    for tmp in out.glob("**/.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > min_age_s:
                tmp.unlink()
        except FileNotFoundError:
            pass
