"""The track record page in real Chromium against a live daphne: figures and calibration bins."""

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import launch_chromium, live_server, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Hand-made verdicts, scored by the real service (1 % band). m1 on BTC: buy 0.8 +3 % (right),
# sell 0.6 +1 % (wrong), hold 0.65 +0.5 % (right), one unreadable; m2 on ETH: buy 0.9 -2 % (wrong).
VERDICTS = """
from debates.models import Debate
from tests.debates.forecasts import resolved
right = resolved(103.0, recommendation="buy", confidence=0.8)
resolved(101.0, recommendation="sell", confidence=0.6)
resolved(201.0, recommendation="hold", confidence=0.65, price=200.0)
unread = resolved(90.0, recommendation="hold", confidence=0.0, parsed=False)
Debate.objects.filter(pk=right.pk).update(
    verdict_recommendation="buy", verdict_confidence=0.8, verdict_rationale="Momentum.")
Debate.objects.filter(pk=unread.pk).update(
    verdict_recommendation="hold", verdict_confidence=0.0, verdict_rationale="Unreadable.")
resolved(49.0, recommendation="buy", confidence=0.9, price=50.0, model="m2", asset="ETH")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("track"), LOGIN_RATE_PER_USERNAME="1000/minute"
    ) as live:
        live.shell(VERDICTS)
        yield live


@pytest.fixture
def page(server):
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        context = chromium.new_context(viewport={"width": 1280, "height": 1400})
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            chromium.close()
        assert errors == [], errors


def bars(page, selector: str) -> list[dict]:
    """The chart's bars under `selector`: bin, count, hits, hit rate and drawn height."""
    return page.eval_on_selector_all(
        f"{selector} rect.calibration-chart__bar",
        """(rects) => rects.map((r) => ({
            bin: Number(r.dataset.bin), count: Number(r.dataset.count),
            hits: Number(r.dataset.hits), hitRate: Number(r.dataset.hitRate),
            height: r.getBBox().height, bottom: r.getBBox().y + r.getBBox().height }))""",
    )


def test_the_calibration_chart_draws_the_right_bins(page, server):
    sign_in(page, server, next_path="/debates/")
    page.get_by_role("link", name="See the track record").click()
    page.wait_for_url(f"{server.base_url}/track-record/")
    page.wait_for_function("() => document.body.dataset.trackLoaded === 'true'")
    expect(page.locator("#track-sample")).to_be_visible()  # the sample series priced them

    m1 = '#track-by-model [data-model="m1"]'
    drawn = bars(page, m1)
    assert [(b["bin"], b["count"], b["hits"], b["hitRate"]) for b in drawn] == [
        (6, 2, 1, 0.5),  # 0.6 and 0.65: one right
        (8, 1, 1, 1.0),  # 0.8: right
    ]
    assert drawn[1]["height"] == pytest.approx(2 * drawn[0]["height"])  # 100 % against 50 %
    assert drawn[0]["bottom"] == pytest.approx(drawn[1]["bottom"])  # on one axis
    facts = page.locator(f"{m1} [data-fact]")
    assert dict(
        zip(
            facts.evaluate_all("(nodes) => nodes.map((n) => n.dataset.fact)"),
            facts.all_text_contents(),
            strict=True,
        )
    ) == {
        "resolved": "3",
        "hit-rate": "67%",
        "mean-brier": "0.174",  # (0.04 + 0.36 + 0.1225) / 3
        "pending": "0",
        "unparsed": "1",
    }
    page.locator(f"{m1} .calibration-table summary").click()
    rows = page.locator(f"{m1} .calibration-table tr[data-bin]").evaluate_all(
        "(trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent))"
    )
    dash = "\u2013"
    assert rows == [[f"0.6{dash}0.7", "2", "1", "50%"], [f"0.8{dash}0.9", "1", "1", "100%"]]
    assert [(b["bin"], b["hitRate"]) for b in bars(page, '[data-model="m2"]')] == [(9, 0.0)]
    eth = bars(page, '#track-by-asset [data-asset="ETH"]')
    assert [(b["bin"], b["count"]) for b in eth] == [(9, 1)]
    assert eth[0]["height"] == pytest.approx(1)  # a 0 % bin is a hairline, still visible
    overall = bars(page, "#track-overall")
    assert [(b["bin"], b["count"]) for b in overall] == [(6, 2), (8, 1), (9, 1)]

    # Filtering by model asks the API again and keeps only that model.
    page.get_by_role("textbox", name="Model").fill("m2")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#track-by-model [data-model]")).to_have_count(1)
    expect(page.locator('#track-by-model [data-model="m2"]')).to_be_visible()
    assert [(b["bin"], b["count"]) for b in bars(page, "#track-overall")] == [(9, 1)]


def test_the_watch_page_says_how_the_verdict_turned_out(page, server):
    access = server.token()["access"]
    _, listed = server.api("GET", "/api/debates/?pageSize=50", token=access)
    by_exit = {d["forecast"]["exitPrice"]: d["id"] for d in listed["results"] if d["forecast"]}
    sign_in(page, server, next_path=f"/debates/{by_exit[103.0]}/")
    check = page.locator("#verdict-check")
    expect(check).to_have_attribute("data-outcome", "right")
    expect(check).to_contain_text("+3% since the verdict (sample market data), so it was right")
    expect(check).to_contain_text("Brier score 0.04")
    expect(check.get_by_role("link", name="Track record")).to_have_attribute(
        "href", "/track-record/"
    )
    page.goto(f"{server.base_url}/debates/{by_exit[90.0]}/")
    expect(check).to_have_attribute("data-outcome", "unparsed")
    expect(check).to_contain_text("counts it apart, never as a hold")


def test_the_screenshot_script_captures_the_track_record_page(tmp_path):
    from scripts import screenshot

    out = tmp_path / "track.png"
    assert screenshot.main(["track-record", "--count", "12", "--out", str(out)]) == 0
    width, height = screenshot.png_size(out)
    assert width == 1280
    assert height > 900  # the whole page: per-model and per-asset charts below the fold
