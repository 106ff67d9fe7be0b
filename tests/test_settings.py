"""Settings read from the environment: defaults, production refusals and the deploy check."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROD_SECRET = "x" * 20 + "-a-long-random-production-secret-key-0123456789"


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with only the given settings variables."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def print_settings(**env: str) -> dict[str, str]:
    script = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.CACHES['default']['BACKEND'])"
    )
    out = run_manage("shell", "-c", script, **env)
    assert out.returncode == 0, out.stderr
    engine, layer, cache = out.stdout.strip().splitlines()[-3:]
    return {"engine": engine, "layer": layer, "cache": cache}


def test_embedded_defaults_are_sqlite_and_in_memory():
    assert print_settings() == {
        "engine": "django.db.backends.sqlite3",
        "layer": "channels.layers.InMemoryChannelLayer",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
    }


def test_database_url_and_redis_url_select_postgresql_and_redis():
    assert print_settings(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/tradeapp",
        REDIS_URL="redis://127.0.0.1:6379/0",
    ) == {
        "engine": "django.db.backends.postgresql",
        "layer": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "cache": "django.core.cache.backends.redis.RedisCache",
    }


def test_production_without_secret_key_stops_with_one_clear_line():
    out = run_manage("check", DEBUG="0", SECRET_KEY="")
    assert out.returncode != 0
    assert out.stderr.strip() == "SECRET_KEY must be set when DEBUG is off (see .env.example)."


def test_a_bad_boolean_is_refused():
    out = run_manage("check", DEBUG="maybe")
    assert out.returncode != 0
    assert "DEBUG must be a boolean" in out.stderr


def test_deploy_check_reports_only_the_https_settings():
    out = run_manage(
        "check", "--deploy", DEBUG="0", SECRET_KEY=PROD_SECRET, ALLOWED_HOSTS="example.com"
    )
    assert out.returncode == 0, out.stderr
    codes = {
        line.split(")")[0].split("(")[-1]
        for line in out.stderr.splitlines()
        if "(security." in line
    }
    # HSTS and the HTTPS redirect belong to the TLS-terminating proxy (README, Production).
    assert codes == {"security.W004", "security.W008"}


def test_deploy_check_is_clean_with_https_settings():
    out = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=PROD_SECRET,
        ALLOWED_HOSTS="example.com",
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
    )
    assert out.returncode == 0, out.stderr
