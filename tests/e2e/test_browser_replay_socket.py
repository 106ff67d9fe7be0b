"""debate-socket.js's replay and share-link options in real Chromium, against a scripted socket."""

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.browser import FAKE_ORIGIN, FAKE_WEBSOCKET_JS, launch_chromium, route_app

pytestmark = pytest.mark.browser

SETUP_JS = """
async (opts) => {
  const mod = await import("/static/js/debate-socket.js");
  window.refreshes = 0;
  window.states = [];
  const ds = new mod.DebateSocket({
    debateId: "d1",
    getAccessToken: () => null,
    refreshAccessToken: async () => { window.refreshes += 1; return null; },
    hasCredentials: () => false,
    baseUrl: "ws://app.test",
    minDelayMs: 5,
    maxDelayMs: 40,
    endLingerMs: 0,
    WebSocketImpl: FakeWebSocket,
    random: () => 0.5,
    shareToken: opts.shareToken,
    params: opts.params,
  });
  ds.on("state", (d) => window.states.push([d.state, d.code ?? null]));
  window.ds = ds;
  ds.start();
}
"""


def event(seq: int) -> dict:
    return {
        "type": "DEBATE/TURN_CHANGE",
        "payload": {"debateId": "d1", "currentAgent": "bull", "turn": seq, "seq": seq},
        "timestamp": "2026-01-01T00:00:00.000Z",
    }


CONNECTED = {
    "type": "DEBATE/CONNECTED",
    "payload": {
        "debateId": "d1",
        "status": "completed",
        "lastSeq": 5,
        "reset": False,
        "replay": {"speed": "10", "at": 0},
    },
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


def params(page, index: int) -> dict:
    return page.evaluate("(i) => Object.fromEntries(FakeWebSocket.instances[i].params)", index)


def test_a_share_replay_socket_sends_its_token_and_resumes_inside_the_replay(page):
    page.evaluate(
        SETUP_JS,
        {"shareToken": "s3cr3t-share", "params": {"replay": "1", "speed": "10", "at": "0"}},
    )
    page.wait_for_function("FakeWebSocket.instances.length === 1")
    assert params(page, 0) == {"share": "s3cr3t-share", "replay": "1", "speed": "10", "at": "0"}
    page.evaluate("FakeWebSocket.instances[0].open()")
    page.evaluate("(a) => FakeWebSocket.instances[0].message(a)", CONNECTED)
    for seq in (1, 2):
        page.evaluate("(a) => FakeWebSocket.instances[0].message(a)", event(seq))
    # Not over before the replay's last seq, though the debate's status is final.
    assert page.evaluate("window.ds.state") == "live"
    page.evaluate("FakeWebSocket.instances[0].serverClose(1006)")
    page.wait_for_function("FakeWebSocket.instances.length === 2")
    assert params(page, 1) == {
        "share": "s3cr3t-share",
        "replay": "1",
        "speed": "10",
        "at": "0",
        "lastSeq": "2",
    }
    assert page.evaluate("window.refreshes") == 0  # a share token is never refreshed


def test_a_revoked_share_link_gives_up(page):
    page.evaluate(SETUP_JS, {"shareToken": "s3cr3t-share", "params": {}})
    page.wait_for_function("FakeWebSocket.instances.length === 1")
    page.evaluate("FakeWebSocket.instances[0].open()")
    page.evaluate("FakeWebSocket.instances[0].serverClose(4001)")
    page.wait_for_function("window.ds.state === 'failed'")
    assert page.evaluate("FakeWebSocket.instances.length") == 1
    assert page.evaluate("window.states.at(-1)") == ["failed", 4001]
