"""The real server (uvicorn subprocess): concurrent annotators, and SIGKILL + restart losing nothing."""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from densepose.annotate import db, importer  # noqa: E402
from test_annotate_helpers import band_labels, make_synthetic  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(project, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "densepose.cli.annotate", "serve", "--project", str(project),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/static/app.js", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def test_kill_restart_keeps_acknowledged_work(tmp_path, sphere_surface):
    synth = make_synthetic(tmp_path / "synth", sphere_surface, n_images=2)
    project = tmp_path / "proj"
    importer.import_coco(project, synth / "annotations.json", synth / "images", synth / "dense")
    tokens = [db.add_user(project, f"ann{i}") for i in range(2)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(project, port)
    try:
        # two annotators claim at the same moment: each gets a different person
        def claim(tok):
            return httpx.post(f"{base}/api/tasks/next", headers={"Authorization": f"Bearer {tok}"}, timeout=30).json()

        with ThreadPoolExecutor(2) as ex:
            t0, t1 = ex.map(claim, tokens)
        assert {t0["person_id"], t1["person_id"]} == {1, 2}
        h = {"Authorization": f"Bearer {tokens[0]}"}
        labels = band_labels()
        r = httpx.put(f"{base}/api/persons/{t0['person_id']}/parts", headers=h, timeout=30,
                      json={"labels": base64.b64encode(labels.tobytes()).decode()})
        assert r.status_code == 200
        points = r.json()["points"]
        r = httpx.post(f"{base}/api/points/{points[0]['id']}/skip", headers=h, timeout=30)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint: only what was committed survives
        proc.wait(10)
        proc.stderr.close()
    proc = start_server(project, port)
    try:
        task = httpx.get(f"{base}/api/persons/{t0['person_id']}", headers=h, timeout=30).json()
        assert task["stage"] == "points" and task["points"] == [dict(p, status="skipped") if i == 0 else p
                                                                 for i, p in enumerate(points)]
        got = httpx.get(f"{base}/api/persons/{t0['person_id']}/labels", headers=h, timeout=30).json()["labels"]
        assert np.array_equal(np.frombuffer(base64.b64decode(got), np.uint8).reshape(256, 256), labels)
        # ownership survived too
        h1 = {"Authorization": f"Bearer {tokens[1]}"}
        assert httpx.get(f"{base}/api/persons/{t0['person_id']}", headers=h1, timeout=30).status_code == 403
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
