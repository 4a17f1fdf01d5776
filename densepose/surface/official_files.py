"""The official evaluator's data files, written and read for any BodySurface.

- ``SMPL_subdiv.mat``: ``U_subdiv``, ``V_subdiv`` (1, M) float and ``Part_ID_subdiv`` (1, M)
  integer (the official code indexes with it, so it must be an integer type): the chart vertices.
- ``SMPL_SUBDIV_TRANSFORM.mat``: ``index`` (1, M), 1-based geodesic-mesh vertex of each chart vertex.
- ``Pdist_matrix.pkl``: ``{'Pdist_matrix': D[np.tril_indices(n, -1)][:, None]}``, the row-major lower
  triangle of the n x n geodesic distance matrix (entry (i, j), i > j, at i (i - 1) / 2 + j; not
  scipy's ``pdist`` order). Written as float32 (the official loader accepts any float dtype).

With these three files the official ``DensePoseCocoEval`` runs on our surface and its numbers can
be compared with ours.
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densepose.cache import atomic_write_bytes
from densepose.errors import UserError
from densepose.io.safe_pickle import load_restricted_pickle
from densepose.surface.base import BodySurface

SUBDIV = "SMPL_subdiv.mat"
TRANSFORM = "SMPL_SUBDIV_TRANSFORM.mat"
PDIST = "Pdist_matrix.pkl"


def condensed_index(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Position of the pair (i, j), i != j (0-based), in the row-major lower triangle."""
    hi, lo = np.maximum(i, j).astype(np.int64), np.minimum(i, j).astype(np.int64)
    return hi * (hi - 1) // 2 + lo


def write_official_files(surface: BodySurface, out_dir: str | Path, rows_per_chunk: int = 256) -> dict[str, Path]:
    """Write the three files for ``surface`` into ``out_dir``; returns their paths."""
    import scipy.io
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (
        (SUBDIV, {"U_subdiv": surface.chart_uv[None, :, 0], "V_subdiv": surface.chart_uv[None, :, 1],
                  "Part_ID_subdiv": surface.chart_vertex_part[None, :].astype(np.int32)}),
        (TRANSFORM, {"index": (surface.chart_vertex_mesh + 1)[None, :].astype(np.int32)}),
    ):
        buf = io.BytesIO()
        scipy.io.savemat(buf, data)
        atomic_write_bytes(out / name, buf.getvalue())
    n = surface.num_vertices
    condensed = np.empty(n * (n - 1) // 2, dtype=np.float32)
    geo = surface.geodesics
    for start in tqdm(range(1, n, rows_per_chunk), desc="Pdist_matrix", unit="rows", leave=False):
        rows = np.arange(start, min(n, start + rows_per_chunk))
        i = np.repeat(rows, rows)  # row i holds the pairs (i, 0..i-1)
        j = np.arange(rows.sum()) - np.repeat(np.cumsum(rows) - rows, rows)
        offset = start * (start - 1) // 2  # rows are contiguous in the row-major lower triangle
        condensed[offset:offset + len(i)] = geo.between_vertices(i, j)
    atomic_write_bytes(out / PDIST, pickle.dumps({"Pdist_matrix": condensed[:, None]}, protocol=4))
    return {"subdiv": out / SUBDIV, "transform": out / TRANSFORM, "pdist": out / PDIST}


@dataclass
class OfficialEvalData:
    """The official evaluator's tables: chart vertices and condensed geodesic distances."""

    uv: np.ndarray          # (M, 2)
    part: np.ndarray        # (M,) 1..24
    mesh_vertex: np.ndarray  # (M,) 0-based geodesic-mesh vertex
    pdist: np.ndarray       # (n (n - 1) / 2,)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Geodesic distance between geodesic-mesh vertices a and b (0-based), 0 where equal."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        out = np.zeros(np.broadcast(a, b).shape)
        diff = a != b
        out[diff] = self.pdist[condensed_index(np.broadcast_to(a, out.shape)[diff], np.broadcast_to(b, out.shape)[diff])]
        return out


def read_official_files(directory: str | Path) -> OfficialEvalData:
    """Read the three files from ``directory`` (ours or the official ones)."""
    import scipy.io

    d = Path(directory)
    for name in (SUBDIV, TRANSFORM, PDIST):
        if not (d / name).is_file():
            raise UserError(f"{d / name}: no such file")
    try:
        sub = scipy.io.loadmat(str(d / SUBDIV))
        tr = scipy.io.loadmat(str(d / TRANSFORM))
    except Exception as exc:
        raise UserError(f"{d}: unreadable .mat file ({exc.__class__.__name__}: {exc})") from None
    for key, mat, name in (("U_subdiv", sub, SUBDIV), ("V_subdiv", sub, SUBDIV), ("Part_ID_subdiv", sub, SUBDIV),
                           ("index", tr, TRANSFORM)):
        if key not in mat:
            raise UserError(f"{d / name}: missing {key}")
    pd = load_restricted_pickle(d / PDIST)  # arrays only: a pickle never runs code here
    if not isinstance(pd, dict) or "Pdist_matrix" not in pd:
        raise UserError(f"{d / PDIST}: expected a dict with 'Pdist_matrix'")
    return OfficialEvalData(
        uv=np.stack([np.asarray(sub["U_subdiv"], dtype=np.float64).ravel(), np.asarray(sub["V_subdiv"], dtype=np.float64).ravel()], 1),
        part=np.asarray(sub["Part_ID_subdiv"]).ravel().astype(np.int64),
        mesh_vertex=np.asarray(tr["index"]).ravel().astype(np.int64) - 1,
        pdist=np.asarray(pd["Pdist_matrix"]).ravel(),
    )
