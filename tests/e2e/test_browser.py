"""The web pages in real Chromium against a live daphne: sign in, start, watch, resume, XSS."""

import json
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import launch_chromium, live_server, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LONG = 180_000  # ms: generous waits for a whole debate on a busy two-core machine
VIEW = "document.getElementById('debate-view')"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("browser"),
        OFFLINE_LLM_TOKENS_PER_S="40",
        WS_RATE_LIMIT="1000/minute",
        LOGIN_RATE_PER_USERNAME="1000/minute",  # every test signs in as the same user
    ) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    yield context
    context.close()


@pytest.fixture
def page(context, server):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    assert page.errors == [], page.errors


def start_debate_from_form(page, server, asset="BTC", turns="2") -> str:
    """Fill the new-debate form and return the id of the debate the page goes to."""
    page.get_by_label("Asset").fill(asset)
    page.get_by_label("Turns").fill(turns)
    page.get_by_role("button", name="Start debate").click()
    page.wait_for_url(re.compile(r"/debates/[0-9a-f-]{36}/$"))
    return page.url.rstrip("/").rsplit("/", 1)[1]


# Throws (so the wait fails at once, with the reason) when the debate failed or the page gave up.
GUARD = f"""
    const view = {VIEW};
    if (view.dataset.status === 'failed' || view.dataset.connection === 'failed')
      throw new Error(`debate ${{view.dataset.status}}, connection ${{view.dataset.connection}}: `
        + document.getElementById('watch-error').textContent);
"""


def wait_page(page, condition: str, server=None, allow_failed: bool = False) -> None:
    """Wait for a JS condition on the page; on failure, show the server's log."""
    guard = "" if allow_failed else GUARD
    try:
        page.wait_for_function(
            f"() => {{ {guard} return Boolean({condition}); }}", timeout=LONG, polling=50
        )
    except Exception as exc:
        tail = server.log_tail() if server is not None else ""
        message = f"waiting for {condition!r} failed: {exc}\n--- daphne ---\n{tail}"
        raise AssertionError(message) from exc


def wait_streaming(page, agent: str, server=None) -> None:
    """Wait until an argument of `agent` shows text while it is still being written."""
    wait_page(
        page,
        f"""[...document.querySelectorAll('.argument[data-agent="{agent}"]')].some(
            (el) => el.dataset.complete === 'false' && el.textContent.length > 0)""",
        server,
    )


def wait_status(page, status: str, server=None) -> None:
    wait_page(page, f"{VIEW}.dataset.status === '{status}'", server)


def saved_arguments(server, debate_id: str) -> list[dict]:
    access = server.token()["access"]
    status, data = server.api("GET", f"/api/debates/{debate_id}/", token=access)
    assert status == 200, data
    return data


def page_transcript(page) -> list[dict]:
    return page.evaluate("window.debateView.transcript()")


def assert_page_matches_saved(page, server, debate_id: str) -> dict:
    """Every argument on the page equals the saved one, and its tokens add up to it exactly."""
    saved = saved_arguments(server, debate_id)
    shown = page_transcript(page)
    expected = [(a["turn"], a["agent"], a["content"]) for a in saved["arguments"]]
    assert [(a["turn"], a["agent"], a["content"]) for a in shown] == expected
    for argument in shown:
        assert argument["complete"] is True
        assert argument["streamed"] == argument["content"], f"turn {argument['turn']} tokens"
    # What the person sees: the DOM text of each argument element.
    for turn, agent, content in expected:
        node = page.locator(f'.argument[data-turn="{turn}"][data-agent="{agent}"] .argument__text')
        assert node.text_content() == content
    return saved


# Records, for the whole life of the page, what a person would have seen at some instant: partial
# text in an unfinished argument of each side, and which side was highlighted as speaking. Waiting
# for such an instant instead would race a fast debate (a turn can finish between two polls).
SEEN_JS = """
window.__seen = { partial: {}, speaking: {}, current: {} };
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.argument[data-complete="false"]')) {
    const n = el.querySelector('.argument__text')?.textContent.length || 0;
    const agent = el.dataset.agent;
    window.__seen.partial[agent] = Math.max(window.__seen.partial[agent] || 0, n);
  }
  for (const el of document.querySelectorAll('.side.is-speaking')) {
    window.__seen.speaking[el.dataset.side] = true;
  }
  for (const el of document.querySelectorAll('.argument.is-current[aria-current="step"]')) {
    window.__seen.current[el.dataset.agent] = true;
  }
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
"""


