"""The annotation app in headless Chromium at 1280x800: zoom and pan in step 2's part views, and
editable polygons in step 1. Skipped without chromium (see the helpers module)."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from test_annotate_browser_helpers import (  # noqa: F401  (fixtures are used by name)
    MISSING, ViewStore, api, band_labels, browser, chrome, click_view, grid_to_screen, idle, login, part_pixel,
    press, project, server, stroke, view_to_screen, views_cache, views_dir, visible, wait)

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
if MISSING is None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

ANSWERED = "return state.task.points.filter(p => p.status !== 'todo').length"


def test_part_views_zoom_and_pan_and_clicks_still_land_on_the_same_point(server, browser, sphere_surface):
    base, tokens, proj = server
    d = browser
    t = api(base, tokens["alice"], "POST", "/api/tasks/next")
    api(base, tokens["alice"], "PUT", f"/api/persons/{t['person_id']}/parts",
        {"labels": base64.b64encode(band_labels().tobytes()).decode()})
    login(d, base, tokens["alice"])
    visible(d, "step-points")
    idle(d)
    store = ViewStore(views_dir(proj, sphere_surface), lambda: sphere_surface)
    part, view = d.execute_script("return [currentPoint().part, $('views').querySelector('canvas').dataset.view]")
    px, py = part_pixel(store, sphere_surface, part, view)
    click_view(d, view, px, py)  # unzoomed
    wait(d, lambda d: d.execute_script(ANSWERED) == 1)
    first = d.execute_script("return state.lastClick")
    press(d, "u")
    wait(d, lambda d: d.execute_script(ANSWERED) == 0 and not d.execute_script("return state.busy"))
    canvas = d.find_element(By.ID, "view-" + view)
    scale0 = d.execute_script("return state.viewPanels[arguments[0]].vp.scale", view)
    x, y = view_to_screen(d, view, px + 20, py - 10)
    ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(canvas, x, y), 0, -400).perform()
    wait(d, lambda d: d.execute_script("return state.viewPanels[arguments[0]].vp.scale", view) > 1.5 * scale0)
    assert np.allclose(view_to_screen(d, view, px + 20, py - 10), (x, y), atol=2)  # zoomed about the cursor
    # a left drag pans the view and places nothing
    ActionChains(d).move_to_element_with_offset(canvas, 0, 0).click_and_hold().move_by_offset(10, 8) \
        .move_by_offset(10, 8).release().perform()
    wait(d, lambda d: np.allclose(view_to_screen(d, view, px + 20, py - 10), (x + 20, y + 16), atol=2))
    assert d.execute_script(ANSWERED) == 0
    click_view(d, view, px, py)  # the same picture pixel, now zoomed and panned
    wait(d, lambda d: d.execute_script(ANSWERED) == 1)
    second = d.execute_script("return state.lastClick")
    assert abs(second["px"] - px) < 1 and abs(second["py"] - py) < 1  # the same picture pixel, give or take rounding
    assert second["I"] == first["I"]
    assert abs(second["U"] - first["U"]) < 0.03 and abs(second["V"] - first["V"]) < 0.03


def count(d, part: int) -> int:
    return d.execute_script("return state.labels.filter(v => v === arguments[0]).length", part)


def label_at(d, gx: int, gy: int) -> int:
    return d.execute_script("return state.labels[arguments[1] * S + arguments[0]]", gx, gy)


def test_every_polygon_stays_editable(server, browser):
    """Select an older polygon by clicking in it, drag a corner (with "keep other parts" on), delete a
    corner; its part is repainted each time, the other polygon's part untouched; undo brings it back."""
    base, tokens, proj = server
    d = browser
    login(d, base, tokens["alice"])
    visible(d, "step-parts")
    idle(d)

    def click(gx, gy):
        canvas = d.find_element(By.ID, "part-canvas")
        ActionChains(d).move_to_element_with_offset(canvas, *grid_to_screen(d, "part-canvas", "vpParts", gx, gy)) \
            .click().perform()

    press(d, "p")
    press(d, "5")
    for corner in ((20, 150), (100, 150), (100, 240), (20, 240)):  # a square of part 5
        click(*corner)
    press(d, Keys.ENTER)
    press(d, "6")
    for corner in ((150, 30), (230, 30), (230, 110)):  # then a triangle of part 6
        click(*corner)
    press(d, Keys.ENTER)
    square, triangle = count(d, 5), count(d, 6)
    assert square > 5000 and triangle > 2500
    assert d.execute_script("return state.selPoly") == 1
    click(60, 195)  # inside the square: selects it, paints nothing
    assert d.execute_script("return [state.selPoly, state.poly.length]") == [0, 0]
    press(d, "k")  # keep other parts: the square may grow over the triangle but not repaint it
    stroke(d, "part-canvas", "vpParts", (100, 150), (200, 60))
    wait(d, lambda d: count(d, 5) > 1.3 * square)
    assert count(d, 6) == triangle
    grown = count(d, 5)
    click(20, 240)  # select a corner, then delete it: the polygon becomes a triangle
    press(d, Keys.DELETE)
    wait(d, lambda d: count(d, 5) < grown)
    assert d.execute_script("return state.polys[0].points.length") == 3
    assert label_at(d, 25, 235) == 0 and label_at(d, 60, 160) == 5  # the cut-off corner is unpainted
    assert count(d, 6) == triangle
    ActionChains(d).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    wait(d, lambda d: count(d, 5) == grown)
    assert label_at(d, 25, 235) == 5 and d.execute_script("return state.polys[0].points.length") == 4
