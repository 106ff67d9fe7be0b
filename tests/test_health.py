"""/healthz and /readyz with their services up and down."""

import json
import os
import subprocess
import sys

import pytest


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok_without_redis_configured(client, settings):
    settings.REDIS_URL = ""
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "checks": {"database": "ok"}, "down": []}


@pytest.mark.django_db
def test_readyz_ok_with_redis_up(client, settings, redis_url):
    settings.REDIS_URL = redis_url
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_503_when_redis_is_down(client, settings):
    # Port 1 on loopback: nothing listens, so the connection is refused at once.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("down:")


@pytest.mark.django_db
def test_readyz_names_each_redis_node_that_is_down(client, settings, redis_url):
    # The second of three nodes refuses connections (port 1: nothing listens).
    settings.REDIS_URLS = [redis_url, "redis://127.0.0.1:1/0", redis_url]
    settings.REDIS_URL = redis_url
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["down"] == ["redis-1"]
    assert body["checks"]["redis-0"] == body["checks"]["redis-2"] == "ok"


def test_readyz_503_when_the_database_is_down():
    # A fresh process whose DATABASE_URL points at a port where nothing listens.
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/readyz', HTTP_HOST='localhost');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeapp.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing",
        "REDIS_URL": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 503
    assert result["body"]["down"] == ["database"]
    assert result["body"]["checks"]["database"] == "down: OperationalError"