def format_price(value: float) -> str:
    """The watch page's price format: grouping, the API's digits."""
    return f"{value:,.8f}".rstrip("0").rstrip(".")


def test_sign_in_start_and_watch_a_debate_to_its_verdict(page, server):
    page.add_init_script(SEEN_JS)
    sign_in(page, server)
    debate_id = start_debate_from_form(page, server)

    wait_status(page, "completed", server)
    seen = page.evaluate("window.__seen")
    # Tokens appeared in both columns while their arguments were still being written.
    assert seen["partial"].get("bull", 0) > 0, seen
    assert seen["partial"].get("bear", 0) > 0, seen
    assert seen["speaking"] == {"bull": True, "bear": True}, seen
    assert seen["current"].get("bull") is True, seen
    assert seen["current"].get("bear") is True, seen

    expect(page.locator("#debate-status")).to_have_text("completed")
    expect(page.locator("#verdict-summary")).to_be_visible(timeout=LONG)
    expect(page.locator("#verdict-recommendation")).to_have_text(re.compile("^(buy|hold|sell)$"))
    expect(page.locator("#verdict-confidence")).to_have_text(re.compile(r"^\d+%$"))
    expect(page.locator("#connection-state")).to_have_text("ended")
    saved = assert_page_matches_saved(page, server, debate_id)
    assert saved["status"] == "completed"
    assert [a["agent"] for a in saved["arguments"]] == ["bull", "bear", "moderator"]
    expect(page.locator("#verdict-rationale")).to_have_text(saved["verdict"]["rationale"])
    expect(page.locator("#moderator-arguments .argument")).to_have_count(1)

    # The market context the debate was grounded in, as the API returns it.
    market = saved["market"]
    assert market["isSample"] is True
    expect(page.locator("#market")).to_be_visible()
    expect(page.locator("#market-sample")).to_be_visible()
    expect(page.locator("#market-sample")).to_have_text("Sample market data")
    expect(page.locator("#market-price")).to_have_text(format_price(market["lastPrice"]))
    assert float(page.locator("#market-price").get_attribute("data-value")) == market["lastPrice"]
    expect(page.locator("#market-sparkline svg polyline")).to_have_count(1)
    # A finished debate can no longer be cancelled.
    expect(page.locator("#cancel-debate")).to_be_hidden()


def admin_log_in(admin, server) -> None:
    """An operator logs in to the Django admin."""
    admin.goto(f"{server.base_url}/admin/login/?next=/admin/")
    admin.get_by_label("Username").fill("u")
    admin.get_by_label("Password").fill("p-browser-test")
    admin.get_by_role("button", name="Log in").click()
    admin.wait_for_url(re.compile(r"/admin/$"))


def disconnect_viewers_in_admin(admin, server, debate_id: str) -> None:
    """An operator disconnects the debate's live viewers with the admin action."""
    admin.goto(f"{server.base_url}/admin/streaming/viewer/?live=yes&q={debate_id}")
    admin.locator("#action-toggle").check()
    admin.locator("select[name=action]").select_option("disconnect_viewers")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text("disconnect")


def test_operator_disconnect_mid_debate_waits_for_the_viewer_then_resumes_exactly(
    page, context, server
):
    # The operator is logged in beforehand, and the debate has six turns, so that the disconnect
    # lands well inside the debate however slow the machine is.
    admin = context.new_page()
    admin_log_in(admin, server)
    sign_in(page, server)
    debate_id = start_debate_from_form(page, server, asset="ETH", turns="6")
    wait_streaming(page, "bull", server)

    disconnect_viewers_in_admin(admin, server, debate_id)
    admin.close()

    # An operator's disconnect is not undone by the page: it says so and offers a reconnect.
    wait_page(page, f"{VIEW}.dataset.connection === 'failed'", server, allow_failed=True)
    expect(page.locator("#watch-error")).to_have_text("You were disconnected by an operator.")
    socket = "window.debateView.socket"
    assert page.evaluate(f"{socket}.lastClose.code") == 4008
    assert page.evaluate(f"{socket}._retryTimer") is None
    connections = page.evaluate(f"{socket}.connections")

    # The viewer reconnects by hand: the page resumes with lastSeq and goes live again.
    page.get_by_role("button", name="Reconnect").click()
    wait_page(page, f"['live', 'ended'].includes({VIEW}.dataset.connection)", server)
    assert page.evaluate(f"{socket}.connections") > connections
    expect(page.locator("#watch-error")).to_be_hidden()

    wait_status(page, "completed", server)
    expect(page.locator("#verdict-summary")).to_be_visible(timeout=LONG)
    assert_page_matches_saved(page, server, debate_id)


