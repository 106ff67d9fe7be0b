"""static/js/debate-socket.js in real Chromium, against a scripted WebSocket (no server needed)."""

import json
import time

import pytest
from playwright.sync_api import sync_playwright

from streaming import protocol
from tests.e2e.browser import FAKE_ORIGIN, FAKE_WEBSOCKET_JS, launch_chromium, make_jwt, route_app

pytestmark = pytest.mark.browser

SETUP_JS = """
async (opts) => {
  const mod = await import("/static/js/debate-socket.js");
  window.mod = mod;
  window.access = opts.access;
  window.nextAccess = opts.nextAccess ?? null;
  window.hasCreds = opts.hasCreds ?? true;
  window.refreshes = 0;
  window.text = {};
  window.states = [];
  window.retries = [];
  window.stale = 0;
  const ds = new mod.DebateSocket({
    debateId: "d1",
    getAccessToken: () => window.access,
    refreshAccessToken: async () => {
      window.refreshes += 1;
      if (window.nextAccess) window.access = window.nextAccess;
      return window.nextAccess;
    },
    hasCredentials: () => window.hasCreds,
    baseUrl: "ws://app.test",
    pingIntervalMs: opts.pingIntervalMs ?? 60000,
    minDelayMs: 5,
    maxDelayMs: 40,
    rateLimitedDelayMs: opts.rateLimitedDelayMs ?? 10000,
    endLingerMs: 0,
    WebSocketImpl: FakeWebSocket,
    random: () => 0.5,
  });
  ds.on("token", (p) => {
      const k = `${p.turn}:${p.agent}`;
      window.text[k] = (window.text[k] || "") + p.token;
    })
    .on("argument", (p) => { window.text[`${p.turn}:${p.agent}`] = p.content; })
    .on("state", (d) => window.states.push(d.state))
    .on("retry", (d) => window.retries.push(d.delayMs))
    .on("stale", () => { window.stale += 1; });
  window.ds = ds;
  ds.start();
}
"""


