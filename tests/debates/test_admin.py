"""The Django admin pages render for staff and show the live figures."""

from decimal import Decimal

import pytest
from django.utils import timezone

from debates.models import Argument, Debate
from streaming import presence
from streaming.models import Viewer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def debate(user):
    debate = Debate.objects.create(asset="BTC", status="running", max_turns=4, created_by=user)
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Momentum is strong.")
    Viewer.objects.create(debate=debate, client_ip="127.0.0.1")
    Viewer.objects.create(debate=debate, client_ip="127.0.0.2")
    Viewer.objects.create(debate=debate, disconnected_at=timezone.now())
    for _ in range(2):  # the two open sockets, as this process's hub counts them
        presence.joined(str(debate.id))
    return debate


def test_debate_changelist_shows_turns_and_live_viewers(admin_client_logged_in, debate):
    resp = admin_client_logged_in.get("/admin/debates/debate/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "BTC" in html
    assert "1/4" in html
    assert '<td class="field-live_viewers">2</td>' in html


def test_debate_changelist_filters_and_search(admin_client_logged_in, debate):
    Debate.objects.create(asset="ETH", status="completed")
    resp = admin_client_logged_in.get("/admin/debates/debate/?status__exact=completed")
    assert resp.status_code == 200
    assert "ETH" in resp.content.decode()
    assert "1/4" not in resp.content.decode()
    resp = admin_client_logged_in.get("/admin/debates/debate/?q=btc")
    assert "1/4" in resp.content.decode()


def test_debate_change_page_shows_arguments_read_only(admin_client_logged_in, debate):
    resp = admin_client_logged_in.get(f"/admin/debates/debate/{debate.id}/change/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "Momentum is strong." in html
    assert 'name="arguments-0-content"' not in html


def test_debate_add_page_renders(admin_client_logged_in):
    assert admin_client_logged_in.get("/admin/debates/debate/add/").status_code == 200


def test_viewer_live_only_filter(admin_client_logged_in, debate):
    resp = admin_client_logged_in.get("/admin/streaming/viewer/?live=yes")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "127.0.0.1" in html
    assert "127.0.0.2" in html
    assert "2 viewers" in html


def test_admin_refuses_anonymous_users(client):
    resp = client.get("/admin/debates/debate/")
    assert resp.status_code == 302
    assert "/admin/login/" in resp["Location"]


def test_debate_changelist_shows_tokens_and_cost(admin_client_logged_in, user):
    priced = Debate.objects.create(asset="BTC", status="completed", max_turns=2, created_by=user)
    for turn, cost in ((1, "0.0012"), (2, "0.0003")):
        Argument.objects.create(
            debate=priced,
            turn=turn,
            agent="bull" if turn == 1 else "bear",
            content="x",
            prompt_tokens=100 * turn,
            completion_tokens=10 * turn,
            model="m",
            cost=Decimal(cost),
        )
    unpriced = Debate.objects.create(asset="ETH", status="completed", max_turns=2, created_by=user)
    Argument.objects.create(
        debate=unpriced,
        turn=1,
        agent="bull",
        content="x",
        prompt_tokens=5,
        completion_tokens=5,
        model="unknown-model",
        cost=None,
    )
    html = admin_client_logged_in.get("/admin/debates/debate/").content.decode()
    # 100 + 10 + 200 + 20 tokens; 0.0012 + 0.0003 dollars.
    assert '<td class="field-tokens">330</td>' in html
    assert '<td class="field-cost">0.001500</td>' in html
    assert '<td class="field-tokens">10</td>' in html
    assert '<td class="field-cost">unknown</td>' in html
