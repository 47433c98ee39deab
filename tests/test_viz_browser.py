"""The srlib.viz components in a real browser, with the network closed.

Writes a standalone page (before/after, frame scrubber, synchronised zoom) to a temporary folder,
opens it in headless Chromium through Playwright with every non-file request blocked, moves the
controls as a reader would (keyboard, mouse) and checks that the picture and the labels change.

Needs Debian's Chromium at /usr/bin/chromium and the ``playwright`` Python package (its bundled
browsers are not used). Without them the test is skipped, except under ``CI=true``, where a
missing browser is a failure: CI must not pass by skipping.
"""
from __future__ import annotations

import pytest
import torch

from srlib import viz

from browser import ARGS, CHROMIUM, diff as _diff, shot as _shot, sync_playwright as _sync_playwright

pytestmark = pytest.mark.browser


# What JupyterLab does with a text/html output: set innerHTML (scripts inert), then replace each
# <script> by a fresh copy so that it runs.
INJECT = """html => {
  const box = document.createElement("div");
  box.className = "srviz-injected";
  document.body.appendChild(box);
  box.innerHTML = html;
  for (const old of Array.from(box.querySelectorAll("script"))) {
    const s = document.createElement("script");
    s.textContent = old.textContent;
    old.parentNode.replaceChild(s, old);
  }
}"""


def _images():
    """Left: smooth red-to-blue ramp; right: green checkerboard; clearly different everywhere."""
    h, w = 48, 64
    x = torch.linspace(0, 1, w).expand(h, w)
    left = torch.stack([1 - x, 0.2 * torch.ones(h, w), x])
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    check = (((yy // 4) + (xx // 4)) % 2).float()
    right = torch.stack([0.1 * check, 0.4 + 0.6 * check, 0.1 * torch.ones(h, w)])
    return left, right


def test_components_work_offline_in_chromium(tmp_path):
    sync_playwright = _sync_playwright()
    left, right = _images()
    frames = [[left[:, ::4, ::4], left * (1 - a) + right * a] for a in (0.0, 0.5, 1.0)]
    labels = ["alpha 0.0 \u2014 20.00 dB", "alpha 0.5 \u2014 22.50 dB", "alpha 1.0 \u2014 25.00 dB"]
    comp_ba = viz.before_after(left, right, labels=("Ramp", "Checker"), width=256)
    page_path = viz.save_page(tmp_path / "viz.html", [
        comp_ba,
        viz.frame_scrubber(frames, labels, title="Blend", panel_labels=("LR", "SR")),
        viz.sync_zoom({"Ramp": left, "Checker": right}, zoom=4, crop=16),
    ], title="viz offline test")
    url = page_path.resolve().as_uri()

    blocked, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 1400})
            page = context.new_page()

            def route(r):
                if r.request.url.startswith(("file://", "data:")):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.evaluate("document.querySelectorAll('[data-srviz-ready]').length") == 3

            # ---- before/after: keyboard on the slider, then a click on the picture
            ba = page.locator(".srviz-ba")
            stage, slider = ba.locator(".srviz-ba-stage"), ba.locator("input[type=range]")
            assert slider.get_attribute("aria-label")
            mid = _shot(stage)
            slider.focus()
            page.keyboard.press("Home")  # divider at the left edge: all "Checker"
            assert slider.input_value() == "0"
            all_right = _shot(stage)
            page.keyboard.press("End")  # divider at the right edge: all "Ramp"
            assert slider.input_value() == "100"
            all_left = _shot(stage)
            assert _diff(all_left, all_right) > 30, "moving the divider must change the picture"
            assert _diff(mid, all_right) > 10 and _diff(mid, all_left) > 10
            box = stage.bounding_box()
            page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + box["height"] / 2)
            assert abs(int(slider.input_value()) - 25) <= 1, "clicking the picture moves the divider"
            assert _diff(_shot(stage), all_left) > 10

            # ---- frame scrubber: arrow key, label text and image both change
            fs = page.locator(".srviz-fs")
            fslider, out = fs.locator("input[type=range]"), fs.locator("output")
            shown_sr = fs.locator(".srviz-fs-frame:not([hidden]) img").nth(1)  # the SR panel on show
            assert out.inner_text() == labels[0]
            first = _shot(shown_sr)
            fslider.focus()
            page.keyboard.press("ArrowRight")
            assert out.inner_text() == labels[1]
            assert fslider.get_attribute("aria-valuetext") == labels[1]
            page.keyboard.press("End")
            assert out.inner_text() == labels[2]
            last = _shot(shown_sr)
            assert _diff(first, last) > 30, "the scrubbed frame must change the picture"
            assert fs.locator(".srviz-fs-frame:not([hidden])").count() == 1
            # play runs to the last frame and stops
            page.keyboard.press("Home")
            fs.locator("button").click()
            page.wait_for_function(
                "el => el.textContent.indexOf('alpha 1.0') >= 0", arg=out.element_handle(), timeout=5000)

            # ---- synchronised zoom: slider and mouse move every crop together
            sz = page.locator(".srviz-sz")
            crops = sz.locator(".srviz-sz-crop")
            before = [_shot(crops.nth(i)) for i in range(2)]
            xs = sz.locator("input.srviz-sz-x")
            xs.focus()
            page.keyboard.press("Home")
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            assert xs.input_value() == "3"
            after = [_shot(crops.nth(i)) for i in range(2)]
            assert all(_diff(a, b) > 5 for a, b in zip(before, after)), "every crop follows the slider"
            full = sz.locator(".srviz-sz-full").nth(1).bounding_box()
            page.mouse.move(full["x"] + full["width"] * 0.9, full["y"] + full["height"] * 0.9)
            assert int(xs.input_value()) > 30
            assert "left" in sz.locator("output").inner_text()

            # ---- injected later, as JupyterLab does (innerHTML, then each script re-created in place),
            # and the very same output a second time (same id): each copy wires up its own root
            page.evaluate(INJECT, comp_ba.html)
            page.evaluate(INJECT, comp_ba.html)
            copies = page.locator(".srviz-injected .srviz-ba")
            assert copies.count() == 2
            assert page.locator(".srviz-injected [data-srviz-ready]").count() == 2
            second = copies.nth(1).locator("input[type=range]")
            second.focus()
            page.keyboard.press("Home")
            assert second.input_value() == "0" and copies.nth(0).locator("input").input_value() == "50"
            moved = _shot(copies.nth(1).locator(".srviz-ba-stage"))  # its page offset differs by subpixels
            assert _diff(moved, all_right) < 10 and _diff(moved, all_left) > 30

            # ---- without JavaScript (an untrusted notebook): the same initial picture, from HTML/CSS only
            static = browser.new_context(viewport={"width": 1100, "height": 1400}, java_script_enabled=False)
            spage = static.new_page()
            spage.route("**/*", route)
            spage.goto(url)
            assert spage.locator("[data-srviz-ready]").count() == 0
            assert _diff(_shot(spage.locator(".srviz-ba-stage")), mid) < 2, "divider at 50% without JS"
            assert spage.locator(".srviz-fs-frame:not([hidden])").count() == 1
            assert spage.locator(".srviz-fs output").inner_text() == labels[0]
            static_crops = [_shot(spage.locator(".srviz-sz-crop").nth(i)) for i in range(2)]
            assert all(_diff(a, b) < 2 for a, b in zip(static_crops, before)), \
                "the precomputed crop must match the one the script draws"
        finally:
            browser.close()
    assert not blocked, f"the page tried to reach the network: {blocked}"
    assert not errors, f"JavaScript errors: {errors}"


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        _sync_playwright()


