"""Renders of dressed people among props from seeds never trained on, for the bundled model's tests."""
from __future__ import annotations

from pathlib import Path

from densepose.cli.main import main


def render_held_out(folder: Path, num: int, seed: int) -> Path:
    """``num`` renders of 1-3 people (no negatives, no crowds) with ``seed`` into ``folder``."""
    assert main(["synth", "--out", str(folder), "--num", str(num), "--seed", str(seed), "--min-people", "1",
                 "--max-people", "3", "--negatives", "0", "--crowds", "0", "--no-progress"]) == 0
    return folder
