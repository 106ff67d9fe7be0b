"""Regenerate docs/screenshot.png: a debate's watch page, taken with the browser tests' Chromium.

Starts its own daphne on a throwaway SQLite database (tests/e2e/browser.py), signs in, starts a
debate through the REST API, opens its watch page and saves a desktop-sized screenshot once the
debate has finished (or, with --live, while the second turn is streaming), market panel included.

    .venv/bin/python scripts/screenshot.py [--asset BTC] [--turns 4] [--live] [--out PATH]
"""

import argparse
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.browser import launch_chromium, live_server, sign_in  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 300_000


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file (raises ValueError when it is not a PNG)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def capture(browser, server, debate_id: str, out: Path, *, live: bool = False) -> Path:
    """Open the debate's watch page signed in and save a screenshot to `out`."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light")
    try:
        page = context.new_page()
        sign_in(page, server, next_path=f"/debates/{debate_id}/")
        view = "document.getElementById('debate-view')"
        if live:
            page.wait_for_function(
                "() => document.querySelector('.argument[data-turn=\"2\"]')"
                "?.querySelector('.argument__text').textContent.length > 120",
                timeout=WAIT_MS,
            )
        else:
            page.wait_for_function(
                # Functions, not expressions: the page's CSP forbids evaluating strings.
                f"() => {view}.dataset.status === 'completed'"
                f" && {view}.dataset.connection === 'ended'"
                " && !document.getElementById('verdict-summary').hidden",
                timeout=WAIT_MS,
            )
        # The market panel fills in from the REST API once the run has stored its snapshot.
        page.wait_for_function("() => !document.getElementById('market').hidden", timeout=WAIT_MS)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=not live)
        return out
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    """Start a server and a debate, and write the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asset", default="BTC")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--live", action="store_true", help="capture mid-debate, not at the end")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(Path(tmp), OFFLINE_LLM_TOKENS_PER_S="60" if args.live else "400") as server,
    ):
        access = server.token()["access"]
        status, debate = server.api(
            "POST", "/api/debates/", {"asset": args.asset, "maxTurns": args.turns}, token=access
        )
        if status != 201:
            print(f"creating the debate failed: {status} {debate}", file=sys.stderr)
            return 1
        status, body = server.api("POST", f"/api/debates/{debate['id']}/start/", token=access)
        if status != 202:
            print(f"starting the debate failed: {status} {body}", file=sys.stderr)
            return 1
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                out = capture(browser, server, debate["id"], args.out, live=args.live)
            finally:
                browser.close()
    width, height = png_size(out)
    print(f"wrote {out} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
