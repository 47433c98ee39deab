"""Tests of srlib.viz: the offline HTML components, the matplotlib figures and the training callbacks."""
from __future__ import annotations

import base64
import io
import re
import sys
import types
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from srlib import viz

VOID = {"img", "input", "br", "meta", "hr", "link", "source", "wbr", "area", "base", "col", "embed", "track"}


class _Checker(HTMLParser):
    """Collects ids, images, inputs and text, and checks that non-void tags open and close in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.imgs: list[dict] = []
        self.inputs: list[dict] = []
        self.buttons: list[dict] = []
        self.text: list[str] = []
        self.urls: list[tuple[str, str]] = []
        self.hidden_frames = 0
        self.frames = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [(k, v or "") for k, v in attrs if k in ("src", "href", "srcset", "action", "poster", "data")]
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "input":
            self.inputs.append(a)
        if tag == "button":
            self.buttons.append(a)
        if "srviz-fs-frame" in (a.get("class") or "").split():
            self.frames += 1
            self.hidden_frames += "hidden" in a
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("script", "style"):
            return
        self.text.append(data)


def parse(html: str) -> _Checker:
    p = _Checker()
    p.feed(html)
    p.close()
    assert not p.errors, p.errors
    assert not p.stack, f"unclosed tags: {p.stack}"
    return p


def decode(src: str) -> Image.Image:
    m = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", src)
    assert m, src[:60]
    raw = base64.b64decode(m.group(2))
    img = Image.open(io.BytesIO(raw))
    assert img.format == m.group(1).upper()
    return img


def assert_offline(html: str) -> None:
    assert not re.search(r"https?:", html, re.I), "no URL may appear in an offline component"
    for name, value in parse(html).urls:
        assert value.startswith("data:image/"), f"{name}={value[:40]!r}: only embedded data may be loaded"
    assert "<link" not in html.lower() and "@import" not in html and "require(" not in html


@pytest.fixture
def imgs():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 24, 32, generator=g), torch.rand(3, 24, 32, generator=g)


# ------------------------------------------------------------------------------------------- HTML
def test_before_after_html(imgs):
    a, b = imgs
    c1 = viz.before_after(a, b, labels=("Bicubic", "EDSR & co"), caption="Two <views>")
    c2 = viz.before_after(a, b)
    for c in (c1, c2):
        assert c._repr_html_() == c.html
        assert_offline(c.html)
    p = parse(c1.html + c2.html)
    assert len(p.ids) == len(set(p.ids)) == 2, "each instance needs its own id"
    assert c1.html.count(p.ids[0]) >= 2 and p.ids[0] not in c2.html
    assert len(p.imgs) == 4
    for im in p.imgs:
        assert im["alt"]
        assert decode(im["src"]).size == (32, 24)
    # the right image is what was passed on the right, pixel for pixel
    right = np.asarray(decode(p.imgs[1]["src"]).convert("RGB"))
    assert np.array_equal(right, viz.to_uint8_image(b))
    ranges = [i for i in p.inputs if i.get("type") == "range"]
    assert len(ranges) == 2 and all(r.get("aria-label") for r in ranges)
    assert ranges[0]["min"] == "0" and ranges[0]["max"] == "100"
    text = " ".join(p.text)
    assert "Bicubic" in text and "EDSR & co" in text and "Two <views>" in text
    assert "<views>" not in c1.html, "captions must be escaped"
    assert "Bicubic" in repr(c1) and "EDSR & co" in repr(c1)


def test_before_after_rejects_different_sizes(imgs):
    with pytest.raises(ValueError, match="one size"):
        viz.before_after(imgs[0], imgs[0][:, :12, :16])


def test_frame_scrubber_single_and_panels(imgs):
    a, b = imgs
    labels = ["step 0 \u2014 20.00 dB", "step 100 \u2014 24.31 dB", "step 200 \u2014 25.02 dB"]
    c = viz.frame_scrubber([a, b, a], labels, caption="cap", title="Training")
    assert_offline(c.html)
    p = parse(c.html)
    assert len(p.imgs) == 3 and p.frames == 3 and p.hidden_frames == 2
    assert all(decode(i["src"]).size == (32, 24) for i in p.imgs)
    rng = [i for i in p.inputs if i.get("type") == "range"][0]
    assert rng["max"] == "2" and rng["aria-label"]
    assert len(p.buttons) == 1 and p.buttons[0]["aria-label"]
    for lab in labels:
        assert viz._esc(lab) in c.html
    # rows of panels of different sizes, shown at one height, plus a batched tensor of frames
    lr = a[:, ::4, ::4]
    c2 = viz.frame_scrubber([[lr, a, viz.error_map(a, b)], [lr, b, viz.error_map(b, b)]], ["x", "y"],
                            panel_labels=("LR", "SR", "error"), play=False)
    p2 = parse(c2.html)
    assert len(p2.imgs) == 6 and p2.frames == 2 and not p2.buttons
    assert decode(p2.imgs[0]["src"]).size == (8, 6)
    assert p2.imgs[0]["height"] == p2.imgs[1]["height"] == "24"
    assert "srviz-pix" in p2.imgs[0]["class"] and "srviz-pix" not in p2.imgs[1]["class"]
    assert {"LR", "SR", "error"} <= set(p2.text)
    c3 = viz.frame_scrubber(torch.stack([a, b]), ["a", "b"])
    assert len(parse(c3.html).imgs) == 2
    ids = parse(c.html + c2.html + c3.html).ids
    assert len(ids) == len(set(ids)) == 3
    with pytest.raises(ValueError, match="label"):
        viz.frame_scrubber([a, b], ["only one"])


def test_sync_zoom(imgs):
    a, b = imgs
    c = viz.sync_zoom({"Bicubic": a, "Model": b, "HR": a}, zoom=3, crop=8, start=(4, 30))
    assert_offline(c.html)
    p = parse(c.html)
    ranges = [i for i in p.inputs if i.get("type") == "range"]
    assert [r["max"] for r in ranges] == ["24", "16"]  # x over W - crop, y over H - crop
    assert [r["value"] for r in ranges] == ["24", "4"]  # left clamped to W - crop
    assert all(r.get("aria-label") for r in ranges)
    assert len(p.imgs) == 6 and all(i["alt"] for i in p.imgs)
    sizes = [decode(i["src"]).size for i in p.imgs]
    assert sizes == [(32, 24), (8, 8)] * 3  # full image and the precomputed crop for each panel
    assert {"Bicubic", "Model", "HR"} <= set(p.text)
    c2 = viz.sync_zoom([a, b], ["A", "B"], crop=100)  # crop limited to the image
    assert 'data-crop="24"' in c2.html
    ids = parse(c.html + c2.html).ids
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError, match="labels"):
        viz.sync_zoom([a, b])


def test_numpy_inputs_and_jpeg(imgs):
    a, _ = imgs
    u8 = viz.to_uint8_image(a)
    assert u8.shape == (24, 32, 3) and u8.dtype == np.uint8
    assert np.array_equal(viz.to_uint8_image(a[None]), u8)
    assert np.array_equal(viz.to_uint8_image(u8.astype(np.float32) / 255), u8)
    assert viz.to_uint8_image(u8[:, :, 0]).shape == (24, 32, 3)
    c = viz.before_after(u8, u8, fmt="jpeg", quality=70)
    srcs = [i["src"] for i in parse(c.html).imgs]
    assert all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert decode(srcs[0]).size == (32, 24)
    with pytest.raises(ValueError, match="batch"):
        viz.to_uint8_image(torch.rand(2, 3, 4, 4))


def test_size_warning(imgs):
    a, b = imgs
    with pytest.warns(UserWarning, match="jpeg"):
        viz.frame_scrubber([a, b], ["a", "b"], max_bytes=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        viz.frame_scrubber([a, b], ["a", "b"])


def test_save_standalone_page(tmp_path, imgs):
    a, b = imgs
    one = viz.before_after(a, b).save(tmp_path / "one.html")
    html = one.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    page = viz.save_page(tmp_path / "all.html", [viz.before_after(a, b), viz.frame_scrubber([a, b], ["1", "2"]),
                                                 viz.sync_zoom([a, b], ["A", "B"], crop=8)], title="All")
    html = page.read_text(encoding="utf-8")
    assert_offline(html)
    p = parse(html)
    assert len(p.ids) == len(set(p.ids))
    assert html.count("<script>") == 3


# ------------------------------------------------------------------------------------- matplotlib
def test_compare_crops(imgs):
    hr = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(1))
    lr = hr[:, ::4, ::4]
    fig = viz.compare_crops({"LR": lr, "Bicubic": hr * 0.9, "Model": hr, "HR": hr}, box=(8, 16, 8, 12),
                            title="Crops", metrics={"Bicubic": "25.1 dB / 0.80", "Model": "27.3 dB / 0.85"})
    assert isinstance(fig, viz.SRFigure) and len(fig.axes) == 8
    crop_lr, crop_hr = fig.axes[4], fig.axes[7]
    # the LR crop covers the same scene region, in LR pixels: box / 4
    assert crop_lr.get_xlim() == pytest.approx((16 / 4 - 0.5, 28 / 4 - 0.5))
    assert crop_lr.get_ylim() == pytest.approx((16 / 4 - 0.5, 8 / 4 - 0.5))
    assert crop_hr.get_xlim() == pytest.approx((15.5, 27.5))
    assert "27.3 dB / 0.85" in fig.axes[6].get_xlabel()
    assert "LR (12\u00d78)" == fig.axes[0].get_title()
    assert "Crops" in fig.alt_text and "27.3 dB" in fig.alt_text
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="inside"):
        viz.compare_crops({"HR": hr}, box=(30, 0, 8, 8))


def test_plot_history():
    hist = {"step": [1, 2, 3, 4], "loss": [0.4, 0.2, 0.1, 0.05], "val_step": [2, 4], "val_psnr": [22.0, 24.5]}
    fig = viz.plot_history(hist, baseline=23.0)
    assert len(fig.axes) == 2
    loss_ax, psnr_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    assert list(psnr_ax.lines[0].get_xdata()) == [2, 4]
    assert any(list(l.get_ydata()) == [23.0, 23.0] for l in psnr_ax.lines), "baseline line"
    assert "val_psnr" in fig.alt_text
    fig = viz.plot_history(hist, keys=("loss", "val_psnr", "val_ssim"), baseline={"loss": (0.1, "target")})
    assert len(fig.axes) == 3 and not fig.axes[2].lines  # missing key: an empty panel, no crash


def test_kernel_error_map_grid(imgs):
    a, b = imgs
    k = torch.rand(5, 5)
    assert len(viz.show_kernel(k).axes) == 2  # the kernel + its colour bar
    assert len(viz.show_kernel(torch.rand(3, 1, 7, 7), labels=["a", "b", "c"]).axes) == 4
    assert len(viz.show_kernel(k[None, None].numpy()).axes) == 2
    e = viz.error_map(a, b)
    assert e.shape == a.shape and e.dtype == torch.float32 and 0 <= e.min() and e.max() <= 1
    g = viz.error_map(a, a, cmap=None)
    assert g.shape == a.shape and g.abs().max() == 0
    assert viz.error_map(torch.stack([a, b]), torch.stack([b, b])).shape == (2, 3, 24, 32)
    grey = viz.error_map(torch.zeros(3, 2, 2), torch.full((3, 2, 2), 0.05), amplify=10, cmap=None)
    assert torch.allclose(grey, torch.full((3, 2, 2), 0.5))
    fig = viz.image_grid([a, b, e, viz.to_uint8_image(a)], ["a", "b", "err", "numpy"], ncols=3, title="Grid")
    assert len(fig.axes) == 4 and fig.axes[2].get_xlabel() == "err"


# -------------------------------------------------------------------------------------- callbacks
@dataclass
class FakeState:
    """The fields srlib.train.TrainState gives callbacks."""

    step: int
    total_steps: int
    model: torch.nn.Module
    history: dict = field(default_factory=dict)
    event: str = "step"
    last_loss: float = 0.1


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(3, 3, 3, padding=1))


def run_fake_training(callback, model, steps=10, val_every=5):
    state = FakeState(0, steps, model, {"step": [], "loss": [], "val_step": [], "val_psnr": []})
    for s in range(1, steps + 1):
        state.step, state.event, state.last_loss = s, "step", 1.0 / s
        state.history["step"].append(s)
        state.history["loss"].append(1.0 / s)
        callback(state)
        if s % val_every == 0:
            state.history["val_step"].append(s)
            state.history["val_psnr"].append(20.0 + s)
            state.event = "validate"
            callback(state)
    state.event = "end"
    callback(state)
    return state


def test_snapshot_recorder():
    model = tiny_model().train()
    rec = viz.SnapshotRecorder(torch.rand(3, 6, 6), every=4,
                               label_fn=lambda step, sr: f"step {step}: {tuple(sr.shape)}")
    rec.record(model, step=0)
    run_fake_training(rec, model, steps=10)
    assert rec.steps == [0, 4, 8, 10]  # multiples of every, the end, once each (validate at 5/10 adds none)
    assert model.training, "train mode must be restored"
    assert all(f.shape == (3, 12, 12) and f.device.type == "cpu" and 0 <= f.min() and f.max() <= 1
               for f in rec.frames)
    assert rec.labels[1] == "step 4: (3, 12, 12)"
    assert not any(f.requires_grad for f in rec.frames)
    c = rec.scrubber(with_input=True)
    p = parse(c.html)
    assert p.frames == 4 and len(p.imgs) == 8 and "step 10: (3, 12, 12)" in p.text
    # an eval-mode model stays in eval mode; the (event, state) calling form and explicit steps work
    model.eval()
    rec2 = viz.SnapshotRecorder(np.zeros((6, 6, 3), np.uint8), steps=[3])
    rec2("step", FakeState(3, 5, model))
    rec2("step", FakeState(4, 5, model))
    assert rec2.steps == [3] and not model.training
    with pytest.raises(ValueError, match="no snapshots"):
        viz.SnapshotRecorder(torch.rand(3, 6, 6)).scrubber()


def test_liveplot_is_noop_outside_ipython(monkeypatch):
    monkeypatch.setattr(viz, "_ipython_active", lambda: False)
    cb = viz.LivePlot(every=2)
    run_fake_training(cb, tiny_model(), steps=6)
    assert cb.draws == 0 and cb.figure is None


def test_liveplot_updates_one_display(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def fake_display(obj, display_id=None):
        assert display_id is True
        shown.append(("display", obj))
        return Handle()

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(viz, "_ipython_active", lambda: True)
    cb = viz.LivePlot(keys=("loss", "val_psnr"), every=4, baseline=20.0, min_seconds=0)
    run_fake_training(cb, tiny_model(), steps=10, val_every=5)
    # steps 4 and 8, validations at 5 and 10, the end: 5 redraws, the first one a display
    assert cb.draws == 5
    assert [kind for kind, _ in shown] == ["display"] + ["update"] * 4
    assert shown[-1][1].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(cb.figure.axes) == 2 and cb.figure.axes[0].get_yscale() == "log"
    # a second run with the same callback starts a new output instead of updating the old one
    run_fake_training(cb, tiny_model(), steps=4, val_every=5)
    assert [kind for kind, _ in shown][-2:] == ["display", "update"] and cb.draws == 7
    # the time throttle holds back step redraws, never validations or the end
    slow = viz.LivePlot(every=1, min_seconds=3600)
    run_fake_training(slow, tiny_model(), steps=10, val_every=5)
    assert slow.draws == 4  # step 1, validations at 5 and 10, the end


def test_ipython_detection_without_ipython(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert viz._ipython_active() is False
    monkeypatch.delitem(sys.modules, "IPython")
    assert viz._ipython_active() is False


def test_compare_any_embeds_every_image_once_and_checks_its_arguments(imgs):
    a, b = imgs[0], imgs[1]
    images = {"Bicubic": a, "EDSR": b, "HR": a.flip(-1)}
    fig = viz.compare_any(images, left="EDSR", right="HR")
    assert fig.html.count("<select") == 2 and fig.html.count("<option") == 6
    assert fig.html.count("srviz-ba-store") >= 3 and "Choices: Bicubic, EDSR, HR" in fig.text
    assert 'selected>EDSR' in fig.html and 'selected>HR' in fig.html
    with pytest.raises(ValueError, match="not one of the images"):
        viz.compare_any(images, left="SRCNN")
    with pytest.raises(ValueError, match="one size"):
        viz.compare_any({"a": a, "b": b[:, :8, :8]})
    with pytest.raises(ValueError, match="at least two"):
        viz.compare_any({"a": a})
