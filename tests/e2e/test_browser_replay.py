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


def test_a_share_link_opens_in_a_fresh_context_without_signing_in(browser, page, server, finished):
    # The creator makes a link on the watch page.
    sign_in(page, server, next_path=f"/debates/{finished['id']}/")
    expect(page.locator("#share")).to_be_visible()
    page.locator("#share-create").click()
    expect(page.locator("#share-result")).to_be_visible()
    url = page.locator("#share-url").input_value()
    assert url.startswith(f"{server.base_url}/shared/#")
    token = url.split("#", 1)[1]

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        shared = context.new_page()
        errors = []
        shared.on("pageerror", lambda exc: errors.append(str(exc)))
        shared.goto(url)
        wait_page(shared, f"{VIEW}.dataset.connection === 'ended'", server)
        assert shared.url == url  # never sent to the sign-in page
        expect(shared.locator("#share")).to_be_hidden()
        assert shared.evaluate("sessionStorage.getItem('tradeapp.auth')") is None
        assert shown_arguments(shared) == saved_arguments(finished)
        expect(shared.locator("#debate-asset")).to_have_text("BTC")
        expect(shared.locator("#verdict-summary")).to_be_visible()
        expect(shared.locator("#cancel-debate")).to_be_hidden()

        # It replays too.
        shared.select_option("#replay-speed", "instant")
        shared.locator("#replay-start").click()
        wait_page(
            shared,
            f"{VIEW}.dataset.replay === 'instant' && {VIEW}.dataset.status === 'completed'",
            server,
        )
        assert shown_arguments(shared) == saved_arguments(finished)
        with shared.expect_download() as download:
            shared.locator("#export-json").click()
        exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert exported["debate"]["id"] == finished["id"]

        # The link grants nothing else: no list, no other API.
        statuses = shared.evaluate(
            """async (token) => {
              const get = (path) => fetch(path, { headers: { "X-Share-Token": token } });
              return [(await get('/api/debates/')).status,
                      (await get('/api/shared/debate/')).status];
            }""",
            token,
        )
        assert statuses == [401, 200]

        # The creator revokes it on the watch page: the shared page says so.
        page.locator("#share-revoke").click()
        expect(page.locator("#share-message")).to_contain_text("revoked")
        shared.reload()
        expect(shared.locator("#watch-error")).to_contain_text("not valid")
        assert errors == [], errors
    finally:
        context.close()


def test_a_share_link_watches_a_running_debate_live(browser, server):
    access = server.token()["access"]
    status, debate = server.api("POST", "/api/debates/", {"asset": "ETH", "maxTurns": 4}, access)
    assert status == 201, debate
    status, link = server.api("POST", f"/api/debates/{debate['id']}/share-links/", None, access)
    assert status == 201, link

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        shared = context.new_page()
        errors = []
        shared.on("pageerror", lambda exc: errors.append(str(exc)))
        # Remember whether the page ever showed the debate running, with text still coming.
        shared.add_init_script(
            """window.__live = false;
            new MutationObserver(() => {
              const view = document.getElementById('debate-view');
              if (view && view.dataset.status === 'running'
                  && document.querySelector('.argument[data-complete="false"] .argument__text')
                       ?.textContent.length > 0) window.__live = true;
            }).observe(document, { subtree: true, childList: true, characterData: true,
                                   attributes: true });"""
        )
        shared.goto(f"{server.base_url}{link['path']}")
        wait_page(shared, f"{VIEW}.dataset.connection === 'live'", server)
        status, _ = server.api("POST", f"/api/debates/{debate['id']}/start/", None, access)
        assert status == 202
        wait_page(shared, f"{VIEW}.dataset.connection === 'ended'", server)
        assert shared.evaluate("window.__live") is True
        status, saved = server.api("GET", f"/api/debates/{debate['id']}/", None, access)
        assert saved["status"] == "completed", saved
        assert shown_arguments(shared) == saved_arguments(saved)
        assert errors == [], errors
    finally:
        context.close()
