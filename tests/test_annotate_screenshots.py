"""The README's screenshots of the annotation app, made when ``DENSEPOSE_SCREENSHOTS=DIR`` is set
(needs the shared photos, the Anny surface and the bundled model): both steps on a COCO photo, the
dashboard and the study of a campaign of simulated annotators on synthetic people."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from test_annotate_browser_helpers import (  # noqa: F401  (fixtures are used by name)
    MISSING, SCREENSHOTS, CHART_TO_MASK_PART, ViewStore, answer_current, api, browser, chrome, db, idle, importer, login,
    press, serve, views_dir, visible, wait)

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
if MISSING is None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys


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
        for _ in range(40):  # show a hand (its palm side lighter), skipping points of other parts
            if d.execute_script("return currentPoint().part") in (2, 3):
                break
            n = d.execute_script("return state.task.points.filter(p => p.status === 'todo').length")
            press(d, "s")
            wait(d, lambda d: d.execute_script("return state.task.points.filter(p => p.status === 'todo').length") < n)
            idle(d)
        first = d.find_element(By.CSS_SELECTOR, "#views canvas")  # one view zoomed in
        ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(first, 0, 0), 0, -250).perform()
        d.save_screenshot(str(SCREENSHOTS / "annotate_step2.png"))
