"""Campaign safety through the API: no data-loss traps, the owner's review, assignment and second
annotators, the export's consistency, and no HTTP 500 on hostile input."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from densepose.annotate import db, importer  # noqa: E402
from densepose.annotate.app import create_app  # noqa: E402
from densepose.annotate.clicks import part_faces  # noqa: E402
from densepose.annotate.export import export_coco  # noqa: E402
from densepose.annotate.simulate import simulate  # noqa: E402
from densepose.annotate.views import ViewStore, views_dir  # noqa: E402
from densepose.surface.parts import CHART_TO_MASK_PART  # noqa: E402
from test_annotate_helpers import band_labels, make_synthetic, write_image  # noqa: E402


def b64(labels: np.ndarray) -> str:
    return base64.b64encode(np.asarray(labels, np.uint8).tobytes()).decode()


@pytest.fixture(scope="module")
def views_cache(tmp_path_factory):
    """Rendered part views shared by the module's projects (rendering is the slow part)."""
    return tmp_path_factory.mktemp("views")


@pytest.fixture()
def env(tmp_path, sphere_surface, views_cache):
    synth = make_synthetic(tmp_path / "synth", sphere_surface)
    project = tmp_path / "proj"
    importer.import_coco(project, synth / "annotations.json", synth / "images", synth / "dense")
    write_image(tmp_path / "photos" / "photo.png", 60, 40)
    importer.import_folder(project, tmp_path / "photos")  # a photo without boxes: step 0
    (project / "views").symlink_to(views_cache, target_is_directory=True)
    tokens = {n: db.add_user(project, n, admin=n == "boss") for n in ("boss", "alice", "bob")}
    client = TestClient(create_app(project, surface=sphere_surface))
    hdr = {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}
    return client, hdr, project, sphere_surface


_PIXELS: dict[tuple[str, int], tuple[str, float, float]] = {}


