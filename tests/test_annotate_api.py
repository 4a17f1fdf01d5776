"""The annotation API through starlette's TestClient, on the 24-chart test sphere."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from densepose.annotate import db, importer  # noqa: E402
from densepose.annotate.app import create_app  # noqa: E402
from densepose.data.coco import annotation_to_target, parse_coco  # noqa: E402
from densepose.data.rle import decode_dp_masks  # noqa: E402
from densepose.errors import UserError  # noqa: E402
from densepose.surface.parts import CHART_TO_MASK_PART  # noqa: E402
from test_annotate_helpers import band_labels, make_synthetic, write_image  # noqa: E402
import base64  # noqa: E402


def b64(labels: np.ndarray) -> str:
    return base64.b64encode(labels.astype(np.uint8).tobytes()).decode()


@pytest.fixture()
def env(tmp_path, sphere_surface):
    synth = make_synthetic(tmp_path / "synth", sphere_surface)
    project = tmp_path / "proj"
    n, m = importer.import_coco(project, synth / "annotations.json", synth / "images", synth / "dense")
    assert (n, m) == (2, 2)
    tokens = {"admin": db.add_user(project, "admin", admin=True), "alice": db.add_user(project, "alice"),
              "bob": db.add_user(project, "bob")}
    client = TestClient(create_app(project, surface=sphere_surface))
    hdr = {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}
    return client, hdr, project, sphere_surface


def test_import_checks(tmp_path, sphere_surface):
    synth = make_synthetic(tmp_path / "synth", sphere_surface, n_images=1)
    project = tmp_path / "proj"
    importer.import_coco(project, synth / "annotations.json", synth / "images", synth / "dense")
    assert (project / "images" / "img000.png").is_file() and (project / "truth" / "1.npz").is_file()
    # a file_name leaving the image root is refused
    coco = json.loads((synth / "annotations.json").read_text())
    coco["images"][0]["file_name"] = "../annotations.json"
    (synth / "bad.json").write_text(json.dumps(coco))
    with pytest.raises(UserError, match="relative path"):
        importer.import_coco(project, synth / "bad.json", synth / "images")
    # a folder import checks content, not only the suffix
    folder = tmp_path / "folder"
    write_image(folder / "a.png", 40, 30)
    write_image(folder / "sub" / "b.jpg", 50, 20, fmt="JPEG")
    (folder / "fake.png").write_text("not an image")
    with pytest.raises(UserError, match="fake.png"):
        importer.import_folder(tmp_path / "p2", folder)
    (folder / "fake.png").unlink()
    assert importer.import_folder(tmp_path / "p2", folder) == 2
    con = db.connect(tmp_path / "p2")
    assert sorted(r["file_name"] for r in con.execute("SELECT file_name FROM images")) == ["a.png", "sub/b.jpg"]
    # tokens are stored hashed
    token = db.add_user(tmp_path / "p2", "carol")
    stored = con.execute("SELECT token_hash FROM users WHERE name='carol'").fetchone()[0]
    assert token not in stored and stored == db.hash_token(token)


def test_auth_and_ownership(env):
    client, hdr, project, _ = env
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/me", headers=hdr["alice"]).json() == {"name": "alice", "is_admin": False}
    for path in ("/api/admin/export", "/api/admin/progress"):
        assert client.get(path, headers=hdr["alice"]).status_code == 403
    assert client.post("/api/admin/images?name=x.png", content=b"x", headers=hdr["alice"]).status_code == 403
    ta = client.post("/api/tasks/next", headers=hdr["alice"]).json()
    tb = client.post("/api/tasks/next", headers=hdr["bob"]).json()
    assert ta["kind"] == tb["kind"] == "person" and ta["person_id"] != tb["person_id"]
    # the same task again for alice (her unfinished one), not a new claim
    assert client.post("/api/tasks/next", headers=hdr["alice"]).json()["person_id"] == ta["person_id"]
    pb = tb["person_id"]
    assert client.get(f"/api/persons/{pb}", headers=hdr["alice"]).status_code == 403
    assert client.get(f"/api/persons/{pb}/labels", headers=hdr["alice"]).status_code == 403
    assert client.put(f"/api/persons/{pb}/parts", json={"labels": b64(band_labels())}, headers=hdr["alice"]).status_code == 403
    assert client.get(f"/api/images/{tb['image_id']}", headers=hdr["alice"]).status_code == 403
    assert client.get(f"/api/images/{ta['image_id']}", headers=hdr["alice"]).status_code == 200
    assert client.get(f"/api/persons/{pb}", headers=hdr["admin"]).status_code == 200
    # bob's points cannot be clicked, skipped or undone by alice
    task = client.put(f"/api/persons/{pb}/parts", json={"labels": b64(band_labels())}, headers=hdr["bob"]).json()
    q = task["points"][0]["id"]
    assert client.post(f"/api/points/{q}/skip", headers=hdr["alice"]).status_code == 403
    assert client.post(f"/api/points/{q}/click", json={"view": "front", "px": 1, "py": 1}, headers=hdr["alice"]).status_code == 403
    assert client.post(f"/api/persons/{pb}/undo", headers=hdr["alice"]).status_code == 403
    assert client.get("/api/persons/999", headers=hdr["alice"]).status_code == 404
    # an admin can hand bob's task to alice; the work done so far stays
    assert client.post(f"/api/admin/persons/{pb}/release", headers=hdr["bob"]).status_code == 403
    assert client.post(f"/api/admin/persons/{pb}/release", headers=hdr["admin"]).status_code == 200
    assert client.get(f"/api/persons/{pb}", headers=hdr["bob"]).status_code == 403
    empty = {"labels": b64(np.zeros((256, 256)))}
    r = client.put(f"/api/persons/{ta['person_id']}/parts", json=empty, headers=hdr["alice"])
    assert r.status_code == 400 and "confirm" in r.json()["error"]  # an empty person is closed only when confirmed
    assert client.get(f"/api/persons/{ta['person_id']}", headers=hdr["alice"]).json()["stage"] == "parts"
    client.put(f"/api/persons/{ta['person_id']}/parts", json=dict(empty, confirm_empty=True), headers=hdr["alice"])
    t = client.post("/api/tasks/next", headers=hdr["alice"]).json()  # alice's own is done (empty) -> bob's
    assert t["person_id"] == pb and t["stage"] == "points" and len(t["points"]) == len(task["points"])
    ann = {a["id"]: a for a in client.get("/api/admin/export", headers=hdr["admin"]).json()["annotations"]}
    assert "dp_x" not in ann[ta["person_id"]] and len(ann[ta["person_id"]]["dp_masks"]) == 14


def test_both_steps_and_export_round_trip(env):
    client, hdr, project, surface = env
    h = hdr["alice"]
    task = client.post("/api/tasks/next", headers=h).json()
    pid = task["person_id"]
    assert task["stage"] == "parts" and task["points"] == []
    # bad label maps are refused
    assert client.put(f"/api/persons/{pid}/parts", json={"labels": "!!"}, headers=h).status_code == 400
    assert client.put(f"/api/persons/{pid}/parts", json={"labels": b64(np.zeros(10))}, headers=h).status_code == 400
    assert client.put(f"/api/persons/{pid}/parts", json={"labels": b64(np.full((256, 256), 15))}, headers=h).status_code == 400
    # step 1
    labels = band_labels()
    task = client.put(f"/api/persons/{pid}/parts", json={"labels": b64(labels)}, headers=h).json()
    assert task["stage"] == "points"
    pts = task["points"]
    assert 4 <= len(pts) <= 4 * 14
    for p in pts:  # each point lies in its part, at most 14 per part
        assert labels[int(p["y"]), int(p["x"])] == p["part"]
    assert max(np.bincount([p["part"] for p in pts])) <= 14
    assert np.array_equal(
        np.frombuffer(base64.b64decode(client.get(f"/api/persons/{pid}/labels", headers=h).json()["labels"]), np.uint8)
        .reshape(256, 256), labels)
    # step 2: the views of the first point's part, and a click on the middle of the front view
    p0 = pts[0]
    views = client.get(f"/api/views/{p0['part']}", headers=h).json()["views"]
    assert 2 <= len(views) and {v["name"] for v in views} <= {"front", "back", "left", "right", "top", "bottom"}
    png = client.get(views[0]["url"], headers=h)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (views[0]["width"], views[0]["height"])
    # a click off the body is refused, nothing is stored
    assert client.post(f"/api/points/{p0['id']}/click", json={"view": "front", "px": 1, "py": 1}, headers=h).status_code == 400
    assert client.post(f"/api/points/{p0['id']}/click", json={"view": "nope", "px": 1, "py": 1}, headers=h).status_code == 400
    from densepose.annotate.views import ViewStore, views_dir

    first = views[0]["name"]
    v = ViewStore(views_dir(project, surface), lambda: surface).view(p0["part"], first)
    face_part = CHART_TO_MASK_PART[np.asarray(surface.face_part)[np.maximum(v.face, 0)]]
    # a click on the grey context (another part) is refused with a message naming what was hit
    ys, xs = np.nonzero((v.face >= 0) & (face_part != p0["part"]))
    far = np.argmax(np.abs(ys - ys.mean()) + np.abs(xs - xs.mean()))
    r = client.post(f"/api/points/{p0['id']}/click", json={"view": first, "px": xs[far] + 0.5, "py": ys[far] + 0.5},
                    headers=h)
    assert r.status_code == 400 and "click on the" in r.json()["error"], r.text
    # a click on the part gives the surface point under the pixel, and where it shows in every view
    ys, xs = np.nonzero((v.face >= 0) & (face_part == p0["part"]))
    y, x = ys[len(ys) // 2], xs[len(xs) // 2]
    r = client.post(f"/api/points/{p0['id']}/click", json={"view": first, "px": x + 0.5, "py": y + 0.5}, headers=h).json()
    face = v.face[y, x]
    I, uv = surface.iuv_from_points(np.array([face]), v.bary[y, x][None].astype(float))
    assert r["I"] == I[0] and abs(r["U"] - uv[0, 0]) < 1e-6 and abs(r["V"] - uv[0, 1]) < 1e-6
    assert set(r["marks"]) == {v["name"] for v in views}
    assert abs(r["marks"][first][0] - (x + 0.5)) < 3 and abs(r["marks"][first][1] - (y + 0.5)) < 3
    con = db.connect(project)
    err = con.execute("SELECT error FROM points WHERE id=?", (p0["id"],)).fetchone()[0]
    assert err is not None and 0 <= err < 2 * np.pi * 0.3  # synthetic truth -> a geodesic error on the sphere
    # skip, undo the skip, skip again; then answer the rest
    assert client.post(f"/api/points/{pts[1]['id']}/skip", headers=h).json()["stage"] == "points"
    assert client.post(f"/api/persons/{pid}/undo", headers=h).json()["point_id"] == pts[1]["id"]
    assert client.get(f"/api/persons/{pid}", headers=h).json()["points"][1]["status"] == "todo"
    client.post(f"/api/points/{pts[1]['id']}/skip", headers=h)
    # repainting is refused once points are answered
    assert client.put(f"/api/persons/{pid}/parts", json={"labels": b64(labels)}, headers=h).status_code == 409
    store = ViewStore(views_dir(project, surface), lambda: surface)
    for p in pts[2:]:
        vw = client.get(f"/api/views/{p['part']}", headers=h).json()["views"][0]
        vf = store.view(p["part"], vw["name"]).face
        ys, xs = np.nonzero((vf >= 0) & (CHART_TO_MASK_PART[np.asarray(surface.face_part)[np.maximum(vf, 0)]] == p["part"]))
        r = client.post(f"/api/points/{p['id']}/click", json={"view": vw["name"], "px": xs[len(xs) // 2] + 0.5,
                                                              "py": ys[len(ys) // 2] + 0.5}, headers=h)
        assert r.status_code == 200, r.text
    assert r.json()["stage"] == "done"
    assert client.get(f"/api/persons/{pid}", headers=h).json()["stage"] == "done"
    # export: the dataset loader reads it; masks, points and IUV survive
    data = client.get("/api/admin/export", headers=hdr["admin"]).json()
    coco = parse_coco(data)
    ann = next(a for a in data["annotations"] if a["id"] == pid)
    assert np.array_equal(decode_dp_masks(ann["dp_masks"]), labels)
    assert len(ann["dp_x"]) == len(pts) - 1  # the skipped point is left out
    masks = decode_dp_masks(ann["dp_masks"])  # no point contradicts its mask: its chart is the painted part
    assert [CHART_TO_MASK_PART[i] for i in ann["dp_I"]] == [masks[int(y), int(x)] for x, y in zip(ann["dp_x"], ann["dp_y"])]
    img = coco.images[ann["image_id"]]
    target = annotation_to_target(ann, img["height"], img["width"])
    assert np.array_equal(np.asarray(target["dp"]["mask"]), labels)
    assert np.allclose(np.asarray(target["dp"]["x"]), ann["dp_x"], atol=1e-4)
    other = next(a for a in data["annotations"] if a["id"] != pid)
    assert "dp_x" not in other  # unfinished persons keep their box only
    # the CLI export writes the same file
    from densepose.annotate.export import export_project

    counts = export_project(project, project.parent / "out.json")
    assert counts["annotated"] == 1 and counts["points"] == len(pts) - 1
    assert parse_coco(json.loads((project.parent / "out.json").read_text())).num_people() == 2
    # ... and the training dataset reads it with PROJECT/images as the image root
    from densepose.data.dataset import DensePoseDataset

    dataset = DensePoseDataset(project / "images", project.parent / "out.json")
    k = dataset.coco.image_ids.index(ann["image_id"])
    image, target = dataset[k]
    assert tuple(image.shape) == (3, img["height"], img["width"])
    dp = next(d for d in target["dp"] if d is not None)
    assert np.array_equal(np.asarray(dp["mask"]), labels) and len(dp["I"]) == len(pts) - 1


def test_boxes_step_for_folder_images(tmp_path):
    folder = tmp_path / "imgs"
    write_image(folder / "a.png", 64, 48)
    project = tmp_path / "proj"
    importer.import_folder(project, folder)
    tok = db.add_user(project, "alice")
    h = {"Authorization": f"Bearer {tok}"}
    client = TestClient(create_app(project, surface=object()))
    t = client.post("/api/tasks/next", headers=h).json()
    assert t == {"kind": "boxes", "image_id": 1, "image_size": [64, 48], "boxes": [], "fixed": []}
    assert client.post("/api/images/1/boxes", json={"boxes": [[0, 0, 2, 2]]}, headers=h).status_code == 400
    # no boxes closes the image only when the annotator confirms it shows nobody
    r = client.post("/api/images/1/boxes", json={"boxes": []}, headers=h)
    assert r.status_code == 400 and "no people" in r.json()["error"]
    assert client.post("/api/tasks/next", headers=h).json()["kind"] == "boxes"
    assert client.post("/api/images/1/boxes", json={"boxes": [[5, 5, 30, 40]]}, headers=h).status_code == 200
    assert client.post("/api/images/1/boxes", json={"boxes": [[5, 5, 30, 40]]}, headers=h).status_code == 409
    t = client.post("/api/tasks/next", headers=h).json()
    assert t["kind"] == "person" and t["bbox"] == [5, 5, 30, 40]
    # step 0 can be undone while nobody has painted the persons: the boxes come back for editing
    assert client.post("/api/images/1/reopen", headers=h).status_code == 200
    t = client.post("/api/tasks/next", headers=h).json()
    assert t["kind"] == "boxes" and t["boxes"] == [[5, 5, 30, 40]] and t["fixed"] == []
    assert client.post("/api/images/1/boxes", json={"boxes": [], "no_people": True}, headers=h).status_code == 200
    assert client.post("/api/tasks/next", headers=h).json()["kind"] == "none"
    # the owner can reopen an image closed as "no people"
    admin = {"Authorization": f"Bearer {db.add_user(project, 'boss', admin=True)}"}
    assert client.post("/api/images/1/reopen", headers=h).status_code == 200  # its boxer may, too
    client.post("/api/images/1/boxes", json={"boxes": [], "no_people": True}, headers=h)
    assert client.post("/api/admin/images/1/reopen", headers=admin).status_code == 200
    assert client.post("/api/tasks/next", headers=h).json()["kind"] == "boxes"


def test_traversal_and_uploads(env, monkeypatch):
    client, hdr, project, _ = env
    h = hdr["admin"]
    secret = (project / db.DB_NAME).read_bytes()[:16]
    for path in ("/static/../annotate.db", "/static/%2e%2e/annotate.db", "/static/..%2fannotate.db",
                 "/static/%2e%2e%2f%2e%2e%2fetc/passwd", "/api/images/..%2f..%2fannotate.db",
                 "/api/images/1%2f..%2f..%2fannotate.db", "/api/views/1/..%2f..%2f..%2fannotate.db.png",
                 "/api/views/..%2f1/front.png", "/api/views/15/front.png", "/api/views/1/front%2f..%2f.png"):
        r = client.get(path, headers=h)
        assert r.status_code in (400, 404), path
        assert secret not in r.content
    assert client.get("/static/app.js").status_code == 200
    index = client.get("/")
    assert index.status_code == 200 and "DensePose annotator" in index.text
    assert index.headers["x-content-type-options"] == "nosniff"
    # uploads: checked by content and size, and confined to images/
    buf = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buf, format="PNG")
    ok = client.post("/api/admin/images?name=new.png", content=buf.getvalue(), headers=h)
    assert ok.status_code == 200 and (project / "images" / "new.png").is_file()
    for name in ("../evil.png", "/tmp/evil.png", "a/../../evil.png", ""):
        r = client.post(f"/api/admin/images?name={name}", content=buf.getvalue(), headers=h)
        assert r.status_code == 400, name
    assert not (project / "evil.png").exists() and not (project.parent / "evil.png").exists()
    gif = io.BytesIO()
    Image.new("RGB", (20, 10)).save(gif, format="GIF")
    assert "JPEG or PNG" in client.post("/api/admin/images?name=x.gif", content=gif.getvalue(), headers=h).text
    assert client.post("/api/admin/images?name=x.jpg", content=buf.getvalue(), headers=h).status_code == 400
    assert client.post("/api/admin/images?name=x.png", content=b"\x89PNG garbage", headers=h).status_code == 400
    monkeypatch.setattr("densepose.annotate.importer.MAX_IMAGE_BYTES", 100)
    assert client.post("/api/admin/images?name=big.png", content=b"x" * 200, headers=h).status_code == 413
    # oversized JSON bodies are refused before parsing
    monkeypatch.setattr("densepose.annotate.server.MAX_JSON_BYTES", 1000)
    t = client.post("/api/tasks/next", headers=hdr["alice"]).json()
    r = client.put(f"/api/persons/{t['person_id']}/parts", json={"labels": b64(band_labels())}, headers=hdr["alice"])
    assert r.status_code == 413