XSS_SCRIPT = "<script>window.__xss = 'script'</script> rates <b>bold</b>"
XSS_IMG = "<img src=x onerror=\"window.__xss='img'\"> & <svg onload=\"window.__xss='svg'\">"
XSS_RATIONALE = "<img src=y onerror=\"window.__xss='rationale'\">"


def create_finished_debate(
    server, arguments: list[tuple[int, str, str]], market: dict | str | None = None
) -> str:
    """A completed debate written straight into the server's database; returns its id.

    `market` is a stored market_context dict, or an asset name for its sample snapshot.
    """
    code = f"""
import asyncio, json
from django.utils import timezone
from debates.engine.market import SampleMarketData
from debates.models import Argument, Debate
rows = json.loads({json.dumps(json.dumps(arguments))})
market = json.loads({json.dumps(json.dumps(market))})
if isinstance(market, str):
    market = asyncio.run(SampleMarketData().snapshot(market)).to_dict()
now = timezone.now()
debate = Debate.objects.create(asset="XSS", max_turns=2, status="completed",
    started_at=now, finished_at=now, verdict_recommendation="hold", verdict_confidence=0.5,
    verdict_rationale={XSS_RATIONALE!r}, market_context=market)
for turn, agent, content in rows:
    Argument.objects.create(debate=debate, turn=turn, agent=agent, content=content)
print(debate.id)
"""
    return server.shell(code).strip().splitlines()[-1]


def test_argument_html_is_shown_as_text_and_never_runs(page, server):
    rows = [(1, "bull", XSS_SCRIPT), (2, "bear", XSS_IMG), (3, "moderator", "Hold. <i>x</i>")]
    market = {"asset": "XSS", "name": XSS_SCRIPT, "source": XSS_IMG, "last_price": 1.5}
    debate_id = create_finished_debate(server, rows, market=market)
    sign_in(page, server, next_path=f"/debates/{debate_id}/")

    wait_status(page, "completed", server)
    expect(page.locator("#connection-state")).to_have_text("ended")
    bull = page.locator('.argument[data-turn="1"][data-agent="bull"] .argument__text')
    bear = page.locator('.argument[data-turn="2"][data-agent="bear"] .argument__text')
    expect(bull).to_have_text(XSS_SCRIPT)
    expect(bear).to_have_text(XSS_IMG)
    assert "<script>" in bull.text_content()
    expect(page.locator("#verdict-rationale")).to_have_text(XSS_RATIONALE)
    expect(page.locator("#market-name")).to_contain_text(XSS_SCRIPT)
    expect(page.locator("#market-source")).to_contain_text(XSS_IMG)
    expect(page.locator("#market-sample")).to_be_hidden()
    assert (
        page.locator(
            "#debate-view script, #debate-view img, #debate-view svg, #debate-view b"
        ).count()
        == 0
    )
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert_page_matches_saved(page, server, debate_id)


