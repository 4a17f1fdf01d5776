"""What the browser tests share: a real headless Chromium (selenium) at exactly 1280x800, a
server per test on a small synthetic project, and the gestures (strokes, clicks on a part).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without them the
browser tests skip, except in CI (``CI=true``), where importing this module raises: a missing
browser fails the run instead of skipping silently.
"""
from __future__ import annotations

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
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as exc:  # pragma: no cover - depends on the machine
    MISSING = f"browser tests need selenium and uvicorn (pip install -e '.[test,annotate]'): {exc}"
else:
    MISSING = None if CHROME and DRIVER else (
        "no headless browser: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
if MISSING and IN_CI:
    raise RuntimeError(f"CI=true but {MISSING}")  # a collection error fails the run: no silent skip in CI
from densepose.annotate import db, importer  # noqa: E402
from densepose.annotate.app import create_app  # noqa: E402
from densepose.annotate.views import ViewStore, views_dir  # noqa: E402, F401  (views_dir: for the tests)
from densepose.data.rle import decode_dp_masks  # noqa: E402, F401  (for the tests)
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
        " return state.viewsPart === currentPoint().part && $('views').querySelectorAll('canvas').length > 0;"))


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


def view_to_screen(d, view: str, px: float, py: float) -> tuple[int, int]:
    """Offsets from the view canvas's centre of picture pixel (px, py), through the view's zoom and pan."""
    return tuple(d.execute_script(
        "const vp = state.viewPanels[arguments[0]].vp, c = vp.canvas;"
        " return [Math.round((arguments[1] - vp.ox) * vp.scale - c.clientWidth / 2),"
        " Math.round((arguments[2] - vp.oy) * vp.scale - c.clientHeight / 2)];", view, px, py))


def click_view(d, view: str, px: float, py: float) -> None:
    canvas = d.find_element(By.ID, "view-" + view)
    ActionChains(d).move_to_element_with_offset(canvas, *view_to_screen(d, view, px, py)).click().perform()


def answer_current(d, store, surface) -> None:
    """Place the current point with a real click on its part in the first view."""
    idle(d)
    part, view = d.execute_script("return [currentPoint().part, $('views').querySelector('canvas').dataset.view]")
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
