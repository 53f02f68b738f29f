"""Sign in as a user in headless Chromium and screenshot pages (a developer's check).

    .venv/bin/python scripts/screenshot.py lead@example.org /audit /sites --out /tmp/shots
Needs Debian's chromium (/usr/bin/chromium) and `pip install -e '.[browser]'`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("email")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--password", default="demo-password-2026")
    parser.add_argument("--base", default="http://127.0.0.1:5000")
    # a developer's scratch folder for screenshots, never read back by the service
    parser.add_argument("--out", default="/tmp/shots")  # nosec B108
    parser.add_argument("--width", type=int, default=1400)
    opts = parser.parse_args()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": opts.width, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{opts.base}/login")
        page.fill("#email", opts.email)
        page.fill("#password", opts.password)
        page.click("button[type=submit]")
        for path in opts.paths:
            page.goto(f"{opts.base}{path}")
            name = path.strip("/").replace("/", "_").replace("?", "_") or "home"
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(f"{path} -> {out / name}.png  ({page.title()})")
        if errors:
            print("console errors:", *errors, sep="\n  ")
        browser.close()


if __name__ == "__main__":
    main()