def test_phone_screen_stacks_the_columns_and_keyboard_focus_is_visible(browser, server):
    debate_id = create_finished_debate(
        server,
        [(1, "bull", "Up only."), (2, "bear", "Down only."), (3, "moderator", "Hold.")],
        market="BTC",
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        sign_in(page, server, next_path=f"/debates/{debate_id}/")
        wait_status(page, "completed", server)
        bull = page.locator(".side--bull").bounding_box()
        bear = page.locator(".side--bear").bounding_box()
        assert bear["y"] >= bull["y"] + bull["height"], (bull, bear)
        assert bull["width"] <= 390
        assert bear["width"] <= 390
        expect(page.locator("#market-sample")).to_be_visible()
        market = page.locator("#market").bounding_box()
        assert market["x"] >= 0, market
        assert market["x"] + market["width"] <= 390, market
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 390, "no horizontal scrolling on a phone"

        # Landmarks, headings and the live region a screen reader relies on.
        expect(page.get_by_role("main")).to_have_count(1)
        expect(page.get_by_role("banner")).to_have_count(1)
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        expect(page.get_by_role("heading", name="Bull")).to_be_visible()
        expect(page.get_by_role("heading", name="Bear")).to_be_visible()
        expect(page.get_by_role("heading", name=re.compile("^Market context"))).to_be_visible()
        assert page.evaluate("document.documentElement.lang") == "en"
        expect(page.get_by_role("img", name=re.compile("hourly closes"))).to_have_count(1)
        assert page.locator("#current-argument").get_attribute("aria-live") == "polite"

        # The first Tab lands on the skip link, which is visible with a focus outline.
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const el = document.activeElement; const s = getComputedStyle(el);
                return {cls: el.className, outline: s.outlineStyle, width: s.outlineWidth}; }"""
        )
        assert focused["cls"] == "skip-link"
        assert focused["outline"] != "none"
        assert focused["width"] != "0px"
    finally:
        context.close()


def test_field_errors_from_the_api_show_next_to_the_fields(page, server):
    sign_in(page, server)
    page.get_by_label("Asset").fill("not a ticker!")
    page.get_by_label("Turns").fill("99")
    page.get_by_role("button", name="Start debate").click()
    expect(page.locator("#asset-error")).to_be_visible()
    expect(page.locator("#asset-error")).not_to_be_empty()
    expect(page.locator("#maxTurns-error")).to_be_visible()
    expect(page.locator("#maxTurns-error")).to_contain_text("20")
    expect(page.get_by_label("Asset")).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/debates/")


def test_pages_need_sign_in_and_sign_out_forgets_the_tokens(page, server):
    page.goto(f"{server.base_url}/debates/")
    page.wait_for_url(re.compile(r"/signin/\?next="))
    page.get_by_label("Username").fill("u")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_be_visible()

    sign_in(page, server)
    stored = page.evaluate("JSON.parse(sessionStorage.getItem('tradeapp.auth'))")
    assert stored["access"]
    assert stored["refresh"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin/$"))
    assert page.evaluate("sessionStorage.getItem('tradeapp.auth')") is None
    # Signing out revoked the refresh token on the server: a stolen copy is worthless.
    status, _ = server.api("POST", "/api/auth/token/refresh/", {"refresh": stored["refresh"]})
    assert status == 401


# The payloads of issue #12, and their relatives: each would leave the site after signing in.
OFF_SITE_NEXT = [
    "/%5Cevil.invalid/x",
    "/%09/evil.invalid/x",
    "//evil.invalid/x",
    "/%5C%5Cevil.invalid/x",
    "/%0A/evil.invalid/x",
    "https://evil.invalid/x",
    "javascript:alert(document.domain)",
    "%2F%2Fevil.invalid/x",
]


@pytest.mark.parametrize("next_param", OFF_SITE_NEXT)
def test_sign_in_only_ever_redirects_to_a_path_of_this_site(page, server, next_param):
    page.goto(f"{server.base_url}/signin/?next={next_param}")
    page.get_by_label("Username").fill("u")
    page.get_by_label("Password").fill("p-browser-test")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base_url}/debates/")


def test_sign_in_keeps_a_same_site_next_with_its_query(page, server):
    sign_in(page, server, next_path="/debates/?status=running")


def test_unknown_debate_shows_not_found(page, server):
    sign_in(page, server, next_path="/debates/00000000-0000-4000-8000-000000000000/")
    wait_page(page, f"{VIEW}.dataset.connection === 'failed'", server, allow_failed=True)
    expect(page.locator("#connection-state")).to_have_text("not found")
    expect(page.locator("#watch-error")).to_contain_text("does not exist")


def test_screenshot_script_captures_the_watch_page(browser, server, tmp_path):
    from scripts.screenshot import capture, png_size

    debate_id = create_finished_debate(
        server,
        [
            (1, "bull", "Momentum is strong."),
            (2, "bear", "Valuations are stretched."),
            (3, "moderator", "Hold."),
        ],
        market="BTC",
    )
    out = capture(browser, server, debate_id, tmp_path / "shot.png")
    width, height = png_size(out)
    assert width == 1280
    assert height >= 900


def ensure_user(server, username: str, password: str) -> None:
    """A plain (non-staff) user on the server's database."""
    server.shell(
        "from django.contrib.auth import get_user_model\n"
        f"u, _ = get_user_model().objects.get_or_create(username={username!r})\n"
        f"u.is_staff = False\nu.set_password({password!r})\nu.save()\n"
    )


