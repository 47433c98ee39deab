"""Figures for the course: static-safe interactive HTML components and matplotlib figures.

Two families live here.

**Interactive HTML components** (:func:`before_after`, :func:`frame_scrubber`, :func:`sync_zoom`).
A Python callback (``ipywidgets.interact``) does nothing in the built static site, so every
interactive figure of the book precomputes its states in Python and ships them inside one
self-contained HTML fragment:

* images are embedded as base64 PNG (or JPEG with ``fmt="jpeg"``), so nothing is fetched;
* the CSS is inline and scoped to the component's own id, the JavaScript is vanilla and inline
  (no CDN, no require.js, no external file), and no ``http(s)://`` address appears anywhere;
* every instance gets a fresh id (``uuid4``), so several components share one page without clashing;
* the initial state is plain HTML/CSS, so a page whose scripts do not run (an untrusted notebook)
  still shows a meaningful picture, and the caption states in words what the figure shows.

Each call returns an :class:`InteractiveHTML` with ``_repr_html_`` (JupyterLab shows it after the
cell runs, myst-nb embeds it as raw HTML in the built page), ``.html``, ``.text`` (the
deterministic plain-text fallback, also its ``repr``) and ``.save(path)`` (a standalone page).
:func:`save_page` puts several components on one page.

**Matplotlib figures** (:func:`compare_crops`, :func:`plot_history`, :func:`show_kernel`,
:func:`image_grid`) return a :class:`SRFigure`: a plain ``matplotlib.figure.Figure`` that is not
registered with pyplot (so a notebook never shows it twice), renders itself as PNG in IPython, and
carries a one-sentence ``alt_text``. Training callbacks: :class:`LivePlot` (a live curve that
updates one output in place) and :class:`SnapshotRecorder` ("watch the model improve" as a
:func:`frame_scrubber`). :func:`error_map` makes an error image to place in a panel.

Images: torch float32, (3, H, W) or (1, 3, H, W), RGB, in [0, 1] (values outside are clamped);
(H, W) or (1, H, W) grey images are accepted too. For convenience numpy arrays in HWC layout are
also accepted: uint8 in [0, 255], or float in [0, 1]; (H, W) grey; an alpha channel is dropped.
Pixels are rounded to uint8 for display, as in the evaluation protocol.
"""
from __future__ import annotations

import base64
import html as _html
import io
import math
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

ImageLike = Union[torch.Tensor, np.ndarray]

# Above this many bytes of embedded images a component warns: a book page stays fast to load and
# the notebook small. Not downscaled automatically, since that would hide the very pixels an SR
# figure is about; the warning says how to shrink it (JPEG, fewer or smaller frames).
MAX_EMBED_BYTES = 4_000_000

__all__ = [
    "InteractiveHTML", "before_after", "compare_any", "frame_scrubber", "sync_zoom", "save_page", "to_uint8_image",
    "SRFigure", "compare_crops", "plot_history", "show_kernel", "error_map", "image_grid",
    "LivePlot", "SnapshotRecorder", "MAX_EMBED_BYTES", "scatter_explorer",
]


# ----------------------------------------------------------------------------------------------
# Image conversion and embedding
# ----------------------------------------------------------------------------------------------
def to_uint8_image(img: ImageLike) -> np.ndarray:
    """Convert one image to a numpy (H, W, 3) uint8 array for display or embedding.

    Args:
        img: a torch tensor (3, H, W), (1, 3, H, W), (1, H, W) or (H, W), float in [0, 1] (clamped;
            integer tensors are read as [0, 255]); or a numpy array (H, W, 3), (H, W, 4), (H, W, 1)
            or (H, W), uint8 in [0, 255] or float in [0, 1].

    Returns:
        (H, W, 3) uint8, rounded to nearest (grey images are repeated over the three channels).
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of {t.shape[0]}: pass img[i]")
            t = t[0]
        if t.dim() == 2:
            t = t[None]
        if t.dim() != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"expected a (3, H, W) or (1, H, W) tensor, got shape {tuple(img.shape)}")
        if t.is_floating_point():
            t = (t.float().clamp(0, 1) * 255).round()
        arr = t.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    elif isinstance(img, np.ndarray):
        arr = img
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"expected a numpy HWC image (H, W, 3), got shape {img.shape}; "
                             "tensors are CHW, numpy arrays HWC")
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating):
                arr = np.round(np.clip(arr.astype(np.float64), 0, 1) * 255)
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise TypeError(f"expected a torch.Tensor or numpy array image, got {type(img).__name__}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _as_tensor(img: ImageLike) -> torch.Tensor:
    """(3, H, W) or (N, 3, H, W) float tensor in [0, 1] from a tensor or a numpy HWC image."""
    if isinstance(img, torch.Tensor):
        return img.detach().float()
    return torch.from_numpy(to_uint8_image(img)).permute(2, 0, 1).float() / 255


def _encode(arr: np.ndarray, fmt: str = "png", quality: int = 85) -> str:
    """A ``data:`` URI holding the (H, W, 3) uint8 image ``arr`` as PNG or JPEG."""
    fmt = fmt.lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6)
        mime = "image/png"
    else:
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality), subsampling=0)
        mime = "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _check_size(name: str, uris: Iterable[str], max_bytes: int | None) -> None:
    total = sum(len(u) for u in uris)
    if max_bytes is not None and total > max_bytes:
        warnings.warn(
            f"{name}: {total / 1e6:.1f} MB of embedded images (limit {max_bytes / 1e6:.1f} MB); the page "
            "will be slow to load. Pass fmt='jpeg' (quality=80), fewer frames or smaller crops, or "
            "max_bytes=None to accept it.", stacklevel=3)


def _esc(text) -> str:
    return _html.escape(str(text), quote=True)


def _new_id(kind: str) -> str:
    return f"srviz-{kind}-{uuid.uuid4().hex[:12]}"


# ----------------------------------------------------------------------------------------------
# The HTML container
# ----------------------------------------------------------------------------------------------
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;line-height:1.4}}</style>
</head>
<body>
<h1 style="font-size:1.3rem">{title}</h1>
{body}
</body>
</html>
"""


class InteractiveHTML:
    """A self-contained HTML fragment (images, CSS and JavaScript inline) with a text fallback.

    Displays itself in Jupyter (``_repr_html_``); ``repr()`` gives the plain-text description that
    text-only front ends show. Build one with :func:`before_after`, :func:`frame_scrubber` or
    :func:`sync_zoom`.

    Attributes:
        html: the fragment (a ``<style>``, the component, its ``<script>``).
        text: a deterministic one-paragraph description of what the figure shows.
        title: a short title, used by :meth:`save` for the page title.
    """

    def __init__(self, html: str, text: str, title: str = "srlib figure"):
        self.html = html
        self.text = text
        self.title = title

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text

    @property
    def nbytes(self) -> int:
        """Size of the fragment in bytes (UTF-8)."""
        return len(self.html.encode("utf-8"))

    def page(self, title: str | None = None) -> str:
        """The fragment wrapped in a standalone HTML5 page (no external resources)."""
        return _PAGE.format(title=_esc(title or self.title), body=self.html)

    def save(self, path: str | Path, title: str | None = None) -> Path:
        """Write a standalone page holding this component; returns the path."""
        path = Path(path)
        path.write_text(self.page(title), encoding="utf-8")
        return path


def save_page(path: str | Path, components: Sequence[InteractiveHTML], title: str = "srlib figures") -> Path:
    """Write several components to one standalone, offline HTML page; returns the path."""
    body = "\n".join(c.html for c in components)
    path = Path(path)
    path.write_text(_PAGE.format(title=_esc(title), body=body), encoding="utf-8")
    return path


# Shared look, scoped to one root id so two components (or the book theme) never interfere.
# Colours inherit from the page, so light and dark themes both work.
_BASE_CSS = """
#{id}{{margin:1em 0;max-width:100%;font-size:0.95em}}
#{id} img{{margin:0;border:0;box-shadow:none}}
#{id} .srviz-pix{{image-rendering:pixelated;image-rendering:crisp-edges}}
#{id} .srviz-controls{{display:flex;flex-wrap:wrap;align-items:center;gap:0.6em;margin:0.5em 0}}
#{id} .srviz-controls input[type=range]{{flex:1 1 12em;min-width:8em;max-width:36em;margin:0}}
#{id} .srviz-controls button{{font:inherit;padding:0.15em 0.7em;cursor:pointer}}
#{id} .srviz-controls output{{font-variant-numeric:tabular-nums}}
#{id} input:focus-visible,#{id} button:focus-visible{{outline:2px solid #2f7cf6;outline-offset:2px}}
#{id} .srviz-title{{font-weight:600;margin-bottom:0.3em}}
#{id} figcaption.srviz-caption{{margin-top:0.3em;font-size:0.92em;opacity:0.85}}
#{id} .srviz-hint{{opacity:0.7}}
"""

# The script finds its own root: the element just before it (robust when the same output is shown
# twice), else by id. It runs once per root, whether injected by myst-nb, JupyterLab or a saved page.
_JS_PRELUDE = """(function(){{
var ID="{id}";var s=document.currentScript;
var prev=s&&s.previousElementSibling;
var root=(prev&&prev.id===ID)?prev:document.getElementById(ID);
if(!root||root.getAttribute("data-srviz-ready"))return;root.setAttribute("data-srviz-ready","1");
function clamp(v,a,b){{return Math.max(a,Math.min(b,v));}}
"""


