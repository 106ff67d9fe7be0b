"""The moderator's buttons in real Chromium against a live daphne: pause, ask, resume, conclude."""

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import launch_chromium, live_server, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LONG = 180_000  # ms: generous waits on a busy two-core machine, never a timed assertion
VIEW = "document.getElementById('debate-view')"
QUESTION = '<img src=x onerror="window.__xss=1"><b>Bold</b> & the 50-hour average?'
RECORD_TYPES = """() => {
  window.__types = [];
  window.debateView.socket.addEventListener('action', (e) => window.__types.push(e.detail.type));
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("moderation"),
        OFFLINE_LLM_TOKENS_PER_S="20",
        WS_RATE_LIMIT="1000/minute",
        LOGIN_RATE_PER_USERNAME="1000/minute",
    ) as live:
        yield live


def ensure_user(server, username: str, password: str) -> None:
    server.shell(
        "from django.contrib.auth import get_user_model\n"
        f"u, _ = get_user_model().objects.get_or_create(username={username!r})\n"
        f"u.is_staff = False\nu.set_password({password!r})\nu.save()\n"
    )


def wait_page(page, condition: str, server) -> None:
    try:
        page.wait_for_function(f"() => Boolean({condition})", timeout=LONG, polling=50)
    except Exception as exc:
        raise AssertionError(f"waiting for {condition!r}: {exc}\n{server.log_tail()}") from exc


def streamed_chars(page) -> int:
    return page.evaluate(
        "window.debateView.transcript().reduce((n, a) => n + a.streamed.length, 0)"
    )


def test_moderator_pauses_asks_resumes_and_concludes_from_the_watch_page(server):
    ensure_user(server, "alice", "alice-pass-1")
    ensure_user(server, "bob", "bob-pass-1")
    access = server.token("alice", "alice-pass-1")["access"]
    status, debate = server.api("POST", "/api/debates/", {"asset": "BTC", "maxTurns": 6}, access)
    assert status == 201, debate
    watch = f"/debates/{debate['id']}/"

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(60_000)
        errors = []
        try:
            alice, bob = context.new_page(), context.new_page()
            for page, user, password in [
                (alice, "alice", "alice-pass-1"),
                (bob, "bob", "bob-pass-1"),
            ]:
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                sign_in(page, server, next_path=watch, username=user, password=password)
                wait_page(page, f"{VIEW}.dataset.connection === 'live'", server)
            bob.evaluate(RECORD_TYPES)
            assert server.api("POST", f"/api/debates/{debate['id']}/start/", None, access)[0] == 202
            wait_page(
                alice, "window.debateView.transcript().some((a) => a.streamed.length > 0)", server
            )

            # Only the creator (or staff) gets the controls.
            expect(alice.locator("#moderation")).to_be_visible()
            expect(bob.locator("#moderation")).to_be_hidden()

            alice.get_by_role("button", name="Pause").click()
            for page in (alice, bob):
                wait_page(page, f"{VIEW}.dataset.paused === 'true'", server)
                expect(page.locator("#paused-banner")).to_be_visible()
            expect(alice.get_by_role("button", name="Resume")).to_be_visible()
            expect(alice.get_by_role("button", name="Pause")).to_be_hidden()
            at_pause = streamed_chars(bob)

            # A question with markup, asked while paused: everyone sees it, as text.
            alice.get_by_label("Ask both sides").fill(QUESTION)
            alice.get_by_role("button", name="Ask").click()
            for page in (alice, bob):
                item = page.locator("#question-list .question__text")
                expect(item).to_have_text(QUESTION)
                assert page.locator("#question-list img, #question-list b").count() == 0
                assert page.evaluate("window.__xss") is None
            expect(bob.locator("#question-list .question__meta")).to_contain_text("Asked by alice")
            expect(alice.get_by_label("Ask both sides")).to_have_value("")
            assert streamed_chars(bob) == at_pause  # the question came, no token did

            alice.get_by_role("button", name="Resume").click()
            wait_page(bob, f"{VIEW}.dataset.paused === 'false'", server)
            expect(bob.locator("#paused-banner")).to_be_hidden()
            # The next speaker answers the question first.
            wait_page(
                bob,
                "window.debateView.transcript().some((a) => a.complete && "
                'a.content.startsWith("To the moderator\'s question"))',
                server,
            )

            alice.get_by_role("button", name="Conclude now").click()
            expect(bob.locator("#concluding-banner")).to_contain_text("the verdict")
            wait_page(bob, f"{VIEW}.dataset.status === 'completed'", server)
            expect(bob.locator("#verdict-summary")).to_be_visible()
            expect(bob.locator("#question-list .question__meta")).to_contain_text(
                "answered in turn"
            )
            expect(alice.locator("#moderation")).to_be_hidden()
            types = bob.evaluate("window.__types")
        finally:
            context.close()
            browser.close()
    assert errors == []

    paused_at, resumed_at = types.index("DEBATE/PAUSED"), types.index("DEBATE/RESUMED")
    assert "DEBATE/TOKEN_RECEIVED" not in types[paused_at:resumed_at]
    assert "DEBATE/QUESTION" in types[paused_at:resumed_at]
    assert types.count("DEBATE/CONCLUDING") == 1
    status, saved = server.api("GET", f"/api/debates/{debate['id']}/", None, access)
    assert saved["status"] == "completed"
    assert saved["conclusionReason"] == "moderator"
    spoken = [a for a in saved["arguments"] if a["agent"] != "moderator"]
    assert len(spoken) < 6
    assert saved["arguments"][-1]["agent"] == "moderator"
    [question] = saved["questions"]
    assert question["text"] == QUESTION
    answering = [a for a in spoken if a["content"].startswith("To the moderator's question")]
    assert [a["turn"] for a in answering] == [question["answeredInTurn"]]
