"""End to end in headless Chromium: log in, upload (import) an image, box a person, paint parts
with brush and polygon, place every correspondence (with skip and undo), export.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped otherwise.
"""
from __future__ import annotations

import os
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

selenium = pytest.importorskip("selenium", reason="browser test needs `pip install selenium`")
uvicorn = pytest.importorskip("uvicorn")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from densepose.annotate import db  # noqa: E402
from densepose.annotate.app import create_app  # noqa: E402
from densepose.data.coco import parse_coco  # noqa: E402
from densepose.data.rle import decode_dp_masks  # noqa: E402

CHROME = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
#: set DENSEPOSE_SCREENSHOTS=DIR to keep screenshots of steps 1 and 2 for a look at the UI
SCREENSHOTS = Path(os.environ["DENSEPOSE_SCREENSHOTS"]) if os.environ.get("DENSEPOSE_SCREENSHOTS") else None
pytestmark = pytest.mark.skipif(
    CHROME is None or DRIVER is None,
    reason="no headless browser: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path, sphere_surface):
    project = tmp_path / "proj"
    token = db.add_user(project, "admin", admin=True)  # creates an empty project
    port = free_port()
    config = uvicorn.Config(create_app(project, surface=sphere_surface), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", token, project
    srv.should_exit = True
    thread.join(10)


@pytest.fixture()
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROME
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def visible(driver, element_id: str, timeout: float = 30):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(EC.visibility_of_element_located((By.ID, element_id)))


def test_browser_end_to_end(server, browser, tmp_path):
    base, token, project = server
    d = browser
    d.get(base + "/")
    visible(d, "token").send_keys(token)
    d.find_element(By.ID, "btn-login").click()
    visible(d, "step-none")  # empty project: nothing to do yet

    # import: upload an image through the admin's file input
    img_path = tmp_path / "person.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(img_path)
    d.find_element(By.ID, "upload").send_keys(str(img_path))
    WebDriverWait(d, 30, poll_frequency=0.05).until(lambda d: "uploaded person.png" in d.find_element(By.ID, "message").text)
    d.execute_script("nextTask()")

    # step 0: drag a person box, Enter saves
    canvas = visible(d, "box-canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(d).move_to_element_with_offset(canvas, int(-0.3 * w), int(-0.35 * h)).click_and_hold() \
        .move_by_offset(int(0.3 * w), int(0.35 * h)).move_by_offset(int(0.3 * w), int(0.35 * h)).release().perform()
    ActionChains(d).send_keys("\n").perform()

    # step 1: brush part 1 (key "1") across the top, then a polygon of part 14 (Shift+4) at the bottom
    canvas = visible(d, "part-canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys("1")
    d.execute_script("state.brush = 20")
    ActionChains(d).move_to_element_with_offset(canvas, int(-0.3 * w), int(-0.25 * h)).click_and_hold() \
        .move_by_offset(int(0.3 * w), 0).move_by_offset(int(0.3 * w), 0).release().perform()
    ActionChains(d).key_down("\ue008").send_keys("4").key_up("\ue008").perform()  # Shift+4 -> part 14
    body.send_keys("p")
    for fx, fy in ((-0.3, 0.1), (0.3, 0.1), (0.3, 0.35), (-0.3, 0.35)):
        ActionChains(d).move_to_element_with_offset(canvas, int(fx * w), int(fy * h)).click().perform()
    body.send_keys("\n")  # close the polygon
    counts = d.execute_script("const c = new Array(15).fill(0); for (const v of state.labels) c[v]++; return c;")
    assert counts[1] > 500 and counts[14] > 5000 and sum(counts[2:14]) == 0
    if SCREENSHOTS:
        d.save_screenshot(str(SCREENSHOTS / "annotate_step1.png"))
    labels_in_browser = np.array(d.execute_script("return Array.from(state.labels)"), np.uint8).reshape(256, 256)
    body.send_keys("\n")  # save parts -> step 2

    # step 2: click the middle of the front view for every point; skip one, undo it, then place it
    visible(d, "step-points")
    WebDriverWait(d, 30, poll_frequency=0.05).until(lambda d: d.execute_script("return !state.busy && state.viewsPart > 0"))
    if SCREENSHOTS:
        d.save_screenshot(str(SCREENSHOTS / "annotate_step2.png"))
    n_points = d.execute_script("return state.task.points.length")
    assert n_points >= 2
    first = True
    for _ in range(n_points + 2):
        if d.find_element(By.ID, "step-done").is_displayed():
            break
        if first:
            WebDriverWait(d, 30, poll_frequency=0.05).until(lambda d: d.execute_script("return !state.busy && state.viewsPart > 0"))
            body.send_keys("s")
            WebDriverWait(d, 30, poll_frequency=0.05).until(lambda d: d.execute_script("return state.task.points[0].status") == "skipped")
            body.send_keys("u")
            WebDriverWait(d, 30, poll_frequency=0.05).until(lambda d: d.execute_script("return state.task.points[0].status") == "todo")
            first = False
        before = d.execute_script("return state.task.points.filter(p => p.status !== 'todo').length")
        view = WebDriverWait(d, 30, poll_frequency=0.05).until(EC.element_to_be_clickable((By.ID, "view-front")))
        view.click()
        WebDriverWait(d, 30, poll_frequency=0.05).until(lambda d: d.execute_script(
            "return !state.busy && state.task.points.filter(p => p.status !== 'todo').length") > before)
    visible(d, "step-done")

    # export from the admin button: a DensePose-COCO download the loader accepts
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path / "downloads")})
    d.find_element(By.ID, "btn-export").click()
    out = tmp_path / "downloads" / "densepose_annotations.json"
    deadline = time.time() + 30
    while not out.is_file() and time.time() < deadline:
        time.sleep(0.2)
    data = json.loads(out.read_text())
    coco = parse_coco(data)
    assert coco.num_people() == 1
    ann = data["annotations"][0]
    assert len(ann["dp_x"]) == n_points and all(1 <= i <= 24 for i in ann["dp_I"])
    assert np.array_equal(decode_dp_masks(ann["dp_masks"]), labels_in_browser)
    x, y, bw, bh = ann["bbox"]
    assert 0.45 * 200 < bw < 0.75 * 200 and 0.5 * 150 < bh < 0.85 * 150  # the dragged box, in image pixels
