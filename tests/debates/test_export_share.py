"""Export (JSON, Markdown) and share links over REST: contents, permissions, scope, throttle."""

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from debates.models import Argument, Debate, DebateStatus, ShareLink
from streaming import protocol
from streaming.archive import archive_save

pytestmark = pytest.mark.django_db

BULL = "Earnings beat and the trend is up."
BEAR = "Valuation is stretched; momentum fades."


@pytest.fixture
def finished(user):
    """A completed debate of `user` with two arguments, a verdict and its live archive."""
    now = timezone.now()
    debate = Debate.objects.create(
        asset="AAPL",
        max_turns=1,
        status=DebateStatus.COMPLETED,
        created_by=user,
        started_at=now,
        finished_at=now,
        verdict_recommendation="buy",
        verdict_confidence=0.7,
        verdict_rationale="The bull's numbers held up.",
    )
    Argument.objects.create(debate=debate, turn=1, agent="bull", content=BULL)
    Argument.objects.create(debate=debate, turn=2, agent="bear", content=BEAR)
    events = [
        protocol.event(protocol.STATUS_UPDATE, debate.id, 1, status="running"),
        protocol.event(protocol.TURN_CHANGE, debate.id, 2, currentAgent="bull", turn=1),
        protocol.event(protocol.TOKEN_RECEIVED, debate.id, 3, agent="bull", token=BULL, turn=1),
        protocol.event(protocol.STATUS_UPDATE, debate.id, 4, status="completed"),
    ]
    texts = [(e["payload"]["seq"], protocol.encode(e)) for e in events]
    assert archive_save(debate_id=debate.id, events=texts)
    return debate, texts


def client_of(user=None, share: str | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    if share is not None:
        client.credentials(HTTP_X_SHARE_TOKEN=share)
    return client


# --- export -------------------------------------------------------------------------------------


def test_export_json_has_the_debate_arguments_verdict_and_every_event(finished, other_user):
    debate, texts = finished
    resp = client_of(other_user).get(f"/api/debates/{debate.id}/export/")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/json")
    assert f"debate-aapl-{debate.id}.json" in resp["Content-Disposition"]
    data = resp.json()
    assert data["format"] == "tradeapp.debate-export"
    assert data["version"] == 1
    assert data["eventsSynthesised"] is False
    assert data["debate"]["id"] == str(debate.id)
    assert [(a["turn"], a["agent"], a["content"]) for a in data["debate"]["arguments"]] == [
        (1, "bull", BULL),
        (2, "bear", BEAR),
    ]
    assert data["debate"]["verdict"] == {
        "recommendation": "buy",
        "confidence": 0.7,
        "rationale": "The bull's numbers held up.",
    }
    assert data["events"] == [orjson.loads(text) for _seq, text in texts]


def test_export_markdown_reads_as_a_transcript(finished, user):
    debate, _texts = finished
    for resp in (
        client_of(user).get(f"/api/debates/{debate.id}/export/?format=md"),
        client_of(user).get(f"/api/debates/{debate.id}/export/", HTTP_ACCEPT="text/markdown"),
    ):
        assert resp.status_code == 200
        assert resp["Content-Type"].startswith("text/markdown")
        text = resp.content.decode()
        assert text.startswith("# AAPL debate\n")
        assert f"- **Debate:** {debate.id}" in text
        assert f"### Turn 1 — Bull\n\n{BULL}\n" in text
        assert f"### Turn 2 — Bear\n\n{BEAR}\n" in text
        assert "## Verdict\n\n**BUY**, confidence 70 %\n\nThe bull's numbers held up." in text
        assert "4 events (as streamed)" in text


def test_export_without_an_archive_synthesises_one(finished, user):
    debate, _texts = finished
    debate.event_archive.delete()
    data = client_of(user).get(f"/api/debates/{debate.id}/export/").json()
    assert data["eventsSynthesised"] is True
    types = [e["type"] for e in data["events"]]
    assert types[0] == types[-1] == protocol.STATUS_UPDATE
    assert types.count(protocol.ARGUMENT_COMPLETE) == 2


def test_export_refusals(finished, user, api_client):
    debate, _texts = finished
    client = client_of(user)
    assert client.get(f"/api/debates/{debate.id}/export/?format=xml").status_code == 400
    assert client.get(f"/api/debates/{debate.id}/export/?format=xml").json() == {
        "format": ["Use json or md."]
    }
    assert client.get("/api/debates/not-a-uuid/export/").status_code == 404
    assert api_client.get(f"/api/debates/{debate.id}/export/").status_code == 401
    Debate.objects.filter(pk=debate.pk).update(status=DebateStatus.RUNNING)
    assert client.get(f"/api/debates/{debate.id}/export/").status_code == 409


# --- share links --------------------------------------------------------------------------------


def test_creator_creates_lists_and_revokes_a_share_link(finished, user):
    debate, _texts = finished
    client = client_of(user)
    resp = client.post(f"/api/debates/{debate.id}/share-links/")
    assert resp.status_code == 201
    created = resp.json()
    token = created["token"]
    assert len(token) >= 43
    assert created["path"] == f"/shared/#{token}"
    assert created["active"] is True
    assert created["createdBy"] == "alice"
    link = ShareLink.objects.get(pk=created["id"])
    assert link.token_hash == ShareLink.hash_token(token)
    assert token not in link.token_hash  # only the hash is stored

    listed = client.get(f"/api/debates/{debate.id}/share-links/").json()
    assert [item["id"] for item in listed] == [created["id"]]
    assert "token" not in listed[0]

    shared = client_of(share=token).get("/api/shared/debate/")
    assert shared.status_code == 200
    assert shared.json()["id"] == str(debate.id)
    assert shared.json()["canControl"] is False

    url = f"/api/debates/{debate.id}/share-links/{created['id']}/"
    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 204  # idempotent
    assert client.get(f"/api/debates/{debate.id}/share-links/").json()[0]["active"] is False
    revoked = client_of(share=token).get("/api/shared/debate/")
    assert revoked.status_code == 401
    assert revoked["WWW-Authenticate"] == "Share"


def test_only_the_creator_or_staff_share(finished, other_user, staff_user):
    debate, _texts = finished
    stranger = client_of(other_user)
    assert stranger.post(f"/api/debates/{debate.id}/share-links/").status_code == 403
    assert stranger.get(f"/api/debates/{debate.id}/share-links/").status_code == 403
    staff = client_of(staff_user)
    created = staff.post(f"/api/debates/{debate.id}/share-links/").json()
    url = f"/api/debates/{debate.id}/share-links/{created['id']}/"
    assert stranger.delete(url).status_code == 403
    assert ShareLink.objects.get(pk=created["id"]).is_active
    assert APIClient().post(f"/api/debates/{debate.id}/share-links/").status_code == 401
    other = Debate.objects.create(asset="BTC", created_by=other_user)
    # A link id under another debate's path is no link of that debate.
    assert staff.delete(f"/api/debates/{other.id}/share-links/{created['id']}/").status_code == 404


def test_a_share_token_grants_its_debate_only(finished, user, other_user):
    debate, texts = finished
    token = client_of(user).post(f"/api/debates/{debate.id}/share-links/").json()["token"]
    other = Debate.objects.create(asset="BTC", created_by=other_user)
    shared = client_of(share=token)
    # Read the debate and its export...
    assert shared.get("/api/shared/debate/").json()["id"] == str(debate.id)
    export = shared.get("/api/shared/export/")
    assert export.status_code == 200
    assert len(export.json()["events"]) == len(texts)
    assert shared.get("/api/shared/export/?format=md").content.decode().startswith("# AAPL")
    # ...and nothing else: no list, no other debate, no control, no share links.
    assert shared.get("/api/debates/").status_code == 401
    assert shared.get(f"/api/debates/{debate.id}/").status_code == 401
    assert shared.get(f"/api/debates/{other.id}/").status_code == 401
    assert shared.get(f"/api/debates/{debate.id}/export/").status_code == 401
    assert shared.post(f"/api/debates/{debate.id}/cancel/").status_code == 401
    assert shared.post(f"/api/debates/{other.id}/start/").status_code == 401
    assert shared.post(f"/api/debates/{debate.id}/share-links/").status_code == 401
    assert shared.post("/api/debates/", {"asset": "BTC"}, format="json").status_code == 401
    assert shared.post("/api/shared/debate/").status_code == 405
    # Without a token, or with a wrong one: 401.
    assert APIClient().get("/api/shared/debate/").status_code == 401
    assert client_of(share=token[:-1]).get("/api/shared/debate/").status_code == 401
    assert client_of(share="x" * 500).get("/api/shared/debate/").status_code == 401
    # A JWT is no share token.
    assert client_of(user).get("/api/shared/debate/").status_code == 401


def test_share_requests_are_throttled_per_ip_wrong_tokens_too(finished, user, settings):
    debate, _texts = finished
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "share": "3/minute"},
    }
    token = client_of(user).post(f"/api/debates/{debate.id}/share-links/").json()["token"]
    assert client_of(share="wrong").get("/api/shared/debate/").status_code == 401
    assert client_of(share="wrong").get("/api/shared/debate/").status_code == 401
    assert client_of(share=token).get("/api/shared/debate/").status_code == 200
    throttled = client_of(share=token).get("/api/shared/debate/")
    assert throttled.status_code == 429
    assert "Retry-After" in throttled


