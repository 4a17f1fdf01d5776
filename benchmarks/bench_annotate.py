"""Annotation tool figures on the real Anny surface: view rendering, API latency, simulated study.

    python benchmarks/bench_annotate.py [--images 4] [--size 384]

Renders a few synthetic images with ``densepose synth``, imports them with their dense truth,
then times: rendering the part views (cold), the step-1 save and step-2 click requests through
the ASGI app, the simulated annotator, and the study (mean geodesic error, heat maps).
"""
from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--size", type=int, default=384)
    args = ap.parse_args()

    from starlette.testclient import TestClient

    from densepose.annotate import db, importer
    from densepose.annotate.app import create_app
    from densepose.annotate.clicks import part_faces
    from densepose.annotate.simulate import simulate
    from densepose.annotate.study import run_study
    from densepose.annotate.truth import truth_labels
    from densepose.annotate.views import ViewStore, views_dir
    from densepose.surface import load_surface

    tmp = Path(tempfile.mkdtemp(prefix="bench_annotate_"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "densepose.cli.main", "synth", "--out", str(tmp / "synth"), "--num",
                    str(args.images), "--size", str(args.size), "--seed", "1", "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"synth {args.images} images at {args.size}px: {time.perf_counter() - t:.1f} s")
    project = tmp / "proj"
    t = time.perf_counter()
    n, m = importer.import_coco(project, tmp / "synth" / "annotations.json", tmp / "synth" / "images", tmp / "synth" / "dense")
    print(f"import: {n} images, {m} persons in {time.perf_counter() - t:.2f} s")

    t = time.perf_counter()
    surface = load_surface("anny")
    surface.geodesics  # noqa: B018  (built on first use)
    print(f"load anny surface + geodesics: {time.perf_counter() - t:.1f} s")
    store = ViewStore(views_dir(project, surface), lambda: surface)
    t = time.perf_counter()
    n_views = sum(len(store.views(k)) for k in range(1, 15))
    print(f"render part views (cold): {n_views} views of 14 parts in {time.perf_counter() - t:.2f} s")

    token = db.add_user(project, "bench")
    db.add_user(project, "sim")
    client = TestClient(create_app(project, surface=surface))
    h = {"Authorization": f"Bearer {token}"}
    task = client.post("/api/tasks/next", headers=h).json()
    con = db.connect(project)
    person = dict(con.execute("SELECT * FROM persons WHERE id=?", (task["person_id"],)).fetchone())
    labels = truth_labels(project, person)
    t = time.perf_counter()
    task = client.put(f"/api/persons/{person['id']}/parts", headers=h,
                      json={"labels": base64.b64encode(labels.tobytes()).decode()}).json()
    print(f"step 1 save (RLE + k-means, {len(task['points'])} points): {1000 * (time.perf_counter() - t):.0f} ms")
    times = []
    for p in task["points"]:
        v = store.views(p["part"])[0]
        ys, xs = np.nonzero((v.face >= 0) & part_faces(surface, p["part"])[np.maximum(v.face, 0)])  # on the part
        t = time.perf_counter()
        r = client.post(f"/api/points/{p['id']}/click", headers=h,
                        json={"view": v.name, "px": float(xs[len(xs) // 2]) + 0.5, "py": float(ys[len(ys) // 2]) + 0.5})
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
    print(f"step 2 click (surface point, IUV, geodesic error, commit): median {1000 * np.median(times):.1f} ms, "
          f"p95 {1000 * np.percentile(times, 95):.1f} ms over {len(times)} clicks")

    t = time.perf_counter()
    for _ in times:  # take the arbitrary benchmark clicks back so the study sees only the simulated annotator
        client.post(f"/api/persons/{person['id']}/undo", headers=h)
    print(f"undo: {1000 * (time.perf_counter() - t) / len(times):.1f} ms per request")

    t = time.perf_counter()
    res = simulate(project, "sim", surface, progress=False)
    dt = time.perf_counter() - t
    print(f"simulated annotator: {res['persons']} persons, {res['clicks']} clicks in {dt:.1f} s "
          f"({res['clicks'] / dt:.0f} clicks/s)")
    t = time.perf_counter()
    report = run_study(project, surface, tmp / "study")
    print(f"study: {report['clicks']} clicks, mean {report['mean_cm']:.2f} cm, median {report['median_cm']:.2f} cm "
          f"in {time.perf_counter() - t:.1f} s -> {tmp / 'study'}")


if __name__ == "__main__":
    main()
