"""Where derived data lives: Anny's model build, charts, geodesic tables.

Everything is computed once and cached under one directory the user can choose with
``DENSEPOSE_CACHE_DIR`` (default ``~/.cache/densepose``). Nothing is ever downloaded.
"""
from __future__ import annotations

import os
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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a crash leaves no torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