def test_compare_any_menus_swap_the_sides_offline(tmp_path):
    from browser import block_network

    sync_playwright = _sync_playwright()
    ramp, checker = _images()
    grey = torch.full_like(ramp, 0.5)
    fig = viz.compare_any({"Ramp": ramp, "Checker": checker, "Grey": grey}, left="Ramp", right="Checker",
                          width=256, start=0)  # divider at the left edge: the right side fills the stage
    url = fig.save(tmp_path / "compare.html").resolve().as_uri()
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 600})
            blocked = block_network(page)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_load_state("load")
            stage = page.locator(".srviz-ba-stage")
            checker_shot = _shot(stage)
            page.select_option("select[data-side=right]", "Grey")
            grey_shot = _shot(stage)
            assert _diff(checker_shot, grey_shot) > 30, "choosing another right image must change the picture"
            assert page.locator(".srviz-label-right").inner_text() == "Grey"
            page.locator("input.srviz-ba-range").focus()
            page.keyboard.press("End")  # now only the left side shows
            ramp_shot = _shot(stage)
            page.select_option("select[data-side=left]", "Checker")
            assert _diff(_shot(stage), ramp_shot) > 30, "choosing another left image must change the picture"
            assert _diff(_shot(stage), checker_shot) < 10  # the same picture; only the labels and divider moved
            assert "Checker on the left" in page.locator("input.srviz-ba-range").get_attribute("aria-valuetext")
            assert not blocked and not errors, (blocked, errors)
        finally:
            browser.close()
