"""Where derived data lives: Anny's model build, charts, geodesic tables.

Everything is computed once and cached under one directory the user can choose with
``DENSEPOSE_CACHE_DIR`` (default ``~/.cache/densepose``). Nothing is ever downloaded.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) ``$DENSEPOSE_CACHE_DIR/<parts...>``."""
    root = Path(os.environ.get("DENSEPOSE_CACHE_DIR", Path.home() / ".cache" / "densepose"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: setting the process-wide umask on every write would race with other threads.
_UMASK = _read_umask()


class AtomicPath:
    """A temporary file next to ``path`` that becomes ``path`` on `commit`, or vanishes on `discard`.

    For writers that need a file name (NumPy, PyAV): write to ``tmp``, then `commit` gives it
    normal permissions (0666 minus the umask, where ``mkstemp`` makes 0600) and renames it into
    place, so a crash never leaves a torn ``path``. As a context manager it commits on success
    and discards on an exception.
    """

    def __init__(self, path: str | os.PathLike, suffix: str = ".tmp"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=suffix)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        try:
            os.chmod(self.tmp, 0o666 & ~_UMASK)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicPath":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a crash leaves no torn file."""
    with AtomicPath(path) as out:
        out.tmp.write_bytes(data)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` the file ``src``: a hard link where the file system allows, else a copy.

    The link or copy is made under a temporary name and renamed, so ``dst`` is never half written;
    an existing ``dst`` that is already ``src`` is left alone."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and dst.samefile(src):
        return
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
