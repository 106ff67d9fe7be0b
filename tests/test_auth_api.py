"""The token endpoints: throttled sign-in, rotating refresh tokens, revoking sign-out, and
hostile bodies answered with 4xx."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-pass!"  # the `user` fixture's


@pytest.fixture
def login_rates(settings):
    """Small rates; the DRF throttles read them when each request is checked."""
    rates = {"login_ip": "4/minute", "login_username": "3/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    return rates


def login(client, username, password, ip="10.0.0.1"):
    body = {"username": username, "password": password}
    return client.post("/api/auth/token/", body, format="json", REMOTE_ADDR=ip)


def test_wrong_passwords_for_one_username_are_throttled_from_any_ip(login_rates, user):
    client = APIClient()
    answers = [login(client, "alice", "wrong", ip=f"10.0.1.{i}").status_code for i in range(3)]
    assert answers == [401, 401, 401]
    refused = login(client, "alice", PASSWORD, ip="10.0.1.99")  # even the right one, for now
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert login(client, "bob", "wrong", ip="10.0.1.98").status_code == 401  # others unaffected


def test_one_ip_is_throttled_across_usernames(login_rates, user):
    client = APIClient()
    answers = [login(client, f"user{i}", "wrong", ip="10.0.2.1").status_code for i in range(4)]
    assert answers == [401] * 4
    assert login(client, "alice", PASSWORD, ip="10.0.2.1").status_code == 429
    assert login(client, "alice", PASSWORD, ip="10.0.2.2").status_code == 200


def test_the_ip_is_the_trusted_proxys_forwarded_client(login_rates, settings, user):
    settings.WS_TRUSTED_PROXIES = 1
    client = APIClient()

    def via_proxy(username, password, forged):
        # The client forges the left part of X-Forwarded-For; the proxy appends the real one.
        forwarded = f"{forged}, 10.0.3.1"
        body = {"username": username, "password": password}
        return client.post(
            "/api/auth/token/",
            body,
            format="json",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    assert [via_proxy(f"u{i}", "x", f"6.6.6.{i}") for i in range(4)] == [401] * 4
    assert via_proxy("alice", PASSWORD, "7.7.7.7") == 429


def refresh(client, token: str):
    return client.post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def revoke(client, token: str):
    return client.post("/api/auth/token/revoke/", {"refresh": token}, format="json")


def test_refresh_rotates_and_the_old_refresh_token_is_refused(user):
    client = APIClient()
    pair = login(client, "alice", PASSWORD).json()
    rotated = refresh(client, pair["refresh"])
    assert rotated.status_code == 200
    body = rotated.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != pair["refresh"]
    assert refresh(client, pair["refresh"]).status_code == 401  # the old one is revoked
    assert refresh(client, body["refresh"]).status_code == 200


def test_sign_out_revokes_the_refresh_token(user):
    client = APIClient()
    pair = login(client, "alice", PASSWORD).json()
    assert revoke(client, pair["refresh"]).status_code == 200
    assert refresh(client, pair["refresh"]).status_code == 401
    assert revoke(client, pair["refresh"]).status_code == 401
    assert revoke(client, "nope").status_code == 401


def test_a_deleted_users_refresh_token_is_401_not_500(user):
    token = str(RefreshToken.for_user(user))
    user.delete()
    response = refresh(APIClient(), token)
    assert response.status_code == 401
    assert response.json() == {"detail": "No active account found for the given token."}


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/debates/"])
@pytest.mark.parametrize("body", [deep(970), "[" * 970 + "]" * 970, deep(33)])
def test_deeply_nested_json_is_a_400(auth_client, path, body):
    response = auth_client.post(path, body, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["detail"]


def test_brackets_inside_strings_do_not_count_as_nesting(auth_client):
    asset = '"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["'
    body = '{"asset": ' + asset + ', "note": "}}}}{{{{\\"[[["}'
    response = auth_client.post("/api/debates/", body, content_type="application/json")
    assert response.status_code == 400
    assert "asset" in response.json()  # a field error from the serializer, past the parser


def test_json_within_the_depth_is_accepted(auth_client):
    response = auth_client.post("/api/debates/", deep(32), content_type="application/json")
    assert response.status_code == 400
    assert "asset" in response.json()


def test_undecodable_bytes_are_a_400(auth_client):
    response = auth_client.post("/api/debates/", b"\xff\xfe{", content_type="application/json")
    assert response.status_code == 400
