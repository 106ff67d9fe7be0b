"""Audience votes in real Chromium: vote before, see another viewer's vote live, vote after the
verdict, and read the swing beside the verdict and on the list."""

import subprocess
import sys

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import launch_chromium, live_server, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

VIEW = "document.getElementById('debate-view')"
VOTERS = {"alice": "alice-pass-1", "bob": "bob-pass-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(
        tmp_path_factory.mktemp("browser-votes"),
        VOTES_TALLY_INTERVAL_MS="200",
        LOGIN_RATE_PER_USERNAME="1000/minute",
    ) as live:
        live.shell(
            "from django.contrib.auth import get_user_model\n"
            + "".join(
                f"get_user_model().objects.create_user({name!r}, password={password!r})\n"
                for name, password in VOTERS.items()
            )
        )
        yield live


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def _page(context, server, name: str, path: str):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    sign_in(page, server, next_path=path, username=name, password=VOTERS[name])
    page.wait_for_function(f"() => {VIEW}.dataset.connection === 'live'")
    return page


def _finish_with_a_verdict(server, debate_id: str) -> None:
    """The debate ends as a run would leave it: two arguments and the moderator's verdict."""
    server.shell(
        "from django.utils import timezone\n"
        "from debates.models import Argument, Debate\n"
        f"d = Debate.objects.get(pk={debate_id!r})\n"
        "Argument.objects.create(debate=d, turn=1, agent='bull', content='Up.')\n"
        "Argument.objects.create(debate=d, turn=2, agent='bear', content='Down.')\n"
        "Argument.objects.create(debate=d, turn=3, agent='moderator', content='Buy.')\n"
        "Debate.objects.filter(pk=d.pk).update(status='completed', started_at=timezone.now(),\n"
        "    finished_at=timezone.now(), verdict_recommendation='buy', verdict_confidence=0.6,\n"
        "    verdict_rationale='Momentum wins.')\n"
    )


def test_vote_before_and_after_and_see_the_swing(browser, server):
    access = server.token()["access"]
    status, debate = server.api("POST", "/api/debates/", {"asset": "BTC"}, token=access)
    assert status == 201, debate
    watch = f"/debates/{debate['id']}/"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    try:
        alice = _page(context, server, "alice", watch)
        bob = _page(context, server, "bob", watch)
        bob.evaluate(
            "window.__tallies = []; window.debateView.socket.on('votes', (p) => "
            "window.__tallies.push(p))"
        )
        expect(alice.locator("#vote-prompt")).to_contain_text("Before the debate")

        # Alice votes bull: her tally at once, Bob's page hears it over the socket.
        alice.get_by_role("button", name="▲ Bull").click()
        expect(alice.locator('[data-tally="before-bull"]')).to_have_text("1 (100%)")
        expect(alice.get_by_role("button", name="▲ Bull")).to_have_attribute("aria-pressed", "true")
        bob.wait_for_function("() => window.__tallies.some((p) => p.before.bull === 1)")
        expect(bob.locator('[data-tally="before-bull"]')).to_have_text("1 (100%)")

        # Bob votes bear; a second click on the same side counts once.
        bob.get_by_role("button", name="▼ Bear").click()
        expect(bob.locator("#vote-message")).to_have_text("Your before vote: Bear.")
        bob.get_by_role("button", name="▼ Bear").click()
        expect(bob.locator('[data-tally="before-bear"]')).to_have_text("1 (50%)")
        expect(alice.locator('[data-tally="before-bear"]')).to_have_text("1 (50%)")
        expect(alice.locator("#vote-swing")).to_be_hidden()

        # The verdict is out: both vote again (after), Bob changes sides to bull.
        _finish_with_a_verdict(server, debate["id"])
        for page in (alice, bob):
            page.reload()
            page.wait_for_function(f"() => {VIEW}.dataset.status === 'completed'")
            expect(page.locator("#vote-prompt")).to_contain_text("After the verdict")
        alice.get_by_role("button", name="▲ Bull").click()
        expect(alice.locator('[data-tally="after-bull"]')).to_have_text("1 (100%)")
        bob.get_by_role("button", name="▲ Bull").click()
        expect(bob.locator('[data-tally="after-bull"]')).to_have_text("2 (100%)")

        # Before 50/50, after 100/0: bull gained 50 points and moved the room.
        expect(bob.locator("#vote-swing")).to_have_text("Moved the room: Bull +50 pts")
        expect(bob.locator("#verdict-swing")).to_have_text("Moved the room: Bull +50 pts")
        alice.reload()
        expect(alice.locator("#verdict-swing")).to_have_text("Moved the room: Bull +50 pts")
        expect(alice.get_by_role("button", name="▲ Bull")).to_have_attribute("aria-pressed", "true")

        # The list shows each debate's swing.
        alice.goto(f"{server.base_url}/debates/")
        row = alice.locator(f'.debate-item[data-debate-id="{debate["id"]}"]')
        expect(row.locator(".swing")).to_have_text("Moved the room: Bull +50 pts")

        status, saved = server.api("GET", f"/api/debates/{debate['id']}/", token=access)
        assert status == 200
        assert saved["votes"]["before"] == {"bull": 1, "bear": 1}
        assert saved["votes"]["after"] == {"bull": 2, "bear": 0}
        assert saved["votes"]["movedTo"] == "bull"
        for page in (alice, bob):
            assert page.errors == [], page.errors
    finally:
        context.close()


def test_the_screenshot_script_captures_the_vote_swing(tmp_path):
    # Its own process: this module's browser fixture already runs Playwright in this thread.
    from scripts.screenshot import ROOT, png_size

    out = tmp_path / "votes.png"
    command = [sys.executable, "scripts/screenshot.py", "votes", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "votes: wrote" in done.stdout
    width, height = png_size(out)
    assert width > 1000  # the vote panel down to the verdict, across the page
    assert height > 600