def create_pending_debate(server, asset: str, username: str, password: str) -> str:
    """A pending (not started) debate created through the API by `username`."""
    access = server.token(username, password)["access"]
    status, debate = server.api(
        "POST", "/api/debates/", {"asset": asset, "maxTurns": 2}, token=access
    )
    assert status == 201, debate
    return debate["id"]


def test_only_the_creator_or_staff_can_cancel_from_the_watch_page(browser, server):
    ensure_user(server, "alice", "alice-pass-1")
    ensure_user(server, "bob", "bob-pass-1")
    debate_id = create_pending_debate(server, "SOL", "alice", "alice-pass-1")
    watch = f"/debates/{debate_id}/"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    try:
        # Someone else's debate: no cancel button, and the server refuses anyway.
        bob = context.new_page()
        sign_in(bob, server, next_path=watch, username="bob", password="bob-pass-1")
        wait_page(bob, f"{VIEW}.dataset.connection === 'live'", server)
        expect(bob.locator("#debate-status")).to_have_text("pending")
        expect(bob.locator("#debate-asset")).to_have_text("SOL")
        expect(bob.locator("#cancel-debate")).to_be_hidden()
        bob_access = server.token("bob", "bob-pass-1")["access"]
        status, _ = server.api("POST", f"/api/debates/{debate_id}/cancel/", token=bob_access)
        assert status == 403

        # The creator cancels it (by keyboard): every open page hears the final status and stops.
        alice = context.new_page()
        sign_in(alice, server, next_path=watch, username="alice", password="alice-pass-1")
        wait_page(alice, f"{VIEW}.dataset.connection === 'live'", server)
        alice.get_by_role("button", name="Cancel debate").focus()
        alice.keyboard.press("Enter")
        wait_status(alice, "cancelled", server)
        expect(alice.locator("#cancel-debate")).to_be_hidden()
        expect(alice.locator("#cancel-message")).to_be_hidden()
        expect(alice.locator("#connection-state")).to_have_text("ended")
        wait_status(bob, "cancelled", server)
        expect(bob.locator("#connection-state")).to_have_text("ended")
        expect(bob.locator("#cancel-debate")).to_be_hidden()
        access = server.token("alice", "alice-pass-1")["access"]
        status, saved = server.api("GET", f"/api/debates/{debate_id}/", token=access)
        assert (status, saved["status"]) == (200, "cancelled")
    finally:
        context.close()


def test_list_refreshes_status_and_viewers_by_itself_without_losing_focus(page, context, server):
    debate_id = create_pending_debate(server, "ADA", "u", "p-browser-test")
    watcher = context.new_page()
    sign_in(watcher, server, next_path=f"/debates/{debate_id}/")
    wait_page(watcher, f"{VIEW}.dataset.connection === 'live'", server)

    sign_in(page, server)
    row = page.locator(f'.debate-item[data-debate-id="{debate_id}"]')
    expect(row.locator(".status-badge")).to_have_text("pending")
    expect(row.locator(".viewer-pill")).to_have_text("1 watching")
    page.evaluate("window.__sameDocument = true")
    row.locator(".debate-item__link").focus()

    # Started elsewhere: the list shows it without a reload or a click on Refresh.
    access = server.token()["access"]
    status, body = server.api("POST", f"/api/debates/{debate_id}/start/", token=access)
    assert status == 202, body
    expect(row.locator(".status-badge")).not_to_have_text("pending", timeout=LONG)
    wait_status(watcher, "completed", server)
    expect(watcher.locator("#connection-state")).to_have_text("ended")
    expect(row.locator(".status-badge")).to_have_text("completed", timeout=LONG)
    expect(row.locator(".viewer-pill")).to_have_text("0 watching", timeout=LONG)
    expect(row.locator(".debate-item__turns")).to_have_text("2/2 turns")
    assert page.evaluate("window.__sameDocument") is True
    assert int(page.locator("#debate-list").get_attribute("data-refreshes")) >= 2
    # The periodic refresh updated the row in place: keyboard focus stayed on its link.
    focused = page.evaluate("document.activeElement.closest('.debate-item')?.dataset.debateId")
    assert focused == debate_id
    watcher.close()
