"""Build the book in the smoke budget (shared by the book and browser tests).

The smoke build executes every notebook (forced, no cache: jupyter-cache does not key on environment
variables, so a smoke run must never touch the real book's cache) and fails on any execution error.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE_DIR = ROOT / "_build" / "smoke"


def build_smoke_book(timeout: int = 1500) -> tuple[Path, subprocess.CompletedProcess]:
    """Run ``jupyter-book build`` with SRLIB_BUDGET=smoke; returns (html folder, completed process)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "force"
    config["execute"]["cache"] = str(SMOKE_DIR / ".jupyter_cache")
    # local extension folders are resolved relative to the config file, which moves to SMOKE_DIR
    local = config["sphinx"].get("local_extensions", {})
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in local.items()}
    SMOKE_DIR.mkdir(parents=True, exist_ok=True)
    smoke_config = SMOKE_DIR / "_config.yml"
    smoke_config.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "SRLIB_BUDGET": "smoke"}
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(ROOT), "--config", str(smoke_config), "--path-output", str(SMOKE_DIR),
                           "--builder", "html"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return SMOKE_DIR / "_build" / "html", proc
