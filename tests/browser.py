"""Headless Chromium for the tests, with the network closed.

Uses Debian's Chromium (/usr/bin/chromium) through the ``playwright`` Python package (its own bundled
browsers are not used). Without them a browser test is skipped, except under ``CI=true``, where a
missing browser is a failure: CI must not pass by skipping.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
LOCAL_PREFIXES = ("file://", "data:", "http://127.0.0.1", "blob:")


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run, not skip)")
    pytest.skip(reason)


def sync_playwright():
    """Playwright's ``sync_playwright``, or skip/fail (see the module docstring) when it cannot run."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright as sp
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install playwright)")
    return sp


def block_network(page) -> list[str]:
    """Abort every request that is not local; returns the (live) list of blocked URLs."""
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(LOCAL_PREFIXES):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


def shot(locator) -> np.ndarray:
    """Screenshot of an element as a float32 RGB array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"), dtype=np.float32)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference (0..255) of two same-size screenshots."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).mean())