def token_event(seq, turn, agent, token):
    return {
        "type": "DEBATE/TOKEN_RECEIVED",
        "payload": {"debateId": "d1", "agent": agent, "token": token, "turn": turn, "seq": seq},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


def connected(status="running", last_seq=0, reset=False):
    return {
        "type": "DEBATE/CONNECTED",
        "payload": {"debateId": "d1", "status": status, "lastSeq": last_seq, "reset": reset},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


def error_action(code):
    return {
        "type": "DEBATE/ERROR",
        "payload": {"code": code, "message": "Server says no.", "reason": "test"},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


def status_event(seq, status):
    return {
        "type": "DEBATE/STATUS_UPDATE",
        "payload": {"debateId": "d1", "status": status, "seq": seq},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(FAKE_WEBSOCKET_JS)
    route_app(page, {"/harness": "<!doctype html><title>harness</title><p>harness</p>"})
    page.goto(f"{FAKE_ORIGIN}/harness")
    yield page
    context.close()


def valid_token(minutes=15):
    return make_jwt(time.time() + minutes * 60)


def start(page, **opts):
    opts.setdefault("access", valid_token())
    page.evaluate(SETUP_JS, opts)


def socket_count(page, n):
    page.wait_for_function(f"FakeWebSocket.instances.length === {n}")


def ws(page, index, call):
    """Call a method of the index-th fake socket with JSON-able arguments."""
    page.evaluate(f"FakeWebSocket.instances[{index}].{call}")


def send(page, index, action):
    page.evaluate("([i, a]) => FakeWebSocket.instances[i].message(a)", [index, action])


def test_backoff_doubles_with_jitter_and_is_capped(page):
    start(page)
    delays = page.evaluate(
        """() => [0, 1, 2, 3, 4, 10].map((n) => [
            mod.backoffDelay(n, { minMs: 500, maxMs: 15000, random: () => 0 }),
            mod.backoffDelay(n, { minMs: 500, maxMs: 15000, random: () => 0.999999 }),
        ])"""
    )
    assert delays[0] == [250, 500]
    assert delays[1] == [500, 1000]
    assert delays[2] == [1000, 2000]
    assert delays[3] == [2000, 4000]
    assert delays[4] == [4000, 8000]
    assert delays[5] == [7500, 15000]  # capped at maxMs


def test_connects_with_token_then_resumes_with_last_seq_without_repeating_text(page):
    access = valid_token()
    start(page, access=access)
    socket_count(page, 1)
    first = page.evaluate("FakeWebSocket.instances[0].url")
    assert first.startswith("ws://app.test/ws/debate/d1/?")
    assert page.evaluate("FakeWebSocket.instances[0].params.get('token')") == access
    assert page.evaluate("FakeWebSocket.instances[0].params.has('lastSeq')") is False

    ws(page, 0, "open()")
    send(page, 0, connected())
    for seq, token in enumerate(["Rates ", "are ", "falling"], start=1):
        send(page, 0, token_event(seq, 1, "bull", token))
    assert page.evaluate("ds.state") == "live"
    ws(page, 0, "serverClose(1006)")
    socket_count(page, 2)
    assert page.evaluate("FakeWebSocket.instances[1].params.get('lastSeq')") == "3"

    ws(page, 1, "open()")
    send(page, 1, connected(last_seq=4))
    # The server replays an overlap: seq 2 and 3 must not be applied twice.
    send(page, 1, token_event(2, 1, "bull", "are "))
    send(page, 1, token_event(3, 1, "bull", "falling"))
    send(page, 1, token_event(4, 1, "bull", " fast."))
    assert page.evaluate("window.text['1:bull']") == "Rates are falling fast."
    assert page.evaluate("ds.lastSeq") == 4
    assert page.evaluate("window.states") == ["connecting", "live", "reconnecting", "live"]


def test_sequence_gap_triggers_a_resume_from_the_last_applied_seq(page):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    send(page, 0, connected())
    send(page, 0, token_event(1, 1, "bull", "a"))
    send(page, 0, token_event(3, 1, "bull", "c"))  # seq 2 went missing
    socket_count(page, 2)
    assert page.evaluate("FakeWebSocket.instances[0].closedByClient.code") == 4000
    assert page.evaluate("FakeWebSocket.instances[1].params.get('lastSeq')") == "1"
    assert page.evaluate("window.text['1:bull']") == "a"


def test_not_found_stops_retrying(page):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    ws(page, 0, "serverClose(4004, 'not found')")
    assert page.evaluate("ds.state") == "failed"
    assert page.evaluate("ds._retryTimer") is None
    assert page.evaluate("FakeWebSocket.instances.length") == 1


# Closes the client must not retry by itself: an operator's disconnect, too many bad frames.
GIVE_UP = pytest.mark.parametrize(
    "code", [protocol.Close.OPERATOR_DISCONNECT, protocol.Close.POLICY_VIOLATION]
)


@GIVE_UP
def test_operator_disconnect_and_too_many_bad_frames_stop_retrying(page, code):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    send(page, 0, connected())
    send(page, 0, token_event(1, 1, "bull", "a"))
    send(page, 0, error_action(int(code)))
    ws(page, 0, f"serverClose({int(code)}, 'bye')")
    assert page.evaluate("window.states") == ["connecting", "live", "failed"]
    assert page.evaluate("ds.lastClose.code") == code
    assert page.evaluate("ds._retryTimer") is None
    assert page.evaluate("window.retries") == []
    # Coming back online is no reason to reconnect either.
    page.evaluate("window.dispatchEvent(new Event('online'))")
    assert page.evaluate("ds.state") == "failed"
    assert page.evaluate("FakeWebSocket.instances.length") == 1


@GIVE_UP
def test_retry_after_giving_up_resumes_after_the_last_seq(page, code):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    send(page, 0, connected())
    send(page, 0, token_event(1, 1, "bull", "Rates "))
    ws(page, 0, f"serverClose({int(code)})")
    assert page.evaluate("ds.state") == "failed"
    page.evaluate("ds.retry()")
    socket_count(page, 2)
    assert page.evaluate("FakeWebSocket.instances[1].params.get('lastSeq')") == "1"
    ws(page, 1, "open()")
    send(page, 1, connected(last_seq=2))
    send(page, 1, token_event(2, 1, "bull", "fall"))
    assert page.evaluate("ds.state") == "live"
    assert page.evaluate("window.text['1:bull']") == "Rates fall"
    # retry() only acts on a failed client: a live one keeps its socket.
    page.evaluate("ds.retry()")
    assert page.evaluate("FakeWebSocket.instances.length") == 2


def test_protocol_module_is_streaming_protocol(page):
    start(page)
    constants = page.evaluate(
        """async () => {
            const p = await import("/static/js/protocol.js");
            return {
                closeCode: p.CloseCode,
                actionType: p.ActionType,
                finalStatuses: p.FINAL_STATUSES,
                frozen: [p.CloseCode, p.ActionType, p.FINAL_STATUSES].every(Object.isFrozen),
                reexported: mod.CloseCode === p.CloseCode && mod.ActionType === p.ActionType,
                terminal: [...mod.TERMINAL_STATUSES],
            };
        }"""
    )
    assert constants["closeCode"] == {member.name: int(member) for member in protocol.Close}
    assert set(constants["actionType"].values()) == {
        *protocol.SERVER_TYPES,
        *protocol.CLIENT_TYPES,
    }
    assert constants["finalStatuses"] == list(protocol.FINAL_STATUSES)
    assert constants["terminal"] == list(protocol.FINAL_STATUSES)
    assert constants["frozen"] is True
    assert constants["reexported"] is True


def test_unauthorized_refreshes_once_then_reconnects(page):
    start(page, nextAccess=valid_token(30))
    socket_count(page, 1)
    ws(page, 0, "open()")
    ws(page, 0, "serverClose(4001, 'unauthorized')")
    socket_count(page, 2)
    assert page.evaluate("window.refreshes") == 1
    assert page.evaluate("FakeWebSocket.instances[1].params.get('token')") == page.evaluate(
        "window.nextAccess"
    )
    # Refused again before any CONNECTED: the refresh did not help, so give up.
    ws(page, 1, "open()")
    ws(page, 1, "serverClose(4001, 'unauthorized')")
    page.wait_for_function("ds.state === 'failed'")
    assert page.evaluate("window.refreshes") == 1
    assert page.evaluate("FakeWebSocket.instances.length") == 2


def test_unauthorized_with_a_failed_refresh_stops(page):
    start(page, nextAccess=None, hasCreds=False)
    socket_count(page, 1)
    ws(page, 0, "open()")
    ws(page, 0, "serverClose(4001, 'unauthorized')")
    page.wait_for_function("ds.state === 'failed'")
    assert page.evaluate("window.refreshes") == 1
    assert page.evaluate("ds._retryTimer") is None


def test_access_token_near_expiry_is_refreshed_before_connecting(page):
    fresh = valid_token(15)
    start(page, access=make_jwt(time.time() + 5), nextAccess=fresh)
    socket_count(page, 1)
    assert page.evaluate("window.refreshes") == 1
    assert page.evaluate("FakeWebSocket.instances[0].params.get('token')") == fresh


def test_silence_past_the_heartbeat_window_reconnects(page):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    send(page, 0, connected())
    send(page, 0, token_event(1, 1, "bear", "x"))
    # Shorten the heartbeat now, so the watchdog cannot fire before the events above.
    page.evaluate("ds.pingIntervalMs = 40")
    send(page, 0, {"type": "DEBATE/PING", "payload": {}, "timestamp": "2026-01-01T00:00:00Z"})
    # No PING arrives: after 2.5 x 40 ms the client gives the link up and resumes.
    page.wait_for_function("FakeWebSocket.instances.length >= 2")
    assert page.evaluate("window.stale") >= 1
    assert page.evaluate("FakeWebSocket.instances[0].closedByClient.code") == 4000
    assert page.evaluate("FakeWebSocket.instances[1].params.get('lastSeq')") == "1"


def test_rate_limited_waits_at_least_the_rate_limit_delay(page):
    start(page, rateLimitedDelayMs=12345)
    socket_count(page, 1)
    ws(page, 0, "open()")
    ws(page, 0, "serverClose(4029, 'rate limited')")
    assert page.evaluate("window.retries") == [12345]
    assert page.evaluate("ds.state") == "reconnecting"


def test_final_status_ends_the_stream_and_closes_the_socket(page):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    send(page, 0, connected())
    send(page, 0, token_event(1, 1, "bull", "done"))
    send(page, 0, status_event(2, "completed"))
    page.wait_for_function("ds.state === 'ended'")
    assert page.evaluate("FakeWebSocket.instances[0].closedByClient.code") == 1000
    assert page.evaluate("ds._retryTimer") is None


def test_replay_of_a_finished_debate_waits_for_the_announced_last_seq(page):
    start(page)
    socket_count(page, 1)
    ws(page, 0, "open()")
    send(page, 0, connected(status="completed", last_seq=2))
    assert page.evaluate("ds.state") == "live"  # still replaying up to seq 2
    send(page, 0, token_event(1, 1, "bull", "all"))
    send(page, 0, status_event(2, "completed"))
    page.wait_for_function("ds.state === 'ended'")
    assert page.evaluate("window.text['1:bull']") == "all"


# --- static/js/watch.js on the real watch template, against the same scripted WebSocket ----------

WATCH_AUTH_JS = """
sessionStorage.setItem("tradeapp.auth", JSON.stringify({access: %s, refresh: "r", username: "u"}));
window.WebSocket = FakeWebSocket;
"""


def watch_html() -> str:
    from django.template.loader import render_to_string

    return render_to_string(
        "debates/watch.html", {"page": "watch", "debate_id": "d1", "ping_interval_ms": 60000}
    )


def debate_detail(status="running", **extra):
    return {
        "id": "d1",
        "asset": "BTC",
        "status": status,
        "maxTurns": 2,
        "createdBy": "u",
        "viewerCount": 1,
        "arguments": [],
        "verdict": None,
        "market": None,
        "canControl": True,
        "error": "",
        **extra,
    }


@pytest.fixture
def watch(browser):
    """The watch page of debate d1 with canned REST answers and a scripted socket."""
    context = browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.add_init_script(FAKE_WEBSOCKET_JS)
    page.add_init_script(WATCH_AUTH_JS % json.dumps(valid_token()))
    api = {"/api/debates/d1/": debate_detail()}

    def open_page(status="running"):
        route_app(page, {"/debates/d1/": watch_html()}, api)
        page.goto(f"{FAKE_ORIGIN}/debates/d1/")
        socket_count(page, 1)
        ws(page, 0, "open()")
        send(page, 0, connected(status=status))
        page.wait_for_function("window.debateView && window.debateView.socket.state === 'live'")
        return page

    yield api, open_page
    assert page.errors == [], page.errors
    context.close()


def turn_change(seq, turn, agent):
    return {
        "type": "DEBATE/TURN_CHANGE",
        "payload": {"debateId": "d1", "currentAgent": agent, "turn": turn, "seq": seq},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


def argument_complete(seq, turn, agent, content):
    return {
        "type": "DEBATE/ARGUMENT_COMPLETE",
        "payload": {"debateId": "d1", "agent": agent, "content": content, "turn": turn, "seq": seq},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


def shown(page, turn, agent):
    selector = f'.argument[data-turn="{turn}"][data-agent="{agent}"] .argument__text'
    return page.locator(selector).text_content()


def test_turn_change_of_an_unfinished_turn_restarts_its_text(watch):
    _api, open_page = watch
    page = open_page()
    send(page, 0, turn_change(1, 1, "bull"))
    send(page, 0, token_event(2, 1, "bull", "Old "))
    send(page, 0, token_event(3, 1, "bull", "partial"))
    assert shown(page, 1, "bull") == "Old partial"
    # The runner died; another one took over and streams turn 1 again from its start.
    send(page, 0, turn_change(4, 1, "bull"))
    assert shown(page, 1, "bull") == ""
    send(page, 0, token_event(5, 1, "bull", "New "))
    send(page, 0, token_event(6, 1, "bull", "text."))
    assert shown(page, 1, "bull") == "New text."
    send(page, 0, argument_complete(7, 1, "bull", "New text."))
    # A TURN_CHANGE for a turn that is already complete leaves its text alone.
    send(page, 0, turn_change(8, 1, "bull"))
    send(page, 0, turn_change(9, 2, "bear"))
    send(page, 0, token_event(10, 2, "bear", "Bear"))
    assert shown(page, 1, "bull") == "New text."
    assert shown(page, 2, "bear") == "Bear"
    transcript = page.evaluate("window.debateView.transcript()")
    assert transcript[0] == {
        "turn": 1,
        "agent": "bull",
        "content": "New text.",
        "streamed": "New text.",
        "complete": True,
    }
    assert page.locator(".argument").count() == 2


def test_a_reset_replay_replaces_the_transcript_instead_of_being_dropped(watch):
    _api, open_page = watch
    page = open_page()
    for seq, event in enumerate(
        [
            turn_change(1, 1, "bull"),
            token_event(2, 1, "bull", "Old numbering "),
            token_event(3, 1, "bull", "text"),
        ],
        start=1,
    ):
        assert event["payload"]["seq"] == seq
        send(page, 0, event)
    assert shown(page, 1, "bull") == "Old numbering text"
    ws(page, 0, "serverClose(1006)")
    socket_count(page, 2)
    assert page.evaluate("FakeWebSocket.instances[1].params.get('lastSeq')") == "3"
    ws(page, 1, "open()")
    # The server cannot honour lastSeq=3 and replays the finished debate with its own numbering.
    send(page, 1, connected(status="completed", last_seq=4, reset=True))
    send(page, 1, turn_change(1, 1, "bull"))
    send(page, 1, token_event(2, 1, "bull", "Saved argument."))
    send(page, 1, argument_complete(3, 1, "bull", "Saved argument."))
    send(page, 1, status_event(4, "completed"))
    assert shown(page, 1, "bull") == "Saved argument."
    assert page.locator(".argument").count() == 1
    assert page.evaluate("window.debateView.transcript()") == [
        {
            "turn": 1,
            "agent": "bull",
            "content": "Saved argument.",
            "streamed": "Saved argument.",
            "complete": True,
        }
    ]
    assert page.evaluate("window.debateView.socket.lastSeq") == 4


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (protocol.Close.OPERATOR_DISCONNECT, "You were disconnected by an operator."),
        (
            protocol.Close.POLICY_VIOLATION,
            "The server closed the connection after too many invalid messages from this page.",
        ),
    ],
)
def test_watch_page_explains_a_close_it_does_not_retry_and_reconnects_on_request(
    watch, code, message
):
    _api, open_page = watch
    page = open_page()
    send(page, 0, turn_change(1, 1, "bull"))
    send(page, 0, token_event(2, 1, "bull", "Rates "))
    send(page, 0, error_action(int(code)))
    ws(page, 0, f"serverClose({int(code)})")
    assert page.locator("#watch-error").text_content() == message
    assert page.locator("#watch-error").is_visible()
    assert page.locator("#connection-state").text_content() == "disconnected"
    assert page.evaluate("window.debateView.socket.state") == "failed"
    assert page.evaluate("FakeWebSocket.instances.length") == 1

    assert page.locator("#reconnect").is_visible()
    page.get_by_role("button", name="Reconnect").click()
    socket_count(page, 2)
    assert page.evaluate("FakeWebSocket.instances[1].params.get('lastSeq')") == "2"
    assert page.locator("#reconnect").is_hidden()
    ws(page, 1, "open()")
    send(page, 1, connected(last_seq=3))
    send(page, 1, token_event(3, 1, "bull", "fall"))
    assert page.evaluate("window.debateView.socket.state") == "live"
    assert page.locator("#watch-error").is_hidden()
    assert shown(page, 1, "bull") == "Rates fall"


def test_watch_page_offers_no_reconnect_for_a_missing_debate(watch):
    _api, open_page = watch
    page = open_page()
    ws(page, 0, "serverClose(4004)")
    assert page.locator("#watch-error").text_content() == "This debate does not exist."
    assert page.locator("#connection-state").text_content() == "not found"
    assert page.locator("#reconnect").is_hidden()


def test_cancel_button_only_for_those_who_may_cancel(watch):
    api, open_page = watch
    api["/api/debates/d1/"] = debate_detail(canControl=False)
    page = open_page()
    page.wait_for_function("document.getElementById('debate-asset').textContent === 'BTC'")
    assert page.locator("#cancel-debate").is_hidden()


def test_cancel_of_a_finished_debate_shows_the_conflict(watch):
    api, open_page = watch
    api["/api/debates/d1/cancel/"] = (409, {"detail": "Debate is already completed."})
    page = open_page()
    button = page.get_by_role("button", name="Cancel debate")
    button.click()
    message = page.locator("#cancel-message")
    message.wait_for(state="visible")
    assert message.text_content() == "Debate is already completed."
    assert message.get_attribute("role") == "alert"
    assert page.locator("#debate-status").text_content() == "running"


def test_market_panel_appears_when_the_run_starts(watch):
    api, open_page = watch
    api["/api/debates/d1/"] = debate_detail(status="pending")
    page = open_page(status="pending")
    assert page.locator("#market").is_hidden()
    assert page.locator("#cancel-debate").is_visible()
    market = {
        "asset": "BTC",
        "name": "Bitcoin",
        "source": "sample",
        "isSample": True,
        "asOf": "2026-01-01T00:00:00Z",
        "lastPrice": 64123.45,
        "change24hPct": 1.25,
        "change7dPct": -3.5,
        "volatility24hPct": 0.61,
        "rsi14": 72.4,
        "sma20": 63000.0,
        "sma50": 62000.0,
        "priceVsSma20Pct": 1.78,
        "priceVsSma50Pct": 3.43,
        "volumeChange24hPct": -12.3,
        "recentCloses": [63000.0, 63500.5, 63200.0, 64123.45],
    }
    api["/api/debates/d1/"] = debate_detail(status="running", market=market)
    send(page, 0, status_event(1, "running"))
    page.locator("#market").wait_for(state="visible")
    assert page.locator("#market-sample").text_content() == "Sample market data"
    assert page.locator("#market-price").text_content() == "64,123.45"
    assert page.locator("#market-change-24h").text_content() == "+1.25%"
    assert page.locator("#market-change-7d").text_content() == "\u22123.5%"
    assert page.locator("#market-rsi").text_content() == "72.4 overbought"
    assert page.locator("#market-sma50").text_content() == "+3.43%"
    assert page.locator("#market-volatility").text_content() == "0.61%"
    assert page.locator("#market-volume").text_content() == "\u221212.3%"
    label = page.locator("#market-sparkline svg").get_attribute("aria-label")
    assert label == "Last 4 hourly closes, from 63,000 to 64,123.45"
    assert page.locator("#market-sparkline polyline").count() == 1
