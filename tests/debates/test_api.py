"""The debates REST API: shapes, camelCase, validation, auth and status codes."""

import uuid

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from debates.models import Argument, Debate
from streaming import presence

pytestmark = pytest.mark.django_db

DEBATE_KEYS = {
    "id",
    "asset",
    "status",
    "maxTurns",
    "createdBy",
    "createdAt",
    "startedAt",
    "finishedAt",
    "error",
    "viewerCount",
    "arguments",
    "verdict",
    "market",
    "canControl",
    "pausedAt",
    "conclusionReason",
    "questions",
    "usage",
    "budgetTokens",
    "budgetCost",
}


def test_login_refresh_and_use_the_token(api_client, user):
    resp = api_client.post(
        "/api/auth/token/", {"username": "alice", "password": "s3cret-pass!"}, format="json"
    )
    assert resp.status_code == 200
    tokens = resp.json()
    assert set(tokens) == {"access", "refresh"}

    refreshed = api_client.post(
        "/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    assert "access" in refreshed.json()

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert api_client.get("/api/debates/").status_code == 200


def test_login_with_a_wrong_password_is_401(api_client, user):
    resp = api_client.post(
        "/api/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert resp.status_code == 401


def test_login_without_fields_is_400_with_field_errors(api_client):
    resp = api_client.post("/api/auth/token/", {}, format="json")
    assert resp.status_code == 400
    assert {"username", "password"} <= set(resp.json())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/debates/"),
        ("post", "/api/debates/"),
        ("get", f"/api/debates/{uuid.uuid4()}/"),
    ],
)
def test_no_token_is_401(api_client, method, path):
    resp = getattr(api_client, method)(path)
    assert resp.status_code == 401


def test_a_tampered_token_is_401(api_client, access_token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token[:-2]}xx")
    assert api_client.get("/api/debates/").status_code == 401


def test_a_refresh_token_is_not_an_access_token(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user)}")
    assert api_client.get("/api/debates/").status_code == 401


def test_create_returns_201_in_camel_case(auth_client, user):
    resp = auth_client.post("/api/debates/", {"asset": "btc", "maxTurns": 4}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert set(body) == DEBATE_KEYS
    assert body["asset"] == "BTC"
    assert body["maxTurns"] == 4
    assert body["status"] == "pending"
    assert body["createdBy"] == "alice"
    assert body["arguments"] == []
    assert body["verdict"] is None
    assert body["viewerCount"] == 0
    assert body["startedAt"] is None
    assert Debate.objects.get(pk=body["id"]).created_by == user


def test_create_defaults_to_six_turns(auth_client):
    resp = auth_client.post("/api/debates/", {"asset": "AAPL"}, format="json")
    assert resp.status_code == 201
    assert resp.json()["maxTurns"] == 6


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "asset"),
        ({"asset": ""}, "asset"),
        ({"asset": "BTC USD"}, "asset"),
        ({"asset": "<script>alert(1)</script>"}, "asset"),
        ({"asset": "A" * 16}, "asset"),
        ({"asset": 12}, "asset"),
        ({"asset": ["BTC"]}, "asset"),
        ({"asset": "BTC", "maxTurns": 0}, "maxTurns"),
        ({"asset": "BTC", "maxTurns": 21}, "maxTurns"),
        ({"asset": "BTC", "maxTurns": "many"}, "maxTurns"),
        ({"asset": "BTC", "maxTurns": 2.5}, "maxTurns"),
    ],
)
def test_bad_input_is_400_with_field_errors(auth_client, payload, field):
    resp = auth_client.post("/api/debates/", payload, format="json")
    assert resp.status_code == 400, resp.content
    assert field in resp.json()
    assert not Debate.objects.exists()


def test_malformed_json_is_400(auth_client):
    resp = auth_client.post("/api/debates/", "{not json", content_type="application/json")
    assert resp.status_code == 400
    assert "detail" in resp.json()


def test_a_json_array_body_is_400(auth_client):
    resp = auth_client.post("/api/debates/", [1, 2], format="json")
    assert resp.status_code == 400