def _assemble(uid: str, css: str, body: str, js: str) -> str:
    return (f"<style>{_BASE_CSS.format(id=uid)}{css.format(id=uid)}</style>\n{body}\n"
            f"<script>{_JS_PRELUDE.format(id=uid)}{js}}})();</script>")


def _display_size(h: int, w: int, height: int | None = None, width: int | None = None) -> tuple[int, int]:
    """CSS pixel size (w, h) for an h x w image shown at a given width or height (aspect kept)."""
    if width is not None:
        return int(width), max(1, round(h * width / w))
    if height is not None:
        return max(1, round(w * height / h)), int(height)
    return w, h


def _pix_class(pixelated: bool | None, shown_w: int, natural_w: int) -> str:
    """Nearest-neighbour rendering when asked, or (``None``) whenever the image is enlarged."""
    on = pixelated if pixelated is not None else shown_w > natural_w
    return " srviz-pix" if on else ""


# ----------------------------------------------------------------------------------------------
# 1. Before/after slider
# ----------------------------------------------------------------------------------------------
_BA_CSS = """
#{id} .srviz-ba-stage{{position:relative;max-width:100%;line-height:0;touch-action:pan-y;cursor:ew-resize;
  user-select:none;-webkit-user-select:none}}
#{id} .srviz-ba-stage img{{display:block;width:100%;height:auto;max-width:none}}
#{id} .srviz-ba-stage img.srviz-ba-right{{position:absolute;left:0;top:0;height:100%}}
#{id} .srviz-ba-line{{position:absolute;top:0;bottom:0;width:2px;margin-left:-1px;background:#fff;
  box-shadow:0 0 0 1px rgba(0,0,0,.55);pointer-events:none}}
#{id} .srviz-ba-grip{{position:absolute;top:50%;left:50%;width:14px;height:14px;margin:-9px 0 0 -9px;
  border-radius:50%;background:#fff;border:2px solid rgba(0,0,0,.55)}}
#{id} .srviz-label{{position:absolute;top:6px;padding:2px 6px;border-radius:3px;background:rgba(0,0,0,.62);
  color:#fff;font-size:12px;line-height:1.3;pointer-events:none}}
#{id} .srviz-label-left{{left:6px}}
#{id} .srviz-label-right{{right:6px}}
"""

_BA_JS = """
var stage=root.querySelector(".srviz-ba-stage"),over=root.querySelector("img.srviz-ba-right"),
    line=root.querySelector(".srviz-ba-line"),input=root.querySelector("input.srviz-ba-range");
var L=root.getAttribute("data-left"),R=root.getAttribute("data-right");
function set(v){
  v=clamp(Math.round(+v),0,100);
  var c="inset(0 0 0 "+v+"%)";over.style.clipPath=c;over.style.webkitClipPath=c;
  line.style.left=v+"%";input.value=v;
  input.setAttribute("aria-valuetext",L+" on the left "+v+"%, "+R+" on the right "+(100-v)+"%");
}
input.addEventListener("input",function(){set(input.value);});
var drag=false;
function fromEvent(e){var r=stage.getBoundingClientRect();if(r.width>0)set(100*(e.clientX-r.left)/r.width);}
stage.addEventListener("pointerdown",function(e){drag=true;
  if(stage.setPointerCapture){try{stage.setPointerCapture(e.pointerId);}catch(err){}}
  fromEvent(e);e.preventDefault();});
stage.addEventListener("pointermove",function(e){if(drag)fromEvent(e);});
function stop(){drag=false;}
stage.addEventListener("pointerup",stop);stage.addEventListener("pointercancel",stop);
stage.addEventListener("lostpointercapture",stop);
set(input.value);
"""


def before_after(left: ImageLike, right: ImageLike, labels: Sequence[str] = ("Bicubic", "Model"),
                 width: int | None = None, caption: str | None = None, *, start: int = 50,
                 pixelated: bool | None = None, fmt: str = "png", quality: int = 85,
                 max_bytes: int | None = MAX_EMBED_BYTES) -> InteractiveHTML:
    """Two images stacked, with a draggable vertical divider: left of it ``left``, right of it ``right``.

    Drag on the picture, click it, or use the slider under it (arrow keys, Home/End) to move the
    divider. Without JavaScript the page shows the two halves split at ``start``.

    Args:
        left, right: images of the same size: (3, H, W) float tensors in [0, 1] (or numpy HWC,
            see :func:`to_uint8_image`), e.g. the bicubic upscale and the model output.
        labels: names written in the top-left and top-right corners and used in alt texts.
        width: display width in CSS pixels (aspect kept); default: the image's own width, shrunk
            to the column if wider.
        caption: text under the figure; default: a sentence naming both sides.
        start: initial divider position, percent of the width from the left. Default: 50.
        pixelated: nearest-neighbour display; default (None): on when ``width`` enlarges the image.
        fmt: ``"png"`` (lossless, default) or ``"jpeg"``; quality: JPEG quality.
        max_bytes: warn above this many bytes of embedded images (None: never).

    Returns:
        An :class:`InteractiveHTML`.

    Example:
        >>> import torch
        >>> fig = before_after(torch.zeros(3, 8, 8), torch.ones(3, 8, 8), width=160)
        >>> "input" in fig.html and "Bicubic" in fig.text
        True
    """
    a, b = to_uint8_image(left), to_uint8_image(right)
    if a.shape != b.shape:
        raise ValueError(f"before_after needs two images of one size, got {a.shape[:2]} and {b.shape[:2]}; "
                         "upscale the LR image first (e.g. bicubic) to compare it with the output")
    if len(labels) != 2:
        raise ValueError(f"labels must be two strings (left, right), got {labels!r}")
    lab_l, lab_r = (str(x) for x in labels)
    src_l, src_r = _encode(a, fmt, quality), _encode(b, fmt, quality)
    _check_size("before_after", (src_l, src_r), max_bytes)
    return _before_after_component({lab_l: src_l, lab_r: src_r}, lab_l, lab_r, a.shape[:2], width, caption,
                                   start, pixelated, choosable=False)


def compare_any(images: Mapping[str, ImageLike], left: str | None = None, right: str | None = None,
                width: int | None = None, caption: str | None = None, *, start: int = 50,
                pixelated: bool | None = None, fmt: str = "png", quality: int = 85,
                max_bytes: int | None = MAX_EMBED_BYTES) -> InteractiveHTML:
    """A before/after slider whose two sides are chosen from several images with two menus.

    Use it to let the reader compare any two models on one crop. Every image is embedded once; the
    menus swap them in the browser, so it works in the static site. Without JavaScript the page shows
    ``left`` and ``right``.

    Args:
        images: label -> image, all the same size ((3, H, W) tensors in [0, 1] or numpy HWC), at
            least two.
        left, right: labels shown first; default: the first and the last image.
        width, caption, start, pixelated, fmt, quality, max_bytes: as for :func:`before_after`.

    Example:
        >>> import torch
        >>> fig = compare_any({"Bicubic": torch.zeros(3, 8, 8), "A": torch.ones(3, 8, 8),
        ...                    "B": torch.full((3, 8, 8), 0.5)}, left="A", right="B")
        >>> fig.html.count("<option") == 6 and "A | B" in fig.text
        True
    """
    if len(images) < 2:
        raise ValueError(f"compare_any needs at least two images, got {len(images)}")
    arrays = {str(k): to_uint8_image(v) for k, v in images.items()}
    labels = list(arrays)
    shapes = {k: a.shape for k, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"compare_any needs images of one size, got {shapes}")
    left = labels[0] if left is None else str(left)
    right = labels[-1] if right is None else str(right)
    for side, lab in (("left", left), ("right", right)):
        if lab not in arrays:
            raise ValueError(f"{side}={lab!r} is not one of the images: {labels}")
    srcs = {k: _encode(a, fmt, quality) for k, a in arrays.items()}
    _check_size("compare_any", srcs.values(), max_bytes)
    return _before_after_component(srcs, left, right, arrays[left].shape[:2], width, caption, start, pixelated,
                                   choosable=True)


_CHOICE_JS = """
var store={};root.querySelectorAll("img.srviz-ba-store").forEach(function(im){
  store[im.getAttribute("data-label")]=im.getAttribute("src");});
var imgL=root.querySelector("img.srviz-ba-left"),labL=root.querySelector(".srviz-label-left"),
    labR=root.querySelector(".srviz-label-right");
function choose(side,name){
  if(!(name in store))return;
  if(side==="left"){imgL.src=store[name];imgL.alt=name;labL.textContent=name;L=name;}
  else{over.src=store[name];over.alt=name;labR.textContent=name;R=name;}
  set(input.value);
}
root.querySelectorAll("select.srviz-ba-choice").forEach(function(sel){
  sel.addEventListener("change",function(){choose(sel.getAttribute("data-side"),sel.value);});});
"""


