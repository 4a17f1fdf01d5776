"""The annotation app in a real headless Chromium at 1280x800: a whole person annotated without
scrolling, and each data-loss trap driven as an annotator or the campaign owner would.

Skipped without chromium and chromedriver, except under ``CI=true`` (see the helpers module).
"""
from __future__ import annotations

import base64

import numpy as np
import pytest

from test_annotate_browser_helpers import (  # noqa: F401  (fixtures are used by name)
    MISSING, SCREENSHOTS, CHART_TO_MASK_PART, ViewStore, answer_current, api, band_labels, browser, chrome, click_view,
    db, decode_dp_masks, grid_to_screen, idle, login, no_scrolling, paint_bands, part_pixel, person_row, press, project,
    server, stroke, views_cache, views_dir, visible, wait)

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
if MISSING is None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC


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
    sizes = d.execute_script("return [...document.querySelectorAll('#views canvas')].map(i => i.clientWidth)")
    assert min(sizes) >= 250, sizes  # the views use the room there is
    store = ViewStore(views_dir(proj, sphere_surface), lambda: sphere_surface)
    n = d.execute_script("return state.task.points.length")
    answer_current(d, store, sphere_surface)
    marks = d.execute_script("return Object.values(state.viewPanels).filter(v => v.mark).map(v => v.name)")
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
    # step 0 can be undone too: the box comes back for editing, and is saved again
    d.find_element(By.ID, "btn-boxes-edit").click()
    wait(d, EC.alert_is_present()).accept()
    visible(d, "step-boxes")
    wait(d, lambda d: d.execute_script("return state.boxes.length") == 1)
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
    part, view = d.execute_script("return [currentPoint().part, $('views').querySelector('canvas').dataset.view]")
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