def test_detail_returns_arguments_in_order_and_verdict(auth_client, user):
    debate = Debate.objects.create(
        asset="BTC",
        status="completed",
        max_turns=2,
        created_by=user,
        verdict_recommendation="hold",
        verdict_confidence=0.55,
        verdict_rationale="Balanced.",
    )
    Argument.objects.create(debate=debate, turn=2, agent="bear", content="Down.")
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Up.")
    presence.joined(str(debate.id))  # one socket watching, as this process's hub counts it

    resp = auth_client.get(f"/api/debates/{debate.id}/")
    assert resp.status_code == 200
    body = resp.json()
    assert [(a["turn"], a["agent"], a["content"]) for a in body["arguments"]] == [
        (1, "bull", "Up."),
        (2, "bear", "Down."),
    ]
    assert set(body["arguments"][0]) == {
        "turn",
        "agent",
        "content",
        "createdAt",
        "promptTokens",
        "completionTokens",
        "usageEstimated",
        "model",
        "cost",
    }
    assert body["verdict"] == {
        "recommendation": "hold",
        "confidence": 0.55,
        "rationale": "Balanced.",
    }
    assert body["viewerCount"] == 1


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_id_is_404(auth_client, bad_id):
    resp = auth_client.get(f"/api/debates/{bad_id}/")
    assert resp.status_code == 404
    assert "detail" in resp.json()


def test_list_is_paginated_newest_first(auth_client):
    ids = [
        auth_client.post("/api/debates/", {"asset": a}, format="json").json()["id"]
        for a in ("BTC", "ETH", "SOL")
    ]
    page1 = auth_client.get("/api/debates/?pageSize=2").json()
    assert page1["count"] == 3
    assert [d["id"] for d in page1["results"]] == ids[::-1][:2]
    assert page1["next"]
    page2 = auth_client.get(page1["next"]).json()
    assert [d["id"] for d in page2["results"]] == [ids[0]]


def test_list_filters_by_status_and_asset(auth_client):
    Debate.objects.create(asset="BTC", status="running")
    Debate.objects.create(asset="BTC", status="completed")
    Debate.objects.create(asset="ETH", status="running")

    def assets(query: str) -> list[tuple[str, str]]:
        resp = auth_client.get(f"/api/debates/?{query}")
        assert resp.status_code == 200
        return sorted((d["asset"], d["status"]) for d in resp.json()["results"])

    assert assets("status=running") == [("BTC", "running"), ("ETH", "running")]
    assert assets("asset=btc") == [("BTC", "completed"), ("BTC", "running")]
    assert assets("asset=BTC&status=running") == [("BTC", "running")]


def test_list_with_an_unknown_status_is_400(auth_client):
    resp = auth_client.get("/api/debates/?status=exploded")
    assert resp.status_code == 400
    assert "status" in resp.json()


def test_list_with_a_page_past_the_end_is_404(auth_client):
    assert auth_client.get("/api/debates/?page=99").status_code == 404


def test_unsupported_method_is_405(auth_client):
    debate = Debate.objects.create(asset="BTC")
    assert auth_client.delete(f"/api/debates/{debate.id}/").status_code == 405


def test_openapi_schema_and_docs_are_served_to_staff(api_client, staff_user):
    api_client.force_login(staff_user)  # the admin's session (API_DOCS_PUBLIC is off)
    schema = api_client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/debates/" in doc["paths"]
    props = doc["components"]["schemas"]["Debate"]["properties"]
    assert {"maxTurns", "createdAt", "viewerCount"} <= set(props)

    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    # The UI comes from the sidecar package, served locally: no CDN.
    assert "cdn.jsdelivr" not in html
    assert "unpkg" not in html
    # Its start-up script is a file of its own (no inline script under the CSP).
    assert "<script>" not in html
    script = api_client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_unknown_api_path_is_a_json_404(auth_client, settings):
    settings.DEBUG = False
    resp = auth_client.get("/api/no-such-thing/")
    assert resp.status_code == 404
    assert resp.json() == {"detail": "Not found."}


def test_can_control_tells_creator_and_staff_apart(auth_client, api_client, other_user, staff_user):
    debate_id = auth_client.post("/api/debates/", {"asset": "BTC"}, format="json").json()["id"]
    assert auth_client.get(f"/api/debates/{debate_id}/").json()["canControl"] is True

    def seen_by(user) -> bool:
        api_client.force_authenticate(user)
        return api_client.get(f"/api/debates/{debate_id}/").json()["canControl"]

    assert seen_by(other_user) is False
    assert seen_by(staff_user) is True
    api_client.force_authenticate(other_user)
    listed = api_client.get("/api/debates/").json()["results"]
    assert [d["canControl"] for d in listed] == [False]