def _before_after_component(srcs: Mapping[str, str], lab_l: str, lab_r: str, hw: tuple[int, int],
                            width: int | None, caption: str | None, start: int, pixelated: bool | None,
                            choosable: bool) -> InteractiveHTML:
    # The markup of before_after and compare_any; ``srcs`` maps each label to its encoded image.
    h, w = hw
    uid = _new_id("ba")
    dw, _ = _display_size(h, w, width=width)
    pix = _pix_class(pixelated, dw, w)
    start = int(min(100, max(0, start)))
    cap = caption if caption is not None else (
        f"{lab_l} (left of the divider) and {lab_r} (right of it), {w}\u00d7{h} pixels.")
    clip = f"inset(0 0 0 {start}%)"
    controls = (f'<input class="srviz-ba-range" type="range" min="0" max="100" step="1" value="{start}" '
                f'aria-label="Divider position: {_esc(lab_l)} on the left, {_esc(lab_r)} on the right">')
    store = ""
    if choosable:
        def menu(side: str, chosen: str) -> str:
            opts = "".join(f'<option value="{_esc(k)}"{" selected" if k == chosen else ""}>{_esc(k)}</option>'
                           for k in srcs)
            return (f'<label>{side} <select class="srviz-ba-choice" data-side="{side}" '
                    f'aria-label="Image on the {side}">{opts}</select></label>')
        controls = menu("left", lab_l) + controls + menu("right", lab_r)
        # The other images wait, hidden, in the page itself: no network, no JavaScript strings to escape.
        store = "".join(f'<img class="srviz-ba-store" hidden alt="" data-label="{_esc(k)}" src="{src}">'
                        for k, src in srcs.items())
    body = (
        f'<figure class="srviz srviz-ba" id="{uid}" data-left="{_esc(lab_l)}" data-right="{_esc(lab_r)}" '
        f'style="width:{dw}px">\n'
        f'<div class="srviz-ba-stage">'
        f'<img class="srviz-ba-left{pix}" src="{srcs[lab_l]}" width="{w}" height="{h}" '
        f'alt="{_esc(lab_l)}: {w}\u00d7{h} image, shown left of the divider">'
        f'<img class="srviz-ba-right{pix}" src="{srcs[lab_r]}" width="{w}" height="{h}" '
        f'alt="{_esc(lab_r)}: {w}\u00d7{h} image, shown right of the divider" '
        f'style="clip-path:{clip};-webkit-clip-path:{clip}">'
        f'<div class="srviz-ba-line" style="left:{start}%"><div class="srviz-ba-grip"></div></div>'
        f'<span class="srviz-label srviz-label-left">{_esc(lab_l)}</span>'
        f'<span class="srviz-label srviz-label-right">{_esc(lab_r)}</span></div>\n'
        f'<div class="srviz-controls">{controls}</div>{store}\n'
        f'<figcaption class="srviz-caption">{_esc(cap)} '
        f'<span class="srviz-hint">(drag the picture or use the slider'
        f'{"; choose the two sides in the menus" if choosable else ""})</span></figcaption>\n'
        f'</figure>')
    choices = f" Choices: {', '.join(srcs)}." if choosable else ""
    text = f"Before/after comparison, {w}\u00d7{h} px: {lab_l} | {lab_r}. {cap}{choices}"
    js = _BA_JS + (_CHOICE_JS if choosable else "")
    return InteractiveHTML(_assemble(uid, _BA_CSS, body, js), text, title=f"{lab_l} vs {lab_r}")


# ----------------------------------------------------------------------------------------------
# 2. Frame scrubber
# ----------------------------------------------------------------------------------------------
_FS_CSS = """
#{id} .srviz-fs-frame{{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}}
#{id} .srviz-fs-frame[hidden]{{display:none}}
#{id} figure.srviz-panel{{margin:0;text-align:center;max-width:100%}}
#{id} figure.srviz-panel img{{display:block;max-width:100%;height:auto}}
#{id} figure.srviz-panel figcaption{{font-size:0.85em;opacity:0.85}}
#{id} .srviz-fs-label{{min-width:10em}}
"""

_FS_JS = """
var frames=root.querySelectorAll(".srviz-fs-frame"),n=frames.length,
    input=root.querySelector("input.srviz-fs-range"),out=root.querySelector("output.srviz-fs-label"),
    btn=root.querySelector("button.srviz-fs-play"),cur=0,timer=null,
    fps=+root.getAttribute("data-fps")||2;
for(var i=0;i<n;i++){if(!frames[i].hidden)cur=i;}
function show(i){
  i=((Math.round(+i)%n)+n)%n;
  for(var k=0;k<n;k++)frames[k].hidden=(k!==i);
  cur=i;input.value=i;var t=frames[i].getAttribute("data-label");
  out.textContent=t;input.setAttribute("aria-valuetext",t);
}
input.addEventListener("input",function(){show(input.value);});
function stopPlay(){if(timer!==null){clearInterval(timer);timer=null;}
  if(btn){btn.textContent="\\u25B6 Play";btn.setAttribute("aria-pressed","false");}}
if(btn)btn.addEventListener("click",function(){
  if(timer!==null){stopPlay();return;}
  if(cur===n-1)show(0);
  timer=setInterval(function(){if(cur>=n-1){stopPlay();}else{show(cur+1);}},1000/fps);
  btn.textContent="\\u275A\\u275A Pause";btn.setAttribute("aria-pressed","true");
});
show(cur);
"""


def frame_scrubber(frames: Sequence[ImageLike] | Sequence[Sequence[ImageLike]] | torch.Tensor,
                   labels: Sequence[str], caption: str | None = None, title: str | None = None, *,
                   panel_labels: Sequence[str] | None = None, height: int | None = None,
                   start: int = 0, play: bool = True, fps: float = 2.0, pixelated: bool | None = None,
                   fmt: str = "png", quality: int = 85,
                   max_bytes: int | None = MAX_EMBED_BYTES) -> InteractiveHTML:
    """A slider over precomputed frames, showing one frame (one image or a row of panels) at a time.

    The book's replacement for ``interact``: compute the states in Python (outputs over training
    steps, over scales, over an interpolation weight) and scrub through them in the static page.
    Keyboard: the slider takes arrow keys, Home/End; the optional button plays the frames once.
    Without JavaScript the page shows frame ``start`` and its label.

    Args:
        frames: a list of images, one per frame, each (3, H, W) float in [0, 1] (or numpy HWC,
            see :func:`to_uint8_image`; a (N, 3, H, W) tensor is read as N frames); or a list of
            rows, one per frame, each a list of panel images (e.g. ``[lr, sr, error_map(sr, hr)]``).
            Panels of different sizes are shown at one display height.
        labels: one text per frame, shown beside the slider (e.g. ``"step 200 - 24.31 dB"``).
        caption: text under the figure; default: a sentence saying what the slider does.
        title: a heading above the frames (also the slider's accessible name).
        panel_labels: one name per panel, written under each panel (e.g. ``("LR", "SR", "error")``).
        height: display height of every panel in CSS pixels; default: the tallest panel's height.
        start: the frame shown first. Default: 0.
        play: add a play/pause button. fps: frames per second when playing.
        pixelated: nearest-neighbour display; default (None): on for panels that are enlarged.
        fmt: ``"png"`` or ``"jpeg"`` (much smaller for many photographic frames); quality: JPEG quality.
        max_bytes: warn above this many bytes of embedded images (None: never).

    Returns:
        An :class:`InteractiveHTML`.

    Example:
        >>> import torch
        >>> frames = [torch.full((3, 8, 8), v) for v in (0.0, 0.5, 1.0)]
        >>> fig = frame_scrubber(frames, ["alpha = 0", "alpha = 0.5", "alpha = 1"], title="Interpolation")
        >>> fig.html.count("<img")
        3
    """
    if isinstance(frames, torch.Tensor) and frames.dim() == 4:
        frames = list(frames)
    frames = list(frames)
    labels = [str(x) for x in labels]
    if not frames:
        raise ValueError("frame_scrubber needs at least one frame")
    if len(labels) != len(frames):
        raise ValueError(f"got {len(frames)} frames but {len(labels)} labels: give one label per frame")
    rows = [list(f) if isinstance(f, (list, tuple)) else [f] for f in frames]
    npanel = len(rows[0])
    if any(len(r) != npanel for r in rows):
        raise ValueError("every frame must have the same number of panels")
    if panel_labels is not None and len(panel_labels) != npanel:
        raise ValueError(f"got {len(panel_labels)} panel labels for {npanel} panels per frame")
    arrays = [[to_uint8_image(p) for p in r] for r in rows]
    disp_h = int(height) if height is not None else max(a.shape[0] for r in arrays for a in r)
    start = int(min(len(frames) - 1, max(0, start)))
    uid = _new_id("fs")
    uris = []
    frame_html = []
    for i, (row, label) in enumerate(zip(arrays, labels)):
        panels = []
        for j, a in enumerate(row):
            h, w = a.shape[:2]
            dw, dh = _display_size(h, w, height=disp_h)
            src = _encode(a, fmt, quality)
            uris.append(src)
            pname = panel_labels[j] if panel_labels is not None else ""
            alt = f"{pname + ', ' if pname else ''}{label} ({w}\u00d7{h} image)"
            cap = f"<figcaption>{_esc(pname)}</figcaption>" if pname else ""
            panels.append(
                f'<figure class="srviz-panel"><img class="srviz-fs-img{_pix_class(pixelated, dw, w)}" src="{src}" '
                f'width="{dw}" height="{dh}" alt="{_esc(alt)}">{cap}</figure>')
        hidden = "" if i == start else " hidden"
        frame_html.append(f'<div class="srviz-fs-frame" data-label="{_esc(label)}"{hidden}>{"".join(panels)}</div>')
    _check_size("frame_scrubber", uris, max_bytes)
    name = title or "Frames"
    cap = caption if caption is not None else (
        f"{len(frames)} frames, from \u201c{labels[0]}\u201d to \u201c{labels[-1]}\u201d; "
        "move the slider to step through them.")
    head = f'<div class="srviz-title">{_esc(title)}</div>' if title else ""
    button = ('<button type="button" class="srviz-fs-play" aria-pressed="false" '
              f'aria-label="Play or pause {_esc(name)}">\u25B6 Play</button>') if play and len(frames) > 1 else ""
    body = (
        f'<figure class="srviz srviz-fs" id="{uid}" role="group" aria-label="{_esc(name)}" data-fps="{float(fps):g}">\n'
        f'{head}<div class="srviz-fs-frames">{"".join(frame_html)}</div>\n'
        f'<div class="srviz-controls">{button}'
        f'<input class="srviz-fs-range" type="range" min="0" max="{len(frames) - 1}" step="1" value="{start}" '
        f'aria-label="Frame of {_esc(name)}" aria-valuetext="{_esc(labels[start])}">'
        f'<output class="srviz-fs-label" aria-live="polite">{_esc(labels[start])}</output></div>\n'
        f'<figcaption class="srviz-caption">{_esc(cap)}</figcaption>\n</figure>')
    text = (f"{name}: {len(frames)} frames ({npanel} panel{'s' if npanel > 1 else ''} each); "
            f"labels: {'; '.join(labels)}. {cap}")
    return InteractiveHTML(_assemble(uid, _FS_CSS, body, _FS_JS), text, title=name)


