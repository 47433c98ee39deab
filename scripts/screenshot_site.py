"""Screenshot pages of the built site in headless Chromium with the network closed.

    python scripts/screenshot_site.py _build/html/book/01_sr_problem/first_model.html shot.png [--full]

Prints every request the page tried to send off the machine (there should be none) and any
JavaScript error. Uses Debian's Chromium (/usr/bin/chromium) through Playwright.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import ARGS, CHROMIUM, block_network  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("page", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--full", action="store_true", help="the whole page, not just the first screen")
    p.add_argument("--width", type=int, default=1280)
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 1000})
        blocked = block_network(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(args.page.resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(2000)
        page.screenshot(path=str(args.output), full_page=args.full)
        browser.close()
    print(f"saved {args.output}; blocked requests: {blocked or 'none'}; JavaScript errors: {errors or 'none'}")
    return 0 if not blocked and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
