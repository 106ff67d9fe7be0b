"""Regenerate docs/images/paused-debate.png: a paused debate with a moderator's question.

Starts its own daphne on a throwaway SQLite database (tests/e2e/browser.py), starts a debate
through the REST API, opens its watch page as its creator, and once the second turn is being
written pauses it and asks a question from the page's Moderate panel, then saves the screenshot.

    .venv/bin/python scripts/screenshot_moderation.py [--asset BTC] [--out PATH]
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.browser import launch_chromium, live_server, sign_in  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 300_000
QUESTION = "How much of the move is the 50-hour average already pricing in?"


def capture(browser, server, debate_id: str, out: Path) -> Path:
    """Pause the debate mid-turn from its watch page, ask a question, save a screenshot."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light")
    try:
        page = context.new_page()
        sign_in(page, server, next_path=f"/debates/{debate_id}/")
        page.wait_for_function(
            "() => document.querySelector('.argument[data-turn=\"2\"]')"
            "?.querySelector('.argument__text').textContent.length > 80",
            timeout=WAIT_MS,
        )
        page.get_by_role("button", name="Pause").click()
        page.wait_for_function(
            "() => document.getElementById('debate-view').dataset.paused === 'true'",
            timeout=WAIT_MS,
        )
        page.get_by_label("Ask both sides").fill(QUESTION)
        page.get_by_role("button", name="Ask").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#question-list .question').length === 1",
            timeout=WAIT_MS,
        )
        page.wait_for_function("() => !document.getElementById('market').hidden", timeout=WAIT_MS)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        return out
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    """Start a server and a debate, and write the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asset", default="BTC")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "paused-debate.png")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(Path(tmp), OFFLINE_LLM_TOKENS_PER_S="30") as server,
    ):
        access = server.token()["access"]
        status, debate = server.api(
            "POST", "/api/debates/", {"asset": args.asset, "maxTurns": 4}, token=access
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
                out = capture(browser, server, debate["id"], args.out)
            finally:
                browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
