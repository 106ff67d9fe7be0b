"""What the server shows, and to whom: a CSP on every page, /metrics and the API schema."""

import re

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.test_settings import run_manage

pytestmark = pytest.mark.django_db

PAGES = [
    "/signin/",
    "/debates/",
    "/debates/5b1c8a9e-1f2e-4c1e-9b9e-111111111111/",
    "/admin/login/",
    "/no-such-page/",
]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_strict_content_security_policy(client, path):
    response = client.get(path)
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, no other origin
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]


@pytest.mark.parametrize("path", PAGES[:3])
def test_the_pages_have_no_inline_script_or_style_the_policy_would_block(client, path):
    body = client.get(path).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body)
    assert " style=" not in body
    assert "<style" not in body
    assert not re.search(r"\son[a-z]+=", body)  # no inline event handlers


def test_the_docs_pages_relax_styles_only(client, staff_user):
    client.force_login(staff_user)
    for path in ["/api/docs/", "/api/redoc/"]:
        response = client.get(path)
        assert response.status_code == 200
        csp = policy(response)
        assert csp["script-src"] == ["'self'"]
        assert "'unsafe-inline'" in csp["style-src"]


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def test_the_schema_is_for_staff_unless_public(api_client, user, staff_user):
    assert api_client.get("/api/schema/").status_code == 401
    assert api_client.get("/api/docs/").status_code == 401
    assert bearer(user).get("/api/schema/").status_code == 403
    assert bearer(staff_user).get("/api/schema/").status_code == 200
    api_client.force_login(staff_user)  # signed in to the admin
    assert api_client.get("/api/redoc/").status_code == 200


def test_api_docs_public_serves_the_schema_to_anyone():
    script = "from django.test import Client; print(Client().get('/api/schema/').status_code)"
    for env in [{"API_DOCS_PUBLIC": "1"}, {"DEBUG": "1"}]:
        out = run_manage("shell", "-c", script, ALLOWED_HOSTS="testserver", **env)
        assert out.stdout.split()[-1:] == ["200"], (env, out.stderr)
    private = run_manage("shell", "-c", script, ALLOWED_HOSTS="testserver", DEBUG="0")
    assert private.stdout.split()[-1:] == ["401"], private.stderr


def test_metrics_answer_loopback_and_the_token_only(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 403
    assert b"ws_" not in refused.content
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    allowed = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789"
    )
    assert allowed.status_code == 200
    assert b"ws_active_connections" in allowed.content
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403


def test_metrics_allowed_networks_and_the_proxys_client(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    settings.WS_TRUSTED_PROXIES = 1
    # Behind a proxy on this host every request comes from loopback: the forwarded client counts.
    outside = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 198.51.100.7"
    )
    assert outside.status_code == 403
