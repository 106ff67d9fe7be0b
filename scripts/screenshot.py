"""Regenerate the README's pictures, taken with the browser tests' Chromium.

Each scene starts its own daphne on a throwaway SQLite database (tests/e2e/browser.py), sets up
what it shows through the REST API (or `manage.py`), signs in through the form as a person would
and saves a PNG:

    watch         docs/screenshot.png               a finished debate's watch page, market panel
                                                    included (--live: mid-debate, second turn)
    paused        docs/images/paused-debate.png     a debate paused by its creator, with a question
    meter         docs/images/usage-meter.png       the usage meter after a token budget stop
    track-record  docs/images/track-record.png      the track record page on sample verdicts
    votes         docs/images/vote-swing.png        the audience vote before and after, and the
                                                    side that moved the room beside the verdict

    .venv/bin/python scripts/screenshot.py [SCENE ... | all] [--out PATH] [--asset BTC]
        [--turns 4] [--live] [--budget 800] [--count 80]

With no scene it takes `watch`; `--out` needs exactly one scene.
"""

import argparse
import contextlib
import json
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.browser import (  # noqa: E402
    PASSWORD,
    USERNAME,
    launch_chromium,
    live_server,
    sign_in,
)

VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 300_000
VIEW = "document.getElementById('debate-view')"


class SceneError(RuntimeError):
    """A scene could not set up what it shows (an API call failed)."""


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file (raises ValueError when it is not a PNG)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


# --- shared: debates, pages, captures ------------------------------------------------------------


def create_debate(server, body: dict, token: str) -> str:
    """Create a (pending) debate; its id."""
    status, debate = server.api("POST", "/api/debates/", body, token=token)
    if status != 201:
        raise SceneError(f"creating the debate failed: {status} {debate}")
    return debate["id"]


def start(server, debate_id: str, token: str) -> None:
    """Start a pending debate."""
    status, started = server.api("POST", f"/api/debates/{debate_id}/start/", token=token)
    if status != 202:
        raise SceneError(f"starting the debate failed: {status} {started}")


def start_debate(server, body: dict) -> str:
    """Create a debate as the server's user and start it; its id."""
    token = server.token()["access"]
    debate_id = create_debate(server, body, token)
    start(server, debate_id, token)
    return debate_id


@contextlib.contextmanager
def signed_in_page(
    browser, server, path: str, username: str = USERNAME, password: str = PASSWORD
) -> Iterator:
    """A desktop-sized, light page signed in through the form and opened at `path`."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light")
    try:
        page = context.new_page()
        sign_in(page, server, next_path=path, username=username, password=password)
        yield page
    finally:
        context.close()


def wait_for(page, condition: str) -> None:
    """Wait for a JavaScript condition (a function's body: the page's CSP forbids strings)."""
    page.wait_for_function(f"() => {condition}", timeout=WAIT_MS)


def save(page, out: Path, *, full_page: bool = True, around: list[str] | None = None) -> Path:
    """Save the page to `out`: whole, the viewport, or the box around the `around` selectors."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    out.parent.mkdir(parents=True, exist_ok=True)
    if around:
        page.evaluate("window.scrollTo(0, 0)")  # boxes are measured from the viewport's top
        boxes = [page.locator(selector).bounding_box() for selector in around]
        left = min(b["x"] for b in boxes) - 8
        top = min(b["y"] for b in boxes) - 8
        right = max(b["x"] + b["width"] for b in boxes) + 8
        bottom = max(b["y"] + b["height"] for b in boxes) + 8
        clip = {"x": left, "y": top, "width": right - left, "height": bottom - top}
        page.screenshot(path=str(out), clip=clip, full_page=True)
    else:
        page.screenshot(path=str(out), full_page=full_page)
    return out


