"""The usage meter in real Chromium on a live daphne: live readings, totals, the budget stop."""

import json

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import launch_chromium, live_server, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LONG = 120_000
VIEW = "document.getElementById('debate-view')"
# Prompts free, one dollar per completion token: every cost on the page is a whole dollar sum.
PRICES = {"offline-analyst": {"prompt": 0, "completion": 1_000_000}}

# Every total the meter showed while the debate ran, in order, and the concluding banner's text.
READINGS_JS = """
window.__totals = [];
window.__banners = [];
new MutationObserver(() => {
  const view = document.getElementById('debate-view');
  const total = view && view.dataset.totalTokens;
  if (total && window.__totals[window.__totals.length - 1] !== total) window.__totals.push(total);
  const banner = document.getElementById('concluding-banner');
  if (banner && !banner.hidden && !window.__banners.includes(banner.textContent)) {
    window.__banners.push(banner.textContent);
  }
}).observe(document, { subtree: true, attributes: true, childList: true, characterData: true });
"""
BUDGET_BANNER = (
    "The debate's budget was reached: the current argument finishes, then the verdict on what "
    "was said."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("browser-usage"),
        OFFLINE_LLM_TOKENS_PER_S="60",
        USAGE_EVERY_N_TOKENS="5",
        LLM_PRICES=json.dumps(PRICES),
        WS_RATE_LIMIT="1000/minute",
    ) as live:
        yield live


@pytest.fixture
def page(server):
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        browser.close()
        assert errors == [], errors


def dollars(value: float) -> str:
    return f"${value:,.2f}"


def test_the_meter_counts_live_and_shows_the_budget_stop(page, server):
    access = server.token()["access"]
    status, debate = server.api(
        "POST", "/api/debates/", {"asset": "BTC", "maxTurns": 4, "budgetTokens": 1}, access
    )
    assert status == 201, debate
    page.add_init_script(READINGS_JS)
    sign_in(page, server, next_path=f"/debates/{debate['id']}/")
    page.wait_for_function(f"() => {VIEW}.dataset.connection === 'live'", timeout=LONG)
    status, body = server.api("POST", f"/api/debates/{debate['id']}/start/", None, access)
    assert status == 202, body
    page.wait_for_function(f"() => {VIEW}.dataset.status === 'completed'", timeout=LONG, polling=50)

    # The viewer was told why the debate stopped early while it did, and the verdict is there.
    assert page.evaluate("window.__banners") == [BUDGET_BANNER]
    expect(page.locator("#debate-view")).to_have_attribute("data-concluding", "budget")
    expect(page.locator("#verdict-summary")).to_be_visible(timeout=LONG)
    expect(page.locator("#meter-budget")).to_have_text("Budget 1 tokens")

    # The meter ends on the saved totals, per agent and in total.
    status, saved = server.api("GET", f"/api/debates/{debate['id']}/", None, access)
    assert status == 200
    assert saved["conclusionReason"] == "budget"
    assert [a["agent"] for a in saved["arguments"]] == ["bull", "moderator"]
    usage = saved["usage"]
    meter = page.locator("#usage-meter")
    expect(meter).to_be_visible()
    for row in ("bull", "bear", "moderator", "total"):
        tally = usage["total"] if row == "total" else usage["perAgent"][row]
        cells = meter.locator(f'tr[data-row="{row}"] td')
        expect(cells.nth(0)).to_have_text(f"{tally['promptTokens']:,}")
        expect(cells.nth(1)).to_have_text(f"{tally['completionTokens']:,}")
        # One dollar per completion token.
        assert tally["cost"] == tally["completionTokens"]
        expect(cells.nth(2)).to_have_text(dollars(tally["cost"]))
    expect(page.locator("#meter-estimated")).to_be_hidden()

    # It counted while the bull was writing: readings every 5 tokens, rising, before the end.
    totals = [int(t) for t in page.evaluate("window.__totals")]
    assert totals[:3] == [0, 5, 10], totals  # nothing yet (REST), then the first live readings
    assert totals == sorted(totals), totals
    assert totals[-1] == usage["total"]["promptTokens"] + usage["total"]["completionTokens"]

    # The list page shows each debate's total.
    page.goto(f"{server.base_url}/debates/")
    item = page.locator(f'.debate-item[data-debate-id="{debate["id"]}"] .debate-item__usage')
    tokens = usage["total"]["promptTokens"] + usage["total"]["completionTokens"]
    expect(item).to_have_text(f"{tokens:,} tokens · {dollars(usage['total']['cost'])}")


def test_a_token_budget_from_the_new_debate_form(page, server):
    sign_in(page, server)
    page.get_by_label("Asset").fill("ETH")
    page.get_by_label("Turns").fill("4")
    page.get_by_label("Token budget").fill("0")
    page.get_by_role("button", name="Start debate").click()
    error = page.locator("#budgetTokens-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("greater than or equal to 1")
    expect(page.get_by_label("Token budget")).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/debates/")

    page.get_by_label("Token budget").fill("5")
    page.get_by_role("button", name="Start debate").click()
    page.wait_for_url(f"{server.base_url}/debates/*/")
    page.wait_for_function(f"() => {VIEW}.dataset.status === 'completed'", timeout=LONG, polling=50)
    expect(page.locator("#debate-view")).to_have_attribute("data-concluding", "budget")
    expect(page.locator("#meter-budget")).to_have_text("Budget 5 tokens")
    expect(page.locator("#moderator-arguments .argument")).to_have_count(1)
    expect(page.locator("#bull-arguments .argument")).to_have_count(1)
    expect(page.locator("#bear-arguments .argument")).to_have_count(0)
