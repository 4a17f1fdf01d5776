"""MATLAB ``.mat`` data files (the official chart and symmetry files), read with one-line errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from densepose.errors import UserError


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """The variables of the ``.mat`` file at ``path`` (``scipy.io.loadmat``: arrays only, no code runs).

    A missing or unreadable file is a `UserError` naming it.
    """
    import scipy.io

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    try:
        return scipy.io.loadmat(str(p))
    except Exception as exc:
        raise UserError(f"{p}: not a readable MATLAB .mat file ({exc.__class__.__name__}: {exc})") from None