def wait_until_completed(server, debate_id: str, token: str) -> None:
    """Poll the debate until its run has completed (its verdict is out)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        status, debate = server.api("GET", f"/api/debates/{debate_id}/", token=token)
        if status == 200 and debate["status"] == "completed":
            return
        if status == 200 and debate["status"] in ("failed", "cancelled"):
            raise SceneError(f"the debate ended {debate['status']}")
        time.sleep(0.3)
    raise SceneError("the debate did not complete in time")


# --- the scenes ----------------------------------------------------------------------------------


def capture(browser, server, debate_id: str, out: Path, *, live: bool = False) -> Path:
    """Open the debate's watch page signed in and save a screenshot to `out` (the watch scene)."""
    with signed_in_page(browser, server, f"/debates/{debate_id}/") as page:
        if live:
            wait_for(
                page,
                "document.querySelector('.argument[data-turn=\"2\"]')"
                "?.querySelector('.argument__text').textContent.length > 120",
            )
        else:
            wait_for(
                page,
                f"{VIEW}.dataset.status === 'completed' && {VIEW}.dataset.connection === 'ended'"
                " && !document.getElementById('verdict-summary').hidden",
            )
        # The market panel fills in from the REST API once the run has stored its snapshot.
        wait_for(page, "!document.getElementById('market').hidden")
        return save(page, out, full_page=not live)


def watch(server, browser, args, out: Path) -> Path:
    """A debate run to its verdict (or caught mid-way with --live)."""
    debate_id = start_debate(server, {"asset": args.asset, "maxTurns": args.turns})
    return capture(browser, server, debate_id, out, live=args.live)


QUESTION = "How much of the move is the 50-hour average already pricing in?"


def paused(server, browser, args, out: Path) -> Path:
    """Pause the debate mid-turn from its watch page, ask a question from the Moderate panel."""
    debate_id = start_debate(server, {"asset": args.asset, "maxTurns": 4})
    with signed_in_page(browser, server, f"/debates/{debate_id}/") as page:
        wait_for(
            page,
            "document.querySelector('.argument[data-turn=\"2\"]')"
            "?.querySelector('.argument__text').textContent.length > 80",
        )
        page.get_by_role("button", name="Pause").click()
        wait_for(page, f"{VIEW}.dataset.paused === 'true'")
        page.get_by_label("Ask both sides").fill(QUESTION)
        page.get_by_role("button", name="Ask").click()
        wait_for(page, "document.querySelectorAll('#question-list .question').length === 1")
        wait_for(page, "!document.getElementById('market').hidden")
        return save(page, out)


# The offline model is free: priced like gpt-4o-mini only so the meter shows dollars.
PRICES = {"offline-analyst": {"prompt": 0.15, "completion": 0.60}}


def meter(server, browser, args, out: Path) -> Path:
    """A debate with a token budget run to its verdict; the usage meter alone."""
    body = {"asset": "BTC", "maxTurns": 6, "budgetTokens": args.budget}
    debate_id = start_debate(server, body)
    with signed_in_page(browser, server, f"/debates/{debate_id}/") as page:
        wait_for(
            page,
            f"{VIEW}.dataset.status === 'completed' && {VIEW}.dataset.concluding === 'budget'"
            " && !document.getElementById('usage-meter').hidden",
        )
        return save(page, out, around=["#usage-meter"])


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


def track_record(server, browser, args, out: Path) -> Path:
    """Seeded example verdicts on sample prices, resolved by `manage.py resolve_verdicts` (the
    real scoring path); the whole track record page."""
    server.shell(SEED.format(count=args.count))
    print(server.manage("resolve_verdicts").strip())
    with signed_in_page(browser, server, "/track-record/") as page:
        wait_for(page, "document.body.dataset.trackLoaded === 'true'")
        return save(page, out)


# The audience: (before, after) for each voter. The page's viewer (the debate's creator) keeps
# bull and two bears are won over: before 2 bull / 3 bear (40 % bull), after 4 / 1 (80 %), so
# bull moved the room by 40 points.
VOTERS = {
    USERNAME: (PASSWORD, ("bull", "bull")),
    "ana": ("ana-votes-bull-1", ("bull", "bull")),
    "ben": ("ben-votes-bear-1", ("bear", "bull")),
    "cai": ("cai-votes-bear-1", ("bear", "bull")),
    "dee": ("dee-votes-bear-1", ("bear", "bear")),
}


def cast_votes(server, debate_id: str, tokens: dict[str, str], phase: str) -> None:
    """Every voter's vote in `phase` (before or after), through the REST API."""
    for name, (_, sides) in VOTERS.items():
        side = sides[0 if phase == "before" else 1]
        path = f"/api/debates/{debate_id}/vote/"
        status, body = server.api("POST", path, {"side": side}, token=tokens[name])
        if status != 200 or body.get("phase") != phase:
            raise SceneError(f"{name}'s {phase} vote failed: {status} {body}")