def pixel_on_part(views: str, surface, part: int) -> tuple[str, float, float]:
    """(view, px, py) of a pixel showing ``part`` in its first view."""
    if (views, part) not in _PIXELS:
        v = ViewStore(views, lambda: surface).views(part)[0]
        ys, xs = np.nonzero((v.face >= 0) & part_faces(surface, part)[np.maximum(v.face, 0)])
        _PIXELS[views, part] = v.name, xs[len(xs) // 2] + 0.5, ys[len(ys) // 2] + 0.5
    return _PIXELS[views, part]


def click_on_part(client, h, project, surface, point: dict) -> dict:
    name, px, py = pixel_on_part(str(views_dir(project, surface).resolve()), surface, point["part"])
    r = client.post(f"/api/points/{point['id']}/click", headers=h, json={"view": name, "px": px, "py": py})
    assert r.status_code == 200, r.text
    return r.json()


def test_admin_sessions_never_claim(env):
    client, hdr, project, _ = env
    assert client.post("/api/tasks/next", headers=hdr["boss"]).json() == {"kind": "admin"}
    con = db.connect(project)
    assert con.execute("SELECT COUNT(*) FROM persons WHERE owner IS NOT NULL").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM images WHERE boxes_owner IS NOT NULL").fetchone()[0] == 0


def test_hostile_bodies_are_4xx_with_a_message(env):
    client, hdr, project, _ = env
    t = client.post("/api/tasks/next", headers=hdr["alice"]).json()
    nested = b"[" * 200_000 + b"]" * 200_000
    r = client.put(f"/api/persons/{t['person_id']}/parts", content=nested, headers=hdr["alice"])
    assert r.status_code == 400 and "nested" in r.json()["error"]
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    r = client.post("/api/admin/images?name=" + "a" * 5000 + ".png", content=buf.getvalue(), headers=hdr["boss"])
    assert r.status_code == 400 and "characters" in r.json()["error"]
    r = client.post("/api/admin/images?name=" + "a" * 300 + ".png", content=buf.getvalue(), headers=hdr["boss"])
    assert r.status_code == 400 and "bytes" in r.json()["error"]
    r = client.post("/api/points/1/click", content=b'{"view": "front", "px": 1e400, "py": 0}', headers=hdr["alice"])
    assert 400 <= r.status_code < 500


def test_step1_draft_is_kept_and_repainting_keeps_answers_inside_their_part(env):
    client, hdr, project, surface = env
    h = hdr["alice"]
    pid = client.post("/api/tasks/next", headers=h).json()["person_id"]
    labels = band_labels()
    assert client.put(f"/api/persons/{pid}/draft", json={"labels": b64(labels)}, headers=h).json() == {"saved": True}
    got = client.get(f"/api/persons/{pid}/labels", headers=h).json()["labels"]
    assert np.array_equal(np.frombuffer(base64.b64decode(got), np.uint8).reshape(256, 256), labels)
    assert client.get(f"/api/persons/{pid}", headers=h).json()["stage"] == "parts"
    t = client.put(f"/api/persons/{pid}/parts", json={"labels": b64(labels)}, headers=h).json()
    assert client.put(f"/api/persons/{pid}/draft", json={"labels": b64(labels)}, headers=h).status_code == 409
    top, bottom = t["points"][0], t["points"][-1]
    for p in (top, bottom):
        click_on_part(client, h, project, surface, p)
    before = {p["id"]: p for p in client.get(f"/api/persons/{pid}", headers=h).json()["points"]}
    # back to step 1 in one request although points are answered; erase the top band
    assert client.post(f"/api/persons/{pid}/reopen", headers=h).json()["stage"] == "parts"
    repainted = labels.copy()
    repainted[:64] = 0
    t = client.put(f"/api/persons/{pid}/parts", json={"labels": b64(repainted)}, headers=h).json()
    after = {p["id"]: p for p in t["points"]}
    assert top["id"] not in after  # its pixel is no longer painted
    assert dict(after[bottom["id"]], idx=0) == dict(before[bottom["id"]], idx=0)  # kept, answer and all
    assert all(repainted[int(p["y"]), int(p["x"])] == p["part"] for p in t["points"])
    assert [p["idx"] for p in t["points"]] == list(range(len(t["points"])))
    assert sum(p["part"] == bottom["part"] for p in t["points"]) == sum(p["part"] == bottom["part"] for p in before.values())


def test_owner_review_assignment_and_second_annotator(env):
    client, hdr, project, surface = env
    a, b, boss = hdr["alice"], hdr["bob"], hdr["boss"]
    # image 2 is assigned to bob: alice never claims it
    assert client.post("/api/admin/assign", json={"images": [2], "annotator": "bob"}, headers=boss).json()["assigned"] == 1
    assert client.post("/api/admin/assign", json={"images": [2], "annotator": "nobody"}, headers=boss).status_code == 404
    ta = client.post("/api/tasks/next", headers=a).json()
    assert ta["image_id"] == 1
    t = client.put(f"/api/persons/{ta['person_id']}/parts", json={"labels": b64(band_labels())}, headers=a).json()
    for p in t["points"]:
        r = click_on_part(client, a, project, surface, p)
    assert r["stage"] == "done"
    assert client.post("/api/tasks/next", headers=a).json()["kind"] == "boxes"  # not bob's image 2
    tb = client.post("/api/tasks/next", headers=b).json()
    assert tb["image_id"] == 2
    pid = ta["person_id"]
    # review: reject with a note -> back to alice, who sees the note; she closes it again; accept
    r = client.post(f"/api/admin/persons/{pid}/reopen", json={"note": "check the hands", "reject": True}, headers=boss)
    assert r.status_code == 200
    t = client.post("/api/tasks/next", headers=a).json()
    assert t["person_id"] == pid and t["stage"] == "points" and t["review_note"] == "check the hands"
    assert client.post(f"/api/persons/{pid}/finish", headers=a).json() == {"stage": "done"}
    assert client.post(f"/api/admin/persons/{pid}/accept", headers=a).status_code == 403
    assert client.post(f"/api/admin/persons/{pid}/accept", headers=boss).status_code == 200
    # a second annotator gets the same points; alice never gets her own person's copy
    copy = client.post(f"/api/admin/persons/{pid}/replicate", headers=boss).json()["person_id"]
    con = db.connect(project)
    con.execute("UPDATE persons SET stage='done' WHERE id=?", (tb["person_id"],))  # bob is free
    con.close()
    assert client.post("/api/tasks/next", headers=a).json()["kind"] == "boxes"
    tc = client.post("/api/tasks/next", headers=b).json()
    assert tc["person_id"] == copy and [(p["x"], p["y"], p["part"]) for p in tc["points"]] == \
        [(p["x"], p["y"], p["part"]) for p in t["points"]]
    assert client.put(f"/api/persons/{copy}/parts", json={"labels": b64(band_labels())}, headers=b).status_code == 409
    for p in tc["points"]:
        click_on_part(client, b, project, surface, p)
    d = client.get("/api/admin/dashboard", headers=boss).json()
    assert d["agreement"]["pairs"] == len(t["points"])
    assert d["agreement"]["mean_cm"] < 0.01  # both clicked the same pixels
    assert "alice/bob" in d["agreement"]["by_pair"]
    by_name = {x["name"]: x for x in d["annotators"]}
    assert by_name["alice"]["points"] == len(t["points"]) and by_name["bob"]["points"] == len(t["points"])
    assert by_name["alice"]["mean_error_cm"] is not None  # synthetic images: errors against the truth
    assert d["totals"]["accepted"] == 1 and d["totals"]["images_without_boxes"] == 1
    assert {i["id"]: i["assignee"] for i in d["images"]}[2] == "bob"
    # the copy is not exported
    data = client.get("/api/admin/export", headers=boss).json()
    assert copy not in {x["id"] for x in data["annotations"]}
    # the owner can reopen any person, even a finished, accepted one
    assert client.post(f"/api/admin/persons/{pid}/reopen", json={}, headers=boss).status_code == 200
    assert client.get(f"/api/persons/{pid}", headers=a).json()["stage"] == "points"


def test_export_never_contradicts_the_masks(env):
    client, hdr, project, surface = env
    a = hdr["alice"]
    pid = client.post("/api/tasks/next", headers=a).json()["person_id"]
    t = client.put(f"/api/persons/{pid}/parts", json={"labels": b64(band_labels())}, headers=a).json()
    for p in t["points"]:
        click_on_part(client, a, project, surface, p)
    con = db.connect(project)
    # a stored answer whose chart is not the painted part (as older versions stored clicks on context)
    bad = t["points"][0]
    wrong_chart = next(c for c in range(1, 25) if CHART_TO_MASK_PART[c] not in CHART_TO_MASK_PART[[1, 3, 16, 23]])
    con.execute("UPDATE points SET I=? WHERE id=?", (wrong_chart, bad["id"]))
    data = export_coco(con)
    ann = next(x for x in data["annotations"] if x["id"] == pid)
    assert len(ann["dp_I"]) == len(t["points"]) - 1 and wrong_chart not in ann["dp_I"]


def test_simulate_claims_only_what_it_can_do(env, tmp_path):
    client, hdr, project, surface = env
    res = simulate(project, "bob", surface, sigma=0.0, confusion=0.0, progress=False)
    assert res["persons"] == 2 and res["left_for_people"] == 1
    con = db.connect(project)
    photo = con.execute("SELECT * FROM images WHERE has_truth=0").fetchone()
    assert photo["boxes_owner"] is None and photo["boxes_done"] == 0  # the photo is left for people
    from densepose.errors import UserError

    with pytest.raises(UserError, match="admin"):
        simulate(project, "boss", surface, progress=False)


def test_every_view_shows_its_part_on_anny(anny_surface):
    """The part is drawn over whatever hides it (the other leg in a side view): every view kept for a
    part shows a good share of it, and the views where it faces away are left out."""
    from densepose.annotate.views import MIN_PART_PIXELS, render_part_views

    for part in (6, 7, 10):  # upper leg right and left, lower leg right: hidden by the other leg from the side
        views = render_part_views(anny_surface, part, size=128)
        assert {"left", "right"} <= {v.name for v in views}
        for v in views:
            shown = int((part_faces(anny_surface, part)[np.maximum(v.face, 0)] & (v.face >= 0)).sum())
            assert shown >= MIN_PART_PIXELS, (part, v.name, shown)


def test_projects_made_before_the_campaign_columns_open_and_keep_their_data(tmp_path):
    import sqlite3

    from densepose.annotate.db import LATER_COLUMNS, SCHEMA

    old = SCHEMA
    for table, column, decl in LATER_COLUMNS:  # the schema without the columns added later
        old = "\n".join(line for line in old.split("\n") if not line.strip().startswith(f"{column} "))
    old = old.replace("boxes_done INTEGER NOT NULL DEFAULT 0,", "boxes_done INTEGER NOT NULL DEFAULT 0")
    old = old.replace("dp_masks TEXT,", "dp_masks TEXT")
    (tmp_path / "p").mkdir()
    con = sqlite3.connect(tmp_path / "p" / db.DB_NAME)
    con.executescript(old)
    assert "review" not in {r[1] for r in con.execute("PRAGMA table_info(persons)")}
    con.execute("INSERT INTO images (file_name, width, height, boxes_done) VALUES ('a.png', 10, 10, 1)")
    con.execute("INSERT INTO persons (image_id, x, y, w, h) VALUES (1, 0, 0, 5, 5)")
    con.commit()
    con.close()
    con = db.connect(tmp_path / "p")
    for table, column, _ in LATER_COLUMNS:
        assert column in {r[1] for r in con.execute(f"PRAGMA table_info({table})")}, (table, column)
    row = con.execute("SELECT * FROM persons").fetchone()
    assert row["w"] == 5 and row["review"] == "" and row["replica_of"] is None


def test_reopening_an_image_keeps_work_and_imported_fields(env):
    """Back in step 0, a person with work goes on, and a COCO person whose box comes back unchanged
    keeps what it was imported with."""
    client, hdr, project, surface = env
    a, boss = hdr["alice"], hdr["boss"]
    t = client.post("/api/tasks/next", headers=a).json()  # person 1 on image 1
    client.put(f"/api/persons/{t['person_id']}/draft", json={"labels": b64(band_labels())}, headers=a)
    con = db.connect(project)
    con.execute("UPDATE persons SET extra=? WHERE id=2", ('{"iscrowd": 0, "num_keypoints": 3}',))
    assert client.post("/api/admin/images/1/reopen", headers=boss).status_code == 200
    assert client.post("/api/admin/images/2/reopen", headers=boss).status_code == 200
    assert client.post("/api/tasks/next", headers=a).json()["person_id"] == t["person_id"]  # her work goes on
    b = hdr["bob"]
    task = client.post("/api/tasks/next", headers=b).json()  # image 1: alice's painted person is fixed
    assert task["image_id"] == 1 and task["boxes"] == [] and len(task["fixed"]) == 1
    assert client.post("/api/images/1/boxes", json={"boxes": []}, headers=b).status_code == 200  # no "no people?"
    task = client.post("/api/tasks/next", headers=b).json()
    assert task["kind"] == "boxes" and task["image_id"] == 2 and len(task["boxes"]) == 1  # not person 2 itself
    box = task["boxes"][0]
    assert client.post("/api/images/2/boxes", json={"boxes": [box, [1, 1, 20, 20]]}, headers=b).json()["person_ids"][0] == 2
    data = client.get("/api/admin/export", headers=boss).json()
    assert next(x for x in data["annotations"] if x["id"] == 2)["num_keypoints"] == 3
    assert sum(x["image_id"] == 2 for x in data["annotations"]) == 2
