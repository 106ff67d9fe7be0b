"""The replay scrub bar, the export links and a share link, in real Chromium on a live daphne."""

import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import launch_chromium, live_server, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LONG = 180_000
VIEW = "document.getElementById('debate-view')"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("browser-replay"),
        OFFLINE_LLM_TOKENS_PER_S="120",
        WS_RATE_LIMIT="1000/minute",
        LOGIN_RATE_PER_USERNAME="1000/minute",
    ) as live:
        yield live


@pytest.fixture(scope="module")
def finished(server):
    """A debate the offline model ran to its verdict, as the API returns it."""
    access = server.token()["access"]
    status, debate = server.api("POST", "/api/debates/", {"asset": "BTC", "maxTurns": 2}, access)
    assert status == 201, debate
    status, _ = server.api("POST", f"/api/debates/{debate['id']}/start/", None, access)
    assert status == 202
    deadline = time.monotonic() + LONG / 1000
    while time.monotonic() < deadline:
        status, saved = server.api("GET", f"/api/debates/{debate['id']}/", None, access)
        if saved["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert saved["status"] == "completed", saved
    return saved


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(60_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    assert page.errors == [], page.errors


def wait_page(page, condition: str, server) -> None:
    try:
        page.wait_for_function(f"() => Boolean({condition})", timeout=LONG, polling=20)
    except Exception as exc:
        raise AssertionError(f"{condition!r}: {exc}\n--- daphne ---\n{server.log_tail()}") from exc


def shown_arguments(page) -> list[tuple]:
    return [
        (a["turn"], a["agent"], a["content"], a["streamed"])
        for a in page.evaluate("window.debateView.transcript()")
    ]


def saved_arguments(saved: dict) -> list[tuple]:
    return [(a["turn"], a["agent"], a["content"], a["content"]) for a in saved["arguments"]]


def test_scrub_bar_jumps_and_replays_at_the_chosen_speed(page, server, finished):
    sign_in(page, server, next_path=f"/debates/{finished['id']}/")
    wait_page(page, f"{VIEW}.dataset.connection === 'ended'", server)
    expect(page.locator("#replay")).to_be_visible()
    total = int(page.locator("#replay-position").get_attribute("max"))
    assert total > 10
    assert shown_arguments(page) == saved_arguments(finished)

    # Jump to the middle at x2: the page starts over from there, without the verdict...
    middle = total // 2
    page.select_option("#replay-speed", "2")
    page.locator("#replay-position").fill(str(middle))
    wait_page(
        page,
        f"{VIEW}.dataset.replay === '2' && {VIEW}.dataset.status === 'running'"
        f" && Number({VIEW}.dataset.seq) > {middle}",
        server,
    )
    assert page.locator("#verdict").is_hidden()
    assert int(page.locator("#replay-position").get_attribute("max")) == total
    # ...then plays on to the end, where the verdict shows and every argument is whole.
    wait_page(page, f"{VIEW}.dataset.status === 'completed'", server)
    expect(page.locator("#verdict-summary")).to_be_visible()
    assert int(page.evaluate(f"{VIEW}.dataset.seq")) == total
    assert shown_arguments(page) == saved_arguments(finished)
    expect(page.locator("#cancel-debate")).to_be_hidden()

    # Instant from the start: the whole debate at once.
    page.select_option("#replay-speed", "instant")
    page.locator("#replay-position").fill("0")
    wait_page(
        page,
        f"{VIEW}.dataset.replay === 'instant' && {VIEW}.dataset.status === 'completed'"
        f" && Number({VIEW}.dataset.seq) === {total}",
        server,
    )
    assert shown_arguments(page) == saved_arguments(finished)

    # The export links download the debate as JSON and as Markdown.
    with page.expect_download() as download:
        page.locator("#export-json").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert exported["debate"]["id"] == finished["id"]
    assert len(exported["events"]) == total
    with page.expect_download() as download:
        page.locator("#export-md").click()
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# BTC debate")
    assert finished["arguments"][0]["content"] in markdown


def test_a_share_link_opens_in_a_fresh_context_without_signing_in(browser, server, finished):
    access = server.token()["access"]
    status, link = server.api("POST", f"/api/debates/{finished['id']}/share-links/", None, access)
    assert status == 201, link

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.base_url}{link['path']}")
        wait_page(page, f"{VIEW}.dataset.connection === 'ended'", server)
        assert page.url.endswith(link["path"])  # never sent to the sign-in page
        assert page.evaluate("sessionStorage.getItem('tradeapp.auth')") is None
        assert shown_arguments(page) == saved_arguments(finished)
        expect(page.locator("#debate-asset")).to_have_text("BTC")
        expect(page.locator("#verdict-summary")).to_be_visible()
        expect(page.locator("#cancel-debate")).to_be_hidden()

        # It replays too.
        page.select_option("#replay-speed", "instant")
        page.locator("#replay-start").click()
        wait_page(
            page,
            f"{VIEW}.dataset.replay === 'instant' && {VIEW}.dataset.status === 'completed'",
            server,
        )
        assert shown_arguments(page) == saved_arguments(finished)
        with page.expect_download() as download:
            page.locator("#export-json").click()
        exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert exported["debate"]["id"] == finished["id"]

        # The link grants nothing else: no list, no other API.
        statuses = page.evaluate(
            """async (token) => {
              const get = (path) => fetch(path, { headers: { "X-Share-Token": token } });
              return [(await get('/api/debates/')).status,
                      (await get('/api/shared/debate/')).status];
            }""",
            link["token"],
        )
        assert statuses == [401, 200]

        # Revoked: the page says so.
        status, _ = server.api(
            "DELETE", f"/api/debates/{finished['id']}/share-links/{link['id']}/", None, access
        )
        assert status == 204
        page.reload()
        expect(page.locator("#watch-error")).to_contain_text("not valid")
        assert errors == [], errors
    finally:
        context.close()
