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


def print_setting(name: str, **env: str) -> str:
    out = run_manage(
        "shell", "-c", f"from django.conf import settings; print(settings.{name})", **env
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_debug_is_off_unless_asked_for():
    clean = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    out = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.DEBUG)",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
    assert print_setting("DEBUG", DEBUG="1") == "True"


def test_without_secret_key_each_install_keeps_a_random_key_of_its_own(tmp_path):
    first = print_setting("SECRET_KEY", SECRET_KEY="", STATE_DIR=str(tmp_path / "a"))
    again = print_setting("SECRET_KEY", SECRET_KEY="", STATE_DIR=str(tmp_path / "a"))
    other = print_setting("SECRET_KEY", SECRET_KEY="", STATE_DIR=str(tmp_path / "b"))
    assert first == again  # kept: tokens and sessions survive a restart
    assert first != other  # per install: never a key shared with anyone else
    assert len(first) >= 50
    assert "insecure" not in first
    key_file = tmp_path / "a" / "secret_key"
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert print_setting("SECRET_KEY", SECRET_KEY=PROD_SECRET, STATE_DIR=str(tmp_path / "c")) == (
        PROD_SECRET
    )
    assert not (tmp_path / "c").exists()


def test_a_key_that_cannot_be_kept_stops_start_up_with_one_clear_line(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    out = run_manage("check", SECRET_KEY="", STATE_DIR=str(blocker / "state"))
    assert out.returncode != 0
    line = out.stderr.strip()
    assert line.startswith("SECRET_KEY is not set and no key could be kept in ")
    assert line.endswith(": set SECRET_KEY or STATE_DIR (see .env.example).")


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