# ----------------------------------------------------------------------------------------------
# 3. Synchronised zoom
# ----------------------------------------------------------------------------------------------
_SZ_CSS = """
#{id} .srviz-sz-row{{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}}
#{id} figure.srviz-sz-panel{{margin:0;text-align:center}}
#{id} .srviz-sz-full{{position:relative;line-height:0;cursor:crosshair;touch-action:pan-y;max-width:100%}}
#{id} .srviz-sz-full img{{display:block;width:100%;height:auto;max-width:none}}
#{id} .srviz-sz-box{{position:absolute;border:2px solid #ff3b30;box-shadow:0 0 0 1px rgba(0,0,0,.5);
  box-sizing:border-box;pointer-events:none}}
#{id} .srviz-sz-crop{{position:relative;overflow:hidden;margin-top:6px;line-height:0;
  outline:2px solid #ff3b30;outline-offset:-2px}}
#{id} .srviz-sz-crop img{{position:absolute;left:0;top:0;max-width:none;max-height:none}}
#{id} figure.srviz-sz-panel figcaption{{font-size:0.9em;margin-top:0.2em}}
#{id} .srviz-controls label{{display:flex;align-items:center;gap:0.4em;flex:1 1 14em;max-width:24em}}
#{id} .srviz-controls label input[type=range]{{flex:1 1 auto;min-width:6em}}
#{id} output.srviz-sz-label{{flex:1 0 100%}}
"""

_SZ_JS = """
var W=+root.getAttribute("data-w"),H=+root.getAttribute("data-h"),C=+root.getAttribute("data-crop"),
    Z=+root.getAttribute("data-zoom"),
    xs=root.querySelector("input.srviz-sz-x"),ys=root.querySelector("input.srviz-sz-y"),
    out=root.querySelector("output.srviz-sz-label"),panels=root.querySelectorAll(".srviz-sz-panel"),
    pinned=false,x=+xs.value,y=+ys.value;
for(var i=0;i<panels.length;i++){
  var full=panels[i].querySelector(".srviz-sz-full img"),mag=panels[i].querySelector(".srviz-sz-crop img");
  mag.style.width=(W*Z)+"px";mag.style.height=(H*Z)+"px";mag.src=full.src;
}
function set(nx,ny){
  x=clamp(Math.round(nx),0,W-C);y=clamp(Math.round(ny),0,H-C);xs.value=x;ys.value=y;
  for(var i=0;i<panels.length;i++){
    var b=panels[i].querySelector(".srviz-sz-box").style,m=panels[i].querySelector(".srviz-sz-crop img").style;
    b.left=(100*x/W)+"%";b.top=(100*y/H)+"%";m.left=(-x*Z)+"px";m.top=(-y*Z)+"px";
  }
  var t="crop "+C+"\\u00d7"+C+" px at left "+x+", top "+y+", magnified \\u00d7"+Z+
        (pinned?" (pinned: click to release)":"");
  out.textContent=t;xs.setAttribute("aria-valuetext","left "+x);ys.setAttribute("aria-valuetext","top "+y);
}
function point(e,el){var r=el.getBoundingClientRect();
  return [(e.clientX-r.left)/r.width*W-C/2,(e.clientY-r.top)/r.height*H-C/2];}
var fulls=root.querySelectorAll(".srviz-sz-full");
for(var j=0;j<fulls.length;j++){(function(el){
  el.addEventListener("pointermove",function(e){
    if(!pinned&&e.pointerType==="mouse"){var p=point(e,el);set(p[0],p[1]);}});
  el.addEventListener("click",function(e){var p=point(e,el);pinned=!pinned;set(p[0],p[1]);});
})(fulls[j]);}
xs.addEventListener("input",function(){set(+xs.value,y);});
ys.addEventListener("input",function(){set(x,+ys.value);});
set(x,y);
"""


def sync_zoom(images: Sequence[ImageLike] | Mapping[str, ImageLike], labels: Sequence[str] | None = None,
              zoom: int = 4, crop: int = 64, *, caption: str | None = None, title: str | None = None,
              start: tuple[int, int] | None = None, panel_width: int | None = None,
              fmt: str = "png", quality: int = 85, max_bytes: int | None = MAX_EMBED_BYTES) -> InteractiveHTML:
    """Images side by side, each with the same magnified crop: point at one and all follow.

    Hover over any image to move the crop (mouse), click to pin or release it (also touch); the
    two sliders (arrow keys) move it without a pointer. Under each image the crop is shown
    ``zoom`` times larger with nearest-neighbour pixels. Without JavaScript the panels show the
    crop at ``start`` (default: the centre), precomputed.

    Args:
        images: images of one size, each (3, H, W) float in [0, 1] (or numpy HWC, see
            :func:`to_uint8_image`); a dict ``{label: image}`` gives the labels too.
        labels: one name per image (required unless ``images`` is a dict).
        zoom: magnification of the crop (integer, nearest neighbour). Default: 4.
        crop: side of the square crop in image pixels (limited to the image size). Default: 64.
        caption: text under the figure; title: heading above it.
        start: (top, left) of the initial crop in pixels; default: centred.
        panel_width: display width of the full images in CSS pixels; default: ``crop * zoom``.
        fmt, quality, max_bytes: as in :func:`frame_scrubber`.

    Returns:
        An :class:`InteractiveHTML`.

    Example:
        >>> import torch
        >>> fig = sync_zoom({"Bicubic": torch.rand(3, 32, 32), "Model": torch.rand(3, 32, 32)}, crop=8)
        >>> fig.html.count('type="range"')
        2
    """
    if isinstance(images, Mapping):
        labels = list(images.keys()) if labels is None else list(labels)
        images = list(images.values())
    images = list(images)
    if labels is None:
        raise ValueError("sync_zoom needs labels (or a dict {label: image})")
    labels = [str(x) for x in labels]
    if len(labels) != len(images) or not images:
        raise ValueError(f"got {len(images)} images and {len(labels)} labels: give one label per image")
    arrays = [to_uint8_image(im) for im in images]
    h, w = arrays[0].shape[:2]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"sync_zoom needs images of one size, got {[a.shape[:2] for a in arrays]}; "
                         "upscale LR images first so pixels line up")
    zoom, crop = max(1, int(zoom)), max(1, min(int(crop), h, w))
    top, left = start if start is not None else ((h - crop) // 2, (w - crop) // 2)
    top, left = int(min(max(0, top), h - crop)), int(min(max(0, left), w - crop))
    uid = _new_id("sz")
    side = crop * zoom
    pw = int(panel_width) if panel_width is not None else side
    uris = []
    panels = []
    for lab, a in zip(labels, arrays):
        src = _encode(a, fmt, quality)
        # the crop shown before the script runs (and by pages without scripts): a few KB
        src_crop = _encode(a[top:top + crop, left:left + crop], fmt, quality)
        uris += [src, src_crop]
        panels.append(
            f'<figure class="srviz-sz-panel" style="width:{max(pw, side)}px;max-width:100%">'
            f'<div class="srviz-sz-full" style="width:{pw}px">'
            f'<img class="{_pix_class(None, pw, w).strip()}" src="{src}" width="{w}" height="{h}" '
            f'alt="{_esc(lab)}: full {w}\u00d7{h} image; the red box marks the magnified region">'
            f'<div class="srviz-sz-box" style="left:{100 * left / w:.4f}%;top:{100 * top / h:.4f}%;'
            f'width:{100 * crop / w:.4f}%;height:{100 * crop / h:.4f}%"></div></div>'
            f'<div class="srviz-sz-crop" style="width:{side}px;height:{side}px">'
            f'<img class="srviz-pix" src="{src_crop}" width="{side}" height="{side}" '
            f'alt="{_esc(lab)}: the boxed {crop}\u00d7{crop} region magnified {zoom} times" '
            f'style="width:{side}px;height:{side}px"></div>'
            f'<figcaption>{_esc(lab)}</figcaption></figure>')
    _check_size("sync_zoom", uris, max_bytes)
    name = title or "Synchronised zoom"
    cap = caption if caption is not None else (
        f"{', '.join(labels)}: the same {crop}\u00d7{crop} region of each {w}\u00d7{h} image, "
        f"magnified {zoom}\u00d7. Hover to move it, click to pin it, or use the sliders.")
    head = f'<div class="srviz-title">{_esc(title)}</div>' if title else ""
    body = (
        f'<figure class="srviz srviz-sz" id="{uid}" role="group" aria-label="{_esc(name)}" data-w="{w}" '
        f'data-h="{h}" data-crop="{crop}" data-zoom="{zoom}">\n{head}'
        f'<div class="srviz-sz-row">{"".join(panels)}</div>\n'
        f'<div class="srviz-controls">'
        f'<label for="{uid}-x">left<input id="{uid}-x" class="srviz-sz-x" type="range" min="0" '
        f'max="{w - crop}" step="1" value="{left}" aria-label="Crop left edge, pixels"></label>'
        f'<label for="{uid}-y">top<input id="{uid}-y" class="srviz-sz-y" type="range" min="0" '
        f'max="{h - crop}" step="1" value="{top}" aria-label="Crop top edge, pixels"></label>'
        f'<output class="srviz-sz-label" aria-live="polite">crop {crop}\u00d7{crop} px at left {left}, '
        f'top {top}, magnified \u00d7{zoom}</output></div>\n'
        f'<figcaption class="srviz-caption">{_esc(cap)}</figcaption>\n</figure>')
    text = f"{name}: {len(labels)} images ({', '.join(labels)}), {w}\u00d7{h} px. {cap}"
    return InteractiveHTML(_assemble(uid, _SZ_CSS, body, _SZ_JS), text, title=name)


# ----------------------------------------------------------------------------------------------
# Matplotlib figures
# ----------------------------------------------------------------------------------------------
class SRFigure(Figure):
    """A matplotlib Figure that shows itself as PNG in IPython and carries an ``alt_text``.

    Made without pyplot, so Jupyter shows it once (when returned or passed to ``display``) and
    never again at the end of the cell; save it with ``fig.savefig(path)``.
    """

    alt_text: str = ""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight", dpi=self.dpi,
                     metadata={"Description": self.alt_text} if self.alt_text else None)
        return buf.getvalue()