# --- admin --------------------------------------------------------------------------------------


def test_admin_creates_shows_once_and_revokes_share_links(client, staff_user, finished):
    debate, _texts = finished
    client.force_login(staff_user)
    resp = client.post(
        "/admin/debates/debate/",
        {"action": "share_debates", "_selected_action": [str(debate.pk)]},
        follow=True,
    )
    assert resp.status_code == 200
    link = ShareLink.objects.get(debate=debate)
    shown = [str(m) for m in resp.context["messages"]]
    token = shown[0].rsplit("/shared/#", 1)[1]
    assert link.token_hash == ShareLink.hash_token(token)

    page = client.get(f"/admin/debates/debate/{debate.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/debates/sharelink/{link.pk}/change/" in page.content.decode()

    listing = client.get("/admin/debates/sharelink/")
    assert listing.status_code == 200
    assert token not in listing.content.decode()
    client.post(
        "/admin/debates/sharelink/",
        {"action": "revoke_links", "_selected_action": [str(link.pk)]},
    )
    link.refresh_from_db()
    assert not link.is_active
    assert client_of(share=token).get("/api/shared/debate/").status_code == 401


def test_an_out_of_range_link_id_is_a_404(finished, user):
    debate, _texts = finished
    url = f"/api/debates/{debate.id}/share-links/{10**30}/"
    assert client_of(user).delete(url).status_code == 404


def test_export_carries_the_debates_usage(finished, user):
    debate, _texts = finished
    data = client_of(user).get(f"/api/debates/{debate.id}/export/").json()
    assert (
        data["debate"]["usage"] == client_of(user).get(f"/api/debates/{debate.id}/").json()["usage"]
    )
    markdown = client_of(user).get(f"/api/debates/{debate.id}/export/?format=md").content
    assert "\n## Usage\n" in markdown.decode()
