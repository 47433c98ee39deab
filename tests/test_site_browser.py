"""The built site in headless Chromium with the network closed: chapter 1's figures show and respond.

Serves the smoke-built site on 127.0.0.1, opens the chapter-1 page with the live-trained model, checks
that its figures load, moves a before/after slider and a frame scrubber and sees the picture change,
and checks that equations are typeset by the self-hosted MathJax. Any request leaving the machine is
blocked and fails the test.
"""
import functools
import http.server
import threading

import pytest

from browser import ARGS, CHROMIUM, block_network, diff, shot, sync_playwright

pytestmark = pytest.mark.browser
PAGE = "book/01_sr_problem/first_model.html"


@pytest.fixture(scope="module")
def server(smoke_site):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(smoke_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_chapter1_page_offline(server):
    with sync_playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            blocked = block_network(page)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server}/{PAGE}", wait_until="load")
            page.wait_for_timeout(1500)

            # figures: matplotlib outputs and the interactive components, all decoded
            images = page.locator("main img")
            assert images.count() >= 4, f"expected the chapter's figures, found {images.count()} images"
            broken = page.evaluate("Array.from(document.querySelectorAll('main img')).filter(i => !(i.complete && i.naturalWidth > 0)).length")
            assert broken == 0, f"{broken} images failed to load"

            # before/after: moving the slider changes the picture
            ba = page.locator(".srviz-ba").first
            ba.scroll_into_view_if_needed()
            stage, slider = ba.locator(".srviz-ba-stage"), ba.locator("input[type=range]")
            before = shot(stage)
            slider.focus()
            page.keyboard.press("Home")
            at_left = shot(stage)
            page.keyboard.press("End")
            at_right = shot(stage)
            assert diff(at_left, at_right) > 0.5 and diff(before, at_left) > 0.2, "the divider did not move the picture"

            # frame scrubber: another frame shows another picture and label
            fs = page.locator(".srviz-fs").first
            fs.scroll_into_view_if_needed()
            frames, label = fs.locator(".srviz-fs-frames"), fs.locator("output.srviz-fs-label")
            fs.locator("input[type=range]").focus()
            page.keyboard.press("Home")
            first_label, first = label.inner_text(), shot(frames)
            page.keyboard.press("End")
            page.wait_for_timeout(100)
            assert label.inner_text() != first_label, "the scrubber label did not change"
            assert diff(first, shot(frames)) > 0.2, "the scrubber did not change the picture"

            # equations typeset offline by the self-hosted MathJax
            page.goto(f"{server}/book/01_sr_problem/metrics.html", wait_until="load")
            page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=15000)

            assert blocked == [], f"the site tried to reach the network: {blocked[:5]}"
            assert errors == [], f"JavaScript errors: {errors[:5]}"
        finally:
            browser.close()


def test_chapter2_results_compare_any_offline(server):
    # the "compare any two" figure: choosing another model in a menu changes the picture
    with sync_playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            blocked = block_network(page)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server}/book/02_first_cnns/results.html", wait_until="load")
            fig = page.locator(".srviz-ba").first
            fig.scroll_into_view_if_needed()
            stage, menu = fig.locator(".srviz-ba-stage"), fig.locator("select[data-side=right]")
            options = menu.locator("option").all_inner_texts()
            assert "Bicubic" in options and "HR" in options and len(options) >= 4, options
            fig.locator("input[type=range]").focus()
            page.keyboard.press("Home")  # the right-hand image fills the stage
            menu.select_option("Bicubic")
            bicubic = shot(stage)
            menu.select_option("HR")
            assert diff(bicubic, shot(stage)) > 0.5, "choosing another image did not change the picture"
            assert fig.locator(".srviz-label-right").inner_text() == "HR"
            assert blocked == [], f"the site tried to reach the network: {blocked[:5]}"
            assert errors == [], f"JavaScript errors: {errors[:5]}"
        finally:
            browser.close()