def _new_figure(figsize: tuple[float, float], alt: str, dpi: int = 100) -> SRFigure:
    fig = SRFigure(figsize=figsize, dpi=dpi, layout="constrained")
    fig.alt_text = alt
    return fig


def compare_crops(images: Mapping[str, ImageLike], box: tuple[int, int, int, int],
                  zoom_box_color: str = "#ff3b30", title: str | None = None,
                  metrics: Mapping[str, str] | None = None, *, panel_size: float = 2.6) -> SRFigure:
    """The standard SR figure: each full image with a zoom box, and the boxed region magnified below.

    Typically LR / bicubic / model / HR. ``box`` is given in the pixels of the largest (HR-sized)
    image; smaller images (the LR input) are shown at their own resolution with the box scaled by
    their size ratio, so every crop shows exactly the same scene region. Crops use nearest-neighbour
    display, so the pixels the reader sees are the pixels of the image.

    Args:
        images: ``{label: image}``, each (3, H, W) float in [0, 1] (or numpy HWC, see
            :func:`to_uint8_image`), in display order; sizes may differ by a scale factor.
        box: (top, left, height, width) of the zoom region in HR pixels.
        zoom_box_color: colour of the rectangle and of the crop frames.
        title: figure title (suptitle).
        metrics: ``{label: "27.31 dB / 0.812"}`` written under that image's crop.
        panel_size: inches per column.

    Returns:
        An :class:`SRFigure` with 2 * len(images) axes (full images on top, crops below).

    Example:
        >>> import torch
        >>> hr = torch.rand(3, 32, 32)
        >>> fig = compare_crops({"LR": hr[:, ::4, ::4], "HR": hr}, box=(8, 8, 8, 8))
        >>> len(fig.axes)
        4
    """
    if not images:
        raise ValueError("compare_crops needs at least one image")
    labels = list(images)
    arrays = [to_uint8_image(images[k]) for k in labels]
    ref_h = max(a.shape[0] for a in arrays)
    ref_w = max(a.shape[1] for a in arrays)
    top, left, bh, bw = (int(v) for v in box)
    if bh < 1 or bw < 1 or top < 0 or left < 0 or top + bh > ref_h or left + bw > ref_w:
        raise ValueError(f"box (top, left, height, width) = {box} must lie inside the {ref_h}x{ref_w} HR frame")
    metrics = dict(metrics or {})
    n = len(labels)
    alt = (f"{title + ': ' if title else ''}{', '.join(labels)} side by side, each with a box at "
           f"top {top}, left {left} ({bh}\u00d7{bw} HR pixels) and that region magnified below"
           + ("; " + "; ".join(f"{k} {metrics[k]}" for k in labels if k in metrics) if metrics else "") + ".")
    fig = _new_figure((panel_size * n, panel_size * 2 + (0.35 if title else 0.1)), alt)
    axes = fig.subplots(2, n, squeeze=False)
    for j, (lab, a) in enumerate(zip(labels, arrays)):
        h, w = a.shape[:2]
        sy, sx = h / ref_h, w / ref_w
        # Pixel i covers [i - 0.5, i + 0.5]; the HR box [top - .5, top + bh - .5] maps to these
        # coordinates in an image sy times smaller, so LR and HR crops show the same region.
        y0, y1 = top * sy - 0.5, (top + bh) * sy - 0.5
        x0, x1 = left * sx - 0.5, (left + bw) * sx - 0.5
        ax = axes[0, j]
        ax.imshow(a)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=zoom_box_color, linewidth=1.5))
        ax.set_title(lab if (h, w) == (ref_h, ref_w) else f"{lab} ({w}\u00d7{h})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        axc = axes[1, j]
        axc.imshow(a, interpolation="nearest")
        axc.set_xlim(x0, x1)
        axc.set_ylim(y1, y0)
        axc.set_xticks([])
        axc.set_yticks([])
        for spine in axc.spines.values():
            spine.set_edgecolor(zoom_box_color)
            spine.set_linewidth(1.5)
        axc.set_xlabel(f"{lab}\n{metrics[lab]}" if lab in metrics else lab, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def _x_for(history: Mapping[str, Sequence], key: str) -> Sequence:
    """The x values of ``history[key]``: ``val_step`` for ``val_*`` keys, else ``step``, else 1..n."""
    ys = history.get(key, [])
    for xkey in (("val_step",) if key.startswith("val_") else ()) + ("step",):
        xs = history.get(xkey)
        if xs is not None and len(xs) == len(ys):
            return xs
    return list(range(1, len(ys) + 1))


def _baseline_for(baseline, key: str):
    """(value, label) of the baseline drawn on ``key``'s axis, or None."""
    if baseline is None:
        return None
    if isinstance(baseline, Mapping):
        if key not in baseline:
            return None
        value = baseline[key]
        return (value, "baseline") if not isinstance(value, (tuple, list)) else (value[0], str(value[1]))
    if "psnr" not in key:
        return None
    if isinstance(baseline, (tuple, list)):
        return float(baseline[0]), str(baseline[1])
    return float(baseline), "bicubic"


def _draw_history(axes, history: Mapping[str, Sequence], keys: Sequence[str], baseline) -> None:
    for ax, key in zip(axes, keys):
        ys = [float(v) for v in history.get(key, [])]
        xs = list(_x_for(history, key))
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if not ys:
            ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center", alpha=0.6)
        else:
            ax.plot(xs, ys, marker="o" if len(ys) < 30 else None, markersize=3, linewidth=1.3,
                    label="model" if "val" in key else key)
            if "loss" in key and min(ys) > 0:
                ax.set_yscale("log")
        base = _baseline_for(baseline, key)
        if base is not None:
            ax.axhline(base[0], color="0.4", linestyle="--", linewidth=1, label=f"{base[1]} ({base[0]:.2f})")
            # a fixed corner: loc="best" scans every point and would dominate a live redraw
            ax.legend(fontsize=8, loc="upper right" if "loss" in key else "lower right")


def plot_history(history: Mapping[str, Sequence], keys: Sequence[str] = ("loss", "val_psnr"),
                 baseline: float | tuple[float, str] | Mapping[str, float] | None = None,
                 title: str | None = None) -> SRFigure:
    """Training curves from a history dict, one panel per key (loss on a log scale).

    Args:
        history: lists keyed by name, e.g. ``{"step": [...], "loss": [...], "val_step": [...],
            "val_psnr": [...]}`` (``srlib.train.fit(...).history``). ``val_*`` keys are plotted
            against ``val_step``, others against ``step``. Missing or empty keys give an empty panel.
        keys: which curves to draw.
        baseline: a horizontal dashed line: a number (drawn on the PSNR panels, labelled "bicubic"),
            a ``(value, label)`` pair, or ``{key: value}`` for any panel.
        title: figure title.

    Returns:
        An :class:`SRFigure` with ``len(keys)`` axes.

    Example:
        >>> fig = plot_history({"step": [1, 2, 3], "loss": [0.3, 0.2, 0.1]}, keys=("loss",))
        >>> fig.axes[0].get_yscale()
        'log'
    """
    keys = list(keys)
    last = [f"{k} {history[k][-1]:.4g}" for k in keys if len(history.get(k, [])) > 0]
    alt = (f"{title + ': ' if title else ''}training curves of {', '.join(keys)}"
           + (f"; last values: {', '.join(last)}" if last else "") + ".")
    fig = _new_figure((3.6 * len(keys), 2.9), alt)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    _draw_history(axes, history, keys, baseline)
    if title:
        fig.suptitle(title)
    return fig


def show_kernel(kernel: torch.Tensor | np.ndarray, title: str | None = None, cmap: str = "viridis",
                labels: Sequence[str] | None = None, annotate: bool | None = None) -> SRFigure:
    """Heat map of a blur kernel (or a row of kernels sharing one colour scale).

    Args:
        kernel: (k, k), (1, k, k) or (1, 1, k, k) for one kernel; (N, k, k) or (N, 1, k, k) for N.
        title: figure title; labels: one title per kernel.
        cmap: matplotlib colour map.
        annotate: write the values in the cells; default: when k <= 7.

    Returns:
        An :class:`SRFigure` with one axes per kernel plus one colour bar.
    """
    k = torch.as_tensor(np.asarray(kernel) if not isinstance(kernel, torch.Tensor) else kernel).detach().cpu().float()
    if k.dim() == 4 and k.shape[1] == 1:
        k = k[:, 0]  # (N, 1, k, k) -> (N, k, k)
    if k.dim() == 2:
        k = k[None]
    if k.dim() != 3:
        raise ValueError(f"expected a (k, k) or (N, k, k) kernel, got shape {tuple(np.shape(kernel))}")
    n = k.shape[0]
    vmin, vmax = float(k.min()), float(k.max())
    alt = (f"{title + ': ' if title else ''}heat map of {n} blur kernel{'s' if n > 1 else ''} of size "
           f"{k.shape[1]}\u00d7{k.shape[2]}, values from {vmin:.3g} to {vmax:.3g}.")
    fig = _new_figure((2.6 * n + 0.8, 2.6), alt)
    axes = fig.subplots(1, n, squeeze=False)[0]
    annotate = annotate if annotate is not None else max(k.shape[1:]) <= 7
    im = None
    for i, ax in enumerate(axes):
        im = ax.imshow(k[i].numpy(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=10)
        if annotate:
            mid = (vmin + vmax) / 2
            for (r, c), v in np.ndenumerate(k[i].numpy()):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > mid else "white")
    fig.colorbar(im, ax=list(axes), shrink=0.85)
    if title:
        fig.suptitle(title)
    return fig


def error_map(sr: ImageLike, hr: ImageLike, amplify: float = 10.0, cmap: str | None = "magma") -> torch.Tensor:
    """Absolute error |sr - hr|, averaged over channels, amplified, as an image for panels.

    Args:
        sr, hr: images of one size, (3, H, W) or (N, 3, H, W) float in [0, 1] (or numpy HWC).
        amplify: multiply the error by this before clipping to [0, 1] (10: an error of 0.1 is full
            scale). Default: 10.
        cmap: a matplotlib colour map name, or None for grey.

    Returns:
        (3, H, W) (or (N, 3, H, W) for batched input) float32 tensor in [0, 1], on the CPU.

    Example:
        >>> import torch
        >>> err = error_map(torch.zeros(3, 4, 4), torch.full((3, 4, 4), 0.05), cmap=None)
        >>> err.shape, round(err.max().item(), 3)  # 0.05 amplified 10 times
        (torch.Size([3, 4, 4]), 0.5)
    """
    a, b = _as_tensor(sr).cpu(), _as_tensor(hr).cpu()
    if a.shape != b.shape:
        raise ValueError(f"error_map needs sr and hr of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    err = ((a.clamp(0, 1) - b.clamp(0, 1)).abs().mean(dim=-3) * float(amplify)).clamp(0, 1)  # (..., H, W)
    if cmap is None:
        return err.unsqueeze(-3).expand(*err.shape[:-2], 3, *err.shape[-2:]).contiguous()
    import matplotlib

    rgb = matplotlib.colormaps[cmap](err.numpy())[..., :3]  # (..., H, W, 3)
    return torch.from_numpy(np.ascontiguousarray(rgb)).float().movedim(-1, -3).contiguous()


def image_grid(images: Sequence[ImageLike], labels: Sequence[str] | None = None, ncols: int = 4,
               title: str | None = None, panel_size: float = 2.4, pixelated: bool = True) -> SRFigure:
    """Images in a grid with a label under each.

    Args:
        images: a list of (3, H, W) float images in [0, 1] (or numpy HWC), or a (N, 3, H, W) tensor.
        labels: one text per image.
        ncols: images per row.
        title: figure title.
        panel_size: inches per panel.
        pixelated: nearest-neighbour display (the honest choice for SR outputs).

    Returns:
        An :class:`SRFigure` with exactly ``len(images)`` axes.
    """
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        images = list(images)
    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    ncols = max(1, min(int(ncols), len(images)))
    nrows = math.ceil(len(images) / ncols)
    alt = (f"{title + ': ' if title else ''}grid of {len(images)} images"
           + (f" ({', '.join(map(str, labels))})" if labels is not None else "") + ".")
    fig = _new_figure((panel_size * ncols, panel_size * nrows + (0.35 if title else 0.1)), alt)
    for i, img in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(to_uint8_image(img), interpolation="nearest" if pixelated else "antialiased")
        ax.set_xticks([])
        ax.set_yticks([])
        if labels is not None:
            ax.set_xlabel(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------
# Training callbacks
# ----------------------------------------------------------------------------------------------
def _callback_args(args: tuple) -> tuple[str, object]:
    """(event, state) from ``cb(state)`` (srlib.train.fit: ``state.event``) or ``cb(event, state)``."""
    if len(args) == 1:
        state = args[0]
        return str(getattr(state, "event", "step")), state
    if len(args) == 2:
        return str(args[0]), args[1]
    raise TypeError("a training callback is called as cb(state) or cb(event, state)")


def _ipython_active() -> bool:
    """True inside an IPython shell or Jupyter kernel; never imports IPython itself."""
    ip_mod = sys.modules.get("IPython")
    if ip_mod is None:
        return False
    try:
        return ip_mod.get_ipython() is not None
    except Exception:  # a broken IPython install must not break training
        return False


class LivePlot:
    """A light live plot of the training curves, redrawn in place in a notebook.

    Attach it to ``srlib.train.fit(..., callbacks=[LivePlot()])``. It redraws one output (an
    ``IPython.display`` handle updated in place; one Agg figure reused) at most every ``every``
    steps and after each validation and at the end, so it costs little. Outside IPython (scripts,
    tests) it does nothing. The last picture stays in the notebook, so the static page shows the
    finished curves, and ``.figure`` keeps the last one for ``savefig``.

    Called as ``cb(state)`` with ``state.event`` in {"step", "validate", "end"} (srlib.train) or as
    ``cb(event, state)``; ``state`` has ``step``, ``total_steps``, ``history``, ``last_loss``.

    Args:
        keys: history keys to plot, one panel each. Default: loss and validation PSNR.
        every: redraw at most every this many steps. Default: 50.
        min_seconds: and at most once per this many seconds on ``"step"`` events, so fast (GPU)
            steps do not wait for plotting (a redraw costs ~0.1-0.2 s on a CPU). Default: 1.
        baseline: as in :func:`plot_history` (e.g. the bicubic PSNR).
        title: text before the step counter in the figure title.
        figsize: inches; default: 3.6 per panel by 2.9.
    """

    def __init__(self, keys: Sequence[str] = ("loss", "val_psnr"), every: int = 50,
                 baseline: float | tuple[float, str] | Mapping[str, float] | None = None,
                 title: str = "training", figsize: tuple[float, float] | None = None,
                 min_seconds: float = 1.0):
        self.keys = list(keys)
        self.every = max(1, int(every))
        self.min_seconds = float(min_seconds)
        self._last_time = -math.inf
        self.baseline = baseline
        self.title = title
        self.figsize = figsize or (3.6 * len(self.keys), 2.9)
        self.draws = 0
        self.figure: SRFigure | None = None
        self._last_step: int | None = None
        self._handle = None
        self._lines: dict = {}

    def __call__(self, *args) -> None:
        event, state = _callback_args(args)
        if not _ipython_active():
            return
        step = int(getattr(state, "step", 0))
        if event == "step":
            if self._last_step is not None and step - self._last_step < self.every:
                return
            if self._last_step is None and step < self.every:
                return
            if time.perf_counter() - self._last_time < self.min_seconds:
                return
        self.draw(state)
        if event == "end":  # a later run (another cell) gets its own output; the figure stays for saving
            self._handle, self._last_step = None, None

    def draw(self, state) -> None:
        """Redraw now from ``state`` (``step``, ``total_steps``, ``history``, ``last_loss``)."""
        from IPython.display import Image as IPyImage, display

        fig = self._fig()
        history = getattr(state, "history", {})
        for ax, key in zip(fig.axes, self.keys):
            ys = history.get(key, [])
            line = self._lines.get(key)
            if line is not None and len(ys) > 0:
                # move the existing curve: re-creating axes and ticks would cost most of a redraw
                line.set_data(list(_x_for(history, key)), [float(v) for v in ys])
                line.set_marker("o" if len(ys) < 30 else "None")
                ax.relim()
                ax.autoscale_view()
            else:
                ax.clear()
                _draw_history([ax], history, [key], self.baseline)
                self._lines[key] = ax.lines[0] if len(ys) > 0 else None
        step, total = int(getattr(state, "step", 0)), getattr(state, "total_steps", None)
        loss = getattr(state, "last_loss", float("nan"))
        head = f"{self.title}: step {step}" + (f"/{total}" if total else "")
        if loss == loss:  # not NaN
            head += f", loss {loss:.4g}"
        fig.suptitle(head, fontsize=10)
        fig.alt_text = f"Live training curves ({', '.join(self.keys)}) at step {step}."
        buf = io.BytesIO()
        fig.savefig(buf, format="png")  # fixed layout, no tight bbox: one draw per update
        img = IPyImage(data=buf.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(img, display_id=True)
        else:
            self._handle.update(img)
        self._last_step = step
        self._last_time = time.perf_counter()
        self.draws += 1

    def _fig(self) -> SRFigure:
        if self.figure is None:
            fig = SRFigure(figsize=self.figsize, dpi=90)
            fig.alt_text = "Live training curves."
            fig.subplots(1, len(self.keys), squeeze=False)
            fig.subplots_adjust(left=0.09, right=0.98, bottom=0.17, top=0.84, wspace=0.28)
            self.figure = fig
        return self.figure


class SnapshotRecorder:
    """Records the model's output on one fixed LR crop during training, for a frame scrubber.

    On each due step the model runs on ``image_lr`` under ``torch.no_grad()`` in eval mode (then its
    train/eval mode is restored); the output is clamped to [0, 1] and kept on the CPU with a label.
    ``scrubber()`` turns the snapshots into "watch the model improve" (:func:`frame_scrubber`).

    Called as ``cb(state)`` (srlib.train: ``state.event``, ``state.step``, ``state.model``) or
    ``cb(event, state)``. A step is due when it is a multiple of ``every`` (or listed in ``steps``)
    and always at the ``"end"`` event; each step is recorded at most once. Record the untrained
    model yourself with ``rec.record(model, step=0)`` before training.

    Args:
        image_lr: the LR input, (3, h, w) or (1, 3, h, w) float in [0, 1] (or numpy HWC). Keep it
            small (e.g. 48x48): it runs once per snapshot.
        every: record every this many steps. Default: 100.
        label_fn: ``label_fn(step, sr) -> str`` for the frame label (e.g. with the PSNR against
            the HR crop); default: ``"step {step}"``.
        steps: explicit steps to record instead of multiples of ``every``.
        forward: ``forward(model, lr) -> sr`` for models not called as ``model(lr)``
            (e.g. reference-based ``lambda m, x: m(x, ref)``).
    """

    def __init__(self, image_lr: ImageLike, every: int = 100,
                 label_fn: Callable[[int, torch.Tensor], str] | None = None,
                 steps: Iterable[int] | None = None,
                 forward: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] | None = None):
        lr = _as_tensor(image_lr)
        if lr.dim() == 3:
            lr = lr[None]
        if lr.dim() != 4 or lr.shape[0] != 1:
            raise ValueError(f"image_lr must be one image (3, h, w) or (1, 3, h, w), got {tuple(lr.shape)}")
        self.image_lr = lr.cpu()
        self.every = max(1, int(every))
        self.label_fn = label_fn
        self.due_steps = set(int(s) for s in steps) if steps is not None else None
        self.forward = forward
        self.steps: list[int] = []
        self.frames: list[torch.Tensor] = []
        self.labels: list[str] = []

    def __call__(self, *args) -> None:
        event, state = _callback_args(args)
        step = int(getattr(state, "step", 0))
        due = (step in self.due_steps) if self.due_steps is not None else (step % self.every == 0)
        if (due or event == "end") and step not in self.steps:
            self.record(state.model, step)

    def record(self, model: torch.nn.Module, step: int, label: str | None = None) -> torch.Tensor:
        """Run ``model`` on the LR crop now and store the (3, H, W) output; returns it."""
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                x = self.image_lr.to(device)
                sr = self.forward(model, x) if self.forward is not None else model(x)
        finally:
            model.train(was_training)
        sr = sr.detach().float().clamp(0, 1).cpu()[0]
        text = label if label is not None else (self.label_fn(step, sr) if self.label_fn else f"step {step}")
        self.steps.append(int(step))
        self.frames.append(sr)
        self.labels.append(str(text))
        return sr

    def scrubber(self, caption: str | None = None, title: str | None = "The model during training", *,
                 with_input: bool = False, **kwargs) -> InteractiveHTML:
        """A :func:`frame_scrubber` of the snapshots, oldest first (``with_input``: LR panel beside)."""
        if not self.frames:
            raise ValueError("no snapshots yet: train with this recorder in callbacks, or call record()")
        order = sorted(range(len(self.steps)), key=lambda i: self.steps[i])
        frames = [[self.image_lr[0], self.frames[i]] if with_input else self.frames[i] for i in order]
        if with_input:
            kwargs.setdefault("panel_labels", ("LR input", "output"))
        kwargs.setdefault("start", len(frames) - 1)
        return frame_scrubber(frames, [self.labels[i] for i in order], caption=caption, title=title, **kwargs)


# ----------------------------------------------------------------------------------------------
# 4. Scatter explorer (chapter 3's efficiency frontier)
# ----------------------------------------------------------------------------------------------
_SC_CSS = """
#{id} .srviz-sc-row{{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}}
#{id} .srviz-sc-view[hidden]{{display:none}}
#{id} .srviz-sc-view svg{{display:block;max-width:100%;height:auto;overflow:visible}}
#{id} svg text{{font-size:11px;fill:currentColor}}
#{id} svg .srviz-sc-axis line,#{id} svg .srviz-sc-frame{{stroke:currentColor;stroke-opacity:.45;fill:none}}
#{id} svg .srviz-sc-grid{{stroke:currentColor;stroke-opacity:.12}}
#{id} svg .srviz-sc-base{{stroke:#888;stroke-dasharray:5 4}}
#{id} svg circle.srviz-sc-pt{{stroke:#fff;stroke-width:1.5;cursor:pointer}}
#{id} svg circle.srviz-sc-pt.srviz-sc-on{{stroke:#ff3b30;stroke-width:3}}
#{id} svg circle.srviz-sc-pt:focus{{outline:none;stroke:#2f7cf6;stroke-width:3}}
#{id} figure.srviz-sc-panel{{margin:0;text-align:center}}
#{id} figure.srviz-sc-panel img{{display:block;max-width:100%;height:auto}}
#{id} .srviz-sc-info{{display:block;font-size:0.9em;margin-top:0.3em;max-width:22em}}
#{id} .srviz-sc-legend span{{margin-right:1em;white-space:nowrap}}
"""

_SC_JS = """
var axisSel=root.querySelector("select.srviz-sc-axis"),pick=root.querySelector("select.srviz-sc-pick"),
    views=root.querySelectorAll(".srviz-sc-view"),img=root.querySelector("img.srviz-sc-crop"),
    cap=root.querySelector(".srviz-sc-name"),info=root.querySelector("output.srviz-sc-info"),store={};
root.querySelectorAll("img.srviz-sc-store").forEach(function(im){
  store[im.getAttribute("data-name")]={src:im.getAttribute("src"),info:im.getAttribute("data-info")};});
function axis(k){for(var i=0;i<views.length;i++)views[i].hidden=(views[i].getAttribute("data-axis")!==k);
  axisSel.value=k;}
function choose(n){
  if(!(n in store))return;
  img.src=store[n].src;img.alt="crop of "+n;cap.textContent=n;info.textContent=store[n].info;pick.value=n;
  root.querySelectorAll("circle.srviz-sc-pt").forEach(function(c){
    if(c.getAttribute("data-name")===n)c.classList.add("srviz-sc-on");else c.classList.remove("srviz-sc-on");});
}
axisSel.addEventListener("change",function(){axis(axisSel.value);});
pick.addEventListener("change",function(){choose(pick.value);});
root.querySelectorAll("circle.srviz-sc-pt").forEach(function(c){
  var n=c.getAttribute("data-name");
  c.addEventListener("mouseenter",function(){choose(n);});
  c.addEventListener("click",function(){choose(n);});
  c.addEventListener("focus",function(){choose(n);});
  c.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){choose(n);e.preventDefault();}});
});
axis(axisSel.value);choose(pick.value);
"""

_SC_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _fmt_tick(v: float) -> str:
    """A short tick label: 1k, 2.5M, 0.1, 30."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks inside [lo, hi] (positive), at most ~8 of them."""
    ticks: list[float] = []
    for mult in ((1,), (1, 3), (1, 2, 5)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in mult if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            break
    return ticks[::max(1, len(ticks) // 8)]


def _lin_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round linear ticks inside [lo, hi]."""
    raw = (hi - lo) / max(1, n)
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def scatter_explorer(points: Mapping[str, Mapping[str, float]], x_options: Mapping[str, str] | Sequence[str],
                     crops: Mapping[str, ImageLike], y: str = "psnr", *, y_label: str | None = None,
                     groups: Mapping[str, str] | None = None, baseline: tuple[str, float] | None = None,
                     selected: str | None = None, log_x: bool = True, title: str | None = None,
                     caption: str | None = None, width: int = 560, height: int = 360, crop_width: int = 256,
                     pixelated: bool | None = None, fmt: str = "png", quality: int = 85,
                     max_bytes: int | None = MAX_EMBED_BYTES) -> InteractiveHTML:
    """A scatter plot with a choice of x axis, whose points show their model's image crop.

    One point per model (e.g. validation PSNR against parameters, FLOPs or CPU time). A menu picks the
    x axis; hovering, clicking or tabbing to a point (or choosing it in the second menu) shows that
    model's crop beside the plot with its values. Every axis is drawn in Python as an inline SVG and
    every crop embedded once, so it works in the static site; without JavaScript the page shows the
    first axis and the crop of ``selected``.

    Args:
        points: name -> {key: value}; each must hold ``y`` and the keys of ``x_options`` (a missing,
            non-finite or, on a log axis, non-positive x value leaves the point off that axis).
        x_options: x key -> axis label (a sequence of keys uses the keys as labels); the first is shown first.
        crops: name -> image ((3, H, W) float in [0, 1] or numpy HWC), one per point, all of one size.
        y: the y key. Default: ``"psnr"``. y_label: the y axis label (default: ``y``).
        groups: name -> group (e.g. the chapter); each group gets a colour and a legend entry.
        baseline: ``(label, value)``: a dashed horizontal line at that y (e.g. bicubic's PSNR).
        selected: the model shown first; default: the one with the highest ``y``.
        log_x: logarithmic x axes (parameters and FLOPs span orders of magnitude). Default: True.
        title, caption: a heading and a text under the figure (default: a sentence on how to use it).
        width, height: size of the plot in CSS pixels. crop_width: display width of the crop.
        pixelated, fmt, quality, max_bytes: as for :func:`frame_scrubber`.

    Returns:
        An :class:`InteractiveHTML`.

    Example:
        >>> import torch
        >>> pts = {"a": {"psnr": 26.0, "params": 1e4}, "b": {"psnr": 27.0, "params": 1e6}}
        >>> crops = {"a": torch.zeros(3, 8, 8), "b": torch.ones(3, 8, 8)}
        >>> fig = scatter_explorer(pts, {"params": "parameters"}, crops)
        >>> fig.html.count("<circle"), "b" in fig.text
        (2, True)
    """
    names = [str(k) for k in points]
    if not names:
        raise ValueError("scatter_explorer needs at least one point")
    opts = dict(x_options) if isinstance(x_options, Mapping) else {str(k): str(k) for k in x_options}
    if not opts:
        raise ValueError("scatter_explorer needs at least one x option")
    missing = [n for n in names if n not in crops]
    if missing:
        raise ValueError(f"no crop for {missing}: give one crop per point")
    for n in names:
        if y not in points[n] or not math.isfinite(float(points[n][y])):
            raise ValueError(f"point {n!r} has no finite {y!r} value")
    arrays = {n: to_uint8_image(crops[n]) for n in names}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"scatter_explorer needs crops of one size, got {sorted(shapes)}")
    selected = max(names, key=lambda n: float(points[n][y])) if selected is None else str(selected)
    if selected not in names:
        raise ValueError(f"selected={selected!r} is not one of the points: {names}")
    group_of = {n: str(groups.get(n, "")) if groups else "" for n in names}
    group_names = list(dict.fromkeys(group_of[n] for n in names))
    colour = {g: _SC_COLOURS[i % len(_SC_COLOURS)] for i, g in enumerate(group_names)}
    y_label = y_label or y

    def x_ok(v) -> bool:
        try:
            v = float(v)
        except (TypeError, ValueError):
            return False
        return math.isfinite(v) and (v > 0 or not log_x)

    ys = [float(points[n][y]) for n in names] + ([float(baseline[1])] if baseline else [])
    y_lo, y_hi = min(ys), max(ys)
    pad = 0.08 * (y_hi - y_lo) if y_hi > y_lo else 0.5
    y_lo, y_hi = y_lo - pad, y_hi + pad
    ml, mr, mt, mb = 52, 16, 12, 42  # margins: room for tick labels
    pw, ph = width - ml - mr, height - mt - mb
    sy = lambda v: mt + ph * (1 - (v - y_lo) / (y_hi - y_lo))  # noqa: E731
    uid = _new_id("sc")
    views = []
    for k, (key, label) in enumerate(opts.items()):
        xs = {n: float(points[n][key]) for n in names if key in points[n] and x_ok(points[n][key])}
        if not xs:
            raise ValueError(f"no point has a usable {key!r} value")
        f = (lambda v: math.log10(v)) if log_x else (lambda v: v)
        lo, hi = min(map(f, xs.values())), max(map(f, xs.values()))
        xpad = 0.08 * (hi - lo) if hi > lo else 0.5
        lo, hi = lo - xpad, hi + xpad
        sx = lambda v: ml + pw * (f(v) - lo) / (hi - lo)  # noqa: E731
        xt = _log_ticks(10 ** lo, 10 ** hi) if log_x else _lin_ticks(lo, hi)
        parts = [f'<rect class="srviz-sc-frame" x="{ml}" y="{mt}" width="{pw}" height="{ph}"></rect>']
        for t in _lin_ticks(y_lo, y_hi):
            parts.append(f'<line class="srviz-sc-grid" x1="{ml}" x2="{ml + pw}" y1="{sy(t):.1f}" '
                         f'y2="{sy(t):.1f}"></line><text x="{ml - 6}" y="{sy(t) + 4:.1f}" '
                         f'text-anchor="end">{_esc(_fmt_tick(round(t, 6)))}</text>')
        for t in xt:
            parts.append(f'<line class="srviz-sc-grid" y1="{mt}" y2="{mt + ph}" x1="{sx(t):.1f}" '
                         f'x2="{sx(t):.1f}"></line><text x="{sx(t):.1f}" y="{mt + ph + 15}" '
                         f'text-anchor="middle">{_esc(_fmt_tick(t))}</text>')
        parts.append(f'<text x="{ml + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                     f'{_esc(label)}{" (log scale)" if log_x else ""}</text>'
                     f'<text transform="translate(12 {mt + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
                     f'{_esc(y_label)}</text>')
        if baseline:
            by = sy(float(baseline[1]))
            parts.append(f'<line class="srviz-sc-base" x1="{ml}" x2="{ml + pw}" y1="{by:.1f}" y2="{by:.1f}"></line>'
                         f'<text x="{ml + 4}" y="{by + 13:.1f}">{_esc(baseline[0])}</text>')
        for n in names:
            if n not in xs:
                continue
            cx, cy = sx(xs[n]), sy(float(points[n][y]))
            on = " srviz-sc-on" if n == selected else ""
            tip = f"{n}: {y_label} {float(points[n][y]):.2f}, {label} {_fmt_tick(float(f'{xs[n]:.3g}'))}"
            parts.append(f'<circle class="srviz-sc-pt{on}" data-name="{_esc(n)}" cx="{cx:.1f}" cy="{cy:.1f}" r="6" '
                         f'fill="{colour[group_of[n]]}" tabindex="0" role="button" aria-label="{_esc(tip)}">'
                         f'<title>{_esc(tip)}</title></circle>'
                         + (f'<text x="{cx - 8:.1f}" y="{cy - 7:.1f}" text-anchor="end">{_esc(n)}</text>'
                            if cx > ml + 0.75 * pw else  # near the right edge: label on the left
                            f'<text x="{cx + 8:.1f}" y="{cy - 7:.1f}">{_esc(n)}</text>'))
        hidden = "" if k == 0 else " hidden"
        views.append(f'<div class="srviz-sc-view" data-axis="{_esc(key)}"{hidden}>'
                     f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
                     f'aria-label="{_esc(y_label)} against {_esc(label)}">{"".join(parts)}</svg></div>')

    def describe(n: str) -> str:
        vals = [f"{y_label} {float(points[n][y]):.2f}"]
        vals += [f"{lab} {_fmt_tick(float(f'{float(points[n][key]):.3g}'))}" for key, lab in opts.items()
                 if key in points[n] and x_ok(points[n][key])]
        return f"{n}{' (' + group_of[n] + ')' if group_of[n] else ''}: " + ", ".join(vals)

    srcs = {n: _encode(a, fmt, quality) for n, a in arrays.items()}
    _check_size("scatter_explorer", srcs.values(), max_bytes)
    h, w = arrays[selected].shape[:2]
    dw, dh = _display_size(h, w, width=crop_width)
    store = "".join(f'<img class="srviz-sc-store" hidden alt="" data-name="{_esc(n)}" '
                    f'data-info="{_esc(describe(n))}" src="{src}">' for n, src in srcs.items())
    axis_menu = "".join(f'<option value="{_esc(k)}"{" selected" if i == 0 else ""}>{_esc(v)}</option>'
                        for i, (k, v) in enumerate(opts.items()))
    pick_menu = "".join(f'<option value="{_esc(n)}"{" selected" if n == selected else ""}>{_esc(n)}</option>'
                        for n in names)
    legend = ("".join(f'<span><span style="color:{colour[g]}">\u25CF</span> {_esc(g)}</span>' for g in group_names)
              if groups else "")
    name = title or f"{y_label} against {', '.join(opts.values())}"
    cap = caption if caption is not None else (
        f"{len(names)} models. Choose the x axis in the menu; hover over, click or tab to a point (or choose a "
        "model in the second menu) to see its crop.")
    head = f'<div class="srviz-title">{_esc(title)}</div>' if title else ""
    body = (
        f'<figure class="srviz srviz-sc" id="{uid}" role="group" aria-label="{_esc(name)}">\n{head}'
        f'<div class="srviz-controls"><label>x axis <select class="srviz-sc-axis" aria-label="x axis">{axis_menu}'
        f'</select></label><label>model <select class="srviz-sc-pick" aria-label="model">{pick_menu}</select></label>'
        f'<span class="srviz-sc-legend">{legend}</span></div>\n'
        f'<div class="srviz-sc-row"><div class="srviz-sc-plot">{"".join(views)}</div>'
        f'<figure class="srviz-sc-panel" style="width:{dw}px"><img class="srviz-sc-crop{_pix_class(pixelated, dw, w)}" '
        f'src="{srcs[selected]}" width="{dw}" height="{dh}" alt="crop of {_esc(selected)}">'
        f'<figcaption><span class="srviz-sc-name">{_esc(selected)}</span>'
        f'<output class="srviz-sc-info" aria-live="polite">{_esc(describe(selected))}</output></figcaption></figure>'
        f'</div>{store}\n<figcaption class="srviz-caption">{_esc(cap)}</figcaption>\n</figure>')
    text = f"{name}: " + "; ".join(describe(n) for n in names) + f". {cap}"
    return InteractiveHTML(_assemble(uid, _SC_CSS, body, _SC_JS), text, title=name)