def votes(server, browser, args, out: Path) -> Path:
    """A short debate voted on before it starts and again after its verdict; from the vote panel
    down to the verdict with the swing beside it."""
    for name, (password, _) in VOTERS.items():
        if name != USERNAME:
            server.manage("ensure_demo_user", f"--username={name}", f"--password={password}")
    tokens = {
        name: server.token(name, password)["access"] for name, (password, _) in VOTERS.items()
    }
    owner = tokens[USERNAME]
    debate_id = create_debate(server, {"asset": args.asset, "maxTurns": 2}, owner)
    cast_votes(server, debate_id, tokens, "before")
    start(server, debate_id, owner)
    wait_until_completed(server, debate_id, owner)
    cast_votes(server, debate_id, tokens, "after")
    with signed_in_page(browser, server, f"/debates/{debate_id}/") as page:
        wait_for(
            page,
            f"{VIEW}.dataset.status === 'completed' && {VIEW}.dataset.connection === 'ended'"
            " && !document.getElementById('verdict-swing').hidden"
            " && !document.getElementById('vote-swing').hidden",
        )
        return save(page, out, around=["#votes", "#verdict"])


@dataclass(frozen=True)
class Scene:
    """What a scene shows, where it goes, and the server it needs."""

    run: Callable
    out: Path
    env: dict[str, str] | Callable[[argparse.Namespace], dict[str, str]] = field(
        default_factory=dict
    )

    def server_env(self, args: argparse.Namespace) -> dict[str, str]:
        """The environment of this scene's server."""
        return self.env(args) if callable(self.env) else self.env


IMAGES = ROOT / "docs" / "images"
FAST = {"OFFLINE_LLM_TOKENS_PER_S": "400"}
SCENES = {
    "watch": Scene(
        watch,
        ROOT / "docs" / "screenshot.png",
        lambda args: {"OFFLINE_LLM_TOKENS_PER_S": "60" if args.live else "400"},
    ),
    "paused": Scene(paused, IMAGES / "paused-debate.png", {"OFFLINE_LLM_TOKENS_PER_S": "30"}),
    "meter": Scene(meter, IMAGES / "usage-meter.png", {**FAST, "LLM_PRICES": json.dumps(PRICES)}),
    "track-record": Scene(track_record, IMAGES / "track-record.png"),
    "votes": Scene(
        votes,
        IMAGES / "vote-swing.png",
        {**FAST, "VOTES_TALLY_INTERVAL_MS": "200", "LOGIN_RATE_PER_USERNAME": "1000/minute"},
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The scenes to take (`all` expanded, in order, each once) and their options."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "scenes", nargs="*", metavar="SCENE", help=f"{', '.join(SCENES)} or all (default: watch)"
    )
    parser.add_argument("--out", type=Path, help="where to save the picture (one scene only)")
    parser.add_argument("--asset", default="BTC", help="watch, paused, votes: the debate's asset")
    parser.add_argument("--turns", type=int, default=4, help="watch: the debate's maxTurns")
    parser.add_argument("--live", action="store_true", help="watch: capture mid-debate")
    parser.add_argument("--budget", type=int, default=800, help="meter: the token budget")
    parser.add_argument("--count", type=int, default=80, help="track-record: example verdicts")
    args = parser.parse_args(argv)
    chosen = args.scenes or ["watch"]
    unknown = [name for name in chosen if name != "all" and name not in SCENES]
    if unknown:
        parser.error(f"unknown scene {', '.join(unknown)}; choose from {', '.join(SCENES)}, all")
    names = list(SCENES) if "all" in chosen else chosen
    args.scenes = list(dict.fromkeys(names))
    if args.out and len(args.scenes) != 1:
        parser.error("--out needs exactly one scene")
    return args


def main(argv: list[str] | None = None) -> int:
    """Take each chosen scene on its own server; 1 when one could not be set up."""
    args = parse_args(argv)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for name in args.scenes:
                scene = SCENES[name]
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    live_server(Path(tmp), **scene.server_env(args)) as server,
                ):
                    try:
                        out = scene.run(server, browser, args, args.out or scene.out)
                    except SceneError as exc:
                        print(f"{name}: {exc}", file=sys.stderr)
                        return 1
                width, height = png_size(out)
                print(f"{name}: wrote {out} ({width}x{height})")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
