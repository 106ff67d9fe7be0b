"""Regenerate docs/images/usage-meter.png: the watch page's usage meter after a budget stop.

Starts its own daphne (tests/e2e/browser.py) with the offline model priced like gpt-4o-mini (it is
free: the price is only there so the picture shows dollars), runs a debate with a token budget
to its verdict, and saves the meter.

    .venv/bin/python scripts/screenshot_meter.py [--budget 800] [--out PATH]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.screenshot import VIEWPORT, WAIT_MS, png_size  # noqa: E402
from tests.e2e.browser import launch_chromium, live_server, sign_in  # noqa: E402

PRICES = {"offline-analyst": {"prompt": 0.15, "completion": 0.60}}


def capture(browser, server, debate_id: str, out: Path) -> Path:
    """Open the finished debate's watch page and save the meter to `out`."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light")
    try:
        page = context.new_page()
        sign_in(page, server, next_path=f"/debates/{debate_id}/")
        page.wait_for_function(
            "() => document.getElementById('debate-view').dataset.status === 'completed'"
            " && document.getElementById('debate-view').dataset.concluding === 'budget'"
            " && !document.getElementById('usage-meter').hidden",
            timeout=WAIT_MS,
        )
        boxes = [page.locator("#usage-meter").bounding_box()]
        left = min(b["x"] for b in boxes) - 8
        top = min(b["y"] for b in boxes) - 8
        right = max(b["x"] + b["width"] for b in boxes) + 8
        bottom = max(b["y"] + b["height"] for b in boxes) + 8
        out.parent.mkdir(parents=True, exist_ok=True)
        clip = {"x": left, "y": top, "width": right - left, "height": bottom - top}
        page.screenshot(path=str(out), clip=clip)
        return out
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    """Start a server and a debate with a budget, and write the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=800, help="the debate's token budget")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "usage-meter.png")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    env = {"OFFLINE_LLM_TOKENS_PER_S": "400", "LLM_PRICES": json.dumps(PRICES)}
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp), **env) as server:
        access = server.token()["access"]
        body = {"asset": "BTC", "maxTurns": 6, "budgetTokens": args.budget}
        status, debate = server.api("POST", "/api/debates/", body, token=access)
        if status != 201:
            print(f"creating the debate failed: {status} {debate}", file=sys.stderr)
            return 1
        status, started = server.api("POST", f"/api/debates/{debate['id']}/start/", token=access)
        if status != 202:
            print(f"starting the debate failed: {status} {started}", file=sys.stderr)
            return 1
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                out = capture(browser, server, debate["id"], args.out)
            finally:
                browser.close()
    width, height = png_size(out)
    print(f"wrote {out} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
