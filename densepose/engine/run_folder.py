"""The run folder of a training run: created only after every input has been checked, and tidied
after a killed run.

A run killed with SIGKILL or a power cut cannot clean up after itself: it may leave the temporary
files of an atomic write (``.<name>.<random>.tmp``, see `densepose.cache.atomic_write_bytes`) and a
torn last line in ``metrics.jsonl`` (handled by `densepose.engine.metrics.MetricsWriter`). The next
run in the same folder removes the temporary files before it writes anything.
"""
from __future__ import annotations

import logging
from pathlib import Path

from densepose.cache import atomic_write_bytes

log = logging.getLogger("densepose.train")

#: Temporary files of interrupted atomic writes: hidden, named after their target, ``.tmp`` suffix.
STALE_TEMP_GLOB = ".*.tmp"


def remove_stale_temp_files(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files that killed runs left in ``run_dir``; returns what was removed."""
    removed = []
    for path in sorted(Path(run_dir).glob(STALE_TEMP_GLOB)):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), run_dir)
    return removed


def create_run_folder(run_dir: str | Path, config_yaml: str) -> None:
    """Make ``run_dir``, tidy what a killed run left, and write the resolved ``config.yaml``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir)
    atomic_write_bytes(run_dir / "config.yaml", config_yaml.encode())
