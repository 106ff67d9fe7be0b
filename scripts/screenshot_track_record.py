"""Regenerate docs/images/track-record.png: the track record page, taken with the tests' Chromium.

Starts its own daphne on a throwaway SQLite database (tests/e2e/browser.py), records a seeded set
of example verdicts priced on the sample market series over the past weeks, resolves them with
`manage.py resolve_verdicts` (the real scoring path), signs in and saves the page.

    .venv/bin/python scripts/screenshot_track_record.py [--count 80] [--out PATH]
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.screenshot import png_size  # noqa: E402
from tests.e2e.browser import launch_chromium, live_server, sign_in  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}

# Run in `manage.py shell` on the server's database: example verdicts (seeded), each priced on
# the sample series at the time it was given, due 24 hours later.
SEED = """
import asyncio, random
from datetime import timedelta
from django.utils import timezone
from debates.engine.market import SampleMarketData
from debates.models import Debate, DebateStatus, Forecast

rng = random.Random(7)
provider = SampleMarketData()
now = timezone.now().replace(minute=0, second=0, microsecond=0)
for i in range({count}):
    asset = rng.choice(["BTC", "ETH", "SOL", "AAPL", "NVDA"])
    model = rng.choice(["example-model-a", "example-model-b"])
    made = now - timedelta(hours=rng.randint(30, 24 * 21))
    end = made.replace(minute=0)
    price = asyncio.run(provider.price_at(asset, made, series_end=end))
    debate = Debate.objects.create(asset=asset, status=DebateStatus.COMPLETED)
    Forecast.objects.create(
        debate=debate, asset=asset, model=model,
        recommendation=rng.choice(["buy", "buy", "hold", "sell"]),
        confidence=round(rng.uniform(0.35, 0.95), 2), parsed=rng.random() > 0.05,
        made_at=made, horizon_s=86400, due_at=made + timedelta(days=1), price=price,
        priced_at=made, source="sample", is_sample=True, series_end=end,
    )
"""


def main(argv: list[str] | None = None) -> int:
    """Start a server, record and resolve the example verdicts, and write the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=80)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "track-record.png")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp)) as server:
        server.shell(SEED.format(count=args.count))
        print(server.manage("resolve_verdicts").strip())
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                context = browser.new_context(
                    viewport=VIEWPORT, device_scale_factor=1, color_scheme="light"
                )
                page = context.new_page()
                sign_in(page, server, next_path="/track-record/")
                page.wait_for_function("() => document.body.dataset.trackLoaded === 'true'")
                page.evaluate("document.activeElement && document.activeElement.blur()")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
            finally:
                browser.close()
    width, height = png_size(args.out)
    print(f"wrote {args.out} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
