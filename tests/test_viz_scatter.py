"""Tests of srlib.viz.scatter_explorer: offline HTML, one SVG view per axis, one crop per point, checks."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from srlib import viz
from test_viz import assert_offline, decode, parse


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    points = {"bicubic-ish": {"psnr": 25.9, "params": 8_129, "gflops": 0.5, "ms": 3.0},
              "EDSR & co": {"psnr": 26.6, "params": 1_517_571, "gflops": 20.0, "ms": 120.0},
              "carn": {"psnr": 26.2, "params": 414_787, "gflops": float("nan"), "ms": 30.0}}
    crops = {n: torch.rand(3, 24, 32, generator=g) for n in points}
    return points, crops


def test_scatter_explorer_html(setup):
    points, crops = setup
    opts = {"params": "parameters", "gflops": "GFLOPs", "ms": "CPU ms"}
    fig = viz.scatter_explorer(points, opts, crops, groups={"bicubic-ish": "ch. 2", "EDSR & co": "ch. 2",
                                                            "carn": "ch. 3"},
                               baseline=("bicubic", 25.5), caption="A <frontier>", title="Frontier")
    assert fig._repr_html_() == fig.html
    assert_offline(fig.html)
    p = parse(fig.html)
    assert len(p.ids) == 1
    # one view per axis, only the first visible without JavaScript
    views = re.findall(r'<div class="srviz-sc-view" data-axis="(\w+)"( hidden)?>', fig.html)
    assert [v[0] for v in views] == list(opts) and [bool(v[1]) for v in views] == [False, True, True]
    # every point on every axis where its value is usable: carn has no FLOPs (NaN)
    assert fig.html.count("<circle") == 3 + 2 + 3
    # each crop embedded once in the store, plus the visible one (the highest PSNR by default)
    stores = [i for i in p.imgs if "srviz-sc-store" in (i.get("class") or "")]
    assert [s["data-name"] for s in stores] == list(points)
    for s, n in zip(stores, points):
        assert np.array_equal(np.asarray(decode(s["src"]).convert("RGB")), viz.to_uint8_image(crops[n]))
        assert "psnr" in s["data-info"]
    shown = [i for i in p.imgs if "srviz-sc-crop" in (i.get("class") or "")]
    assert len(shown) == 1 and shown[0]["alt"] == "crop of EDSR & co"
    assert 'srviz-sc-pt srviz-sc-on" data-name="EDSR &amp; co"' in fig.html
    # two menus: the axis and the model, with the defaults selected
    assert fig.html.count("<select") == 2 and fig.html.count("<option") == 3 + 3
    assert 'value="params" selected' in fig.html and 'value="EDSR &amp; co" selected' in fig.html
    text = " ".join(p.text)
    assert "A <frontier>" in text and "ch. 3" in text and "bicubic" in text
    assert "<frontier>" not in fig.html, "captions must be escaped"
    assert "EDSR & co" in repr(fig) and "carn" in fig.text
    # a second instance gets its own id
    ids = parse(fig.html + viz.scatter_explorer(points, ["params"], crops, selected="carn").html).ids
    assert len(ids) == len(set(ids)) == 2


def test_scatter_explorer_linear_axis_and_ticks(setup):
    points, crops = setup
    fig = viz.scatter_explorer(points, ["ms"], crops, log_x=False, y_label="PSNR (dB)")
    assert "(log scale)" not in fig.html and "PSNR (dB)" in fig.html
    assert viz._log_ticks(5_000, 2_000_000) == [10_000, 100_000, 1_000_000]
    assert viz._log_ticks(3, 40) == [3, 10, 30]
    assert viz._fmt_tick(1_500_000) == "1.5M" and viz._fmt_tick(0.5) == "0.5"
    assert viz._lin_ticks(25.2, 26.9) == pytest.approx([25.5, 26.0, 26.5])


def test_scatter_explorer_checks_its_arguments(setup):
    points, crops = setup
    with pytest.raises(ValueError, match="no crop"):
        viz.scatter_explorer(points, ["params"], {"carn": crops["carn"]})
    with pytest.raises(ValueError, match="one size"):
        viz.scatter_explorer(points, ["params"], {**crops, "carn": crops["carn"][:, :8, :8]})
    with pytest.raises(ValueError, match="not one of the points"):
        viz.scatter_explorer(points, ["params"], crops, selected="rcan")
    with pytest.raises(ValueError, match="finite"):
        viz.scatter_explorer({**points, "bad": {"params": 1.0}}, ["params"], {**crops, "bad": crops["carn"]})
    with pytest.raises(ValueError, match="usable"):
        viz.scatter_explorer(points, ["flops_typo"], crops)


def test_scatter_explorer_axis_menu_and_points_work_offline_in_chromium(tmp_path, setup):
    """In a real (headless) browser: the axis menu swaps the plot, pointing at a point swaps the crop."""
    from browser import ARGS, CHROMIUM, block_network, diff, shot, sync_playwright as _sync_playwright

    sync_playwright = _sync_playwright()
    points, _ = setup
    crops = {"bicubic-ish": torch.zeros(3, 24, 32), "EDSR & co": torch.ones(3, 24, 32),
             "carn": torch.full((3, 24, 32), 0.5)}
    fig = viz.scatter_explorer(points, {"params": "parameters", "ms": "CPU ms"}, crops, selected="carn",
                               crop_width=64)
    url = fig.save(tmp_path / "scatter.html").resolve().as_uri()
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            blocked = block_network(page)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.locator(".srviz-sc-view[data-axis=params]").is_visible()
            assert not page.locator(".srviz-sc-view[data-axis=ms]").is_visible()
            crop = page.locator("img.srviz-sc-crop")

            def decoded():  # a new src is decoded asynchronously: screenshot only once it is
                page.evaluate("() => document.querySelector('img.srviz-sc-crop').decode()")

            grey = shot(crop)
            page.locator('.srviz-sc-view[data-axis=params] circle[data-name="EDSR & co"]').hover()
            decoded()
            assert diff(shot(crop), grey) > 100, "pointing at a point must show its crop"
            assert page.locator(".srviz-sc-name").inner_text() == "EDSR & co"
            assert page.locator("select.srviz-sc-pick").input_value() == "EDSR & co"
            # move the pointer off the plot: a point of the next axis may come to lie under it and, being
            # hovered, rightly take over the crop
            page.mouse.move(0, 0)
            page.select_option("select.srviz-sc-axis", "ms")
            assert page.locator(".srviz-sc-view[data-axis=ms]").is_visible()
            assert not page.locator(".srviz-sc-view[data-axis=params]").is_visible()
            page.select_option("select.srviz-sc-pick", "bicubic-ish")
            decoded()
            assert shot(crop)[:40].mean() < 5 and "bicubic-ish" in page.locator("output.srviz-sc-info").inner_text()
            on = page.locator(".srviz-sc-view[data-axis=ms] circle.srviz-sc-on")
            assert on.count() == 1 and on.get_attribute("data-name") == "bicubic-ish"
            assert not blocked and not errors, (blocked, errors)
        finally:
            browser.close()
