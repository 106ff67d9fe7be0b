"""Shared fixtures: users, API clients and the real Redis used by service-backed tests."""

import os
import threading
import uuid
import weakref

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db.backends.signals import connection_created
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from debates.runs import launch
from streaming import control, presence

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

# Fuzzing (hypothesis, schemathesis) is deterministic: a derandomised search, no example
# database, no deadline on a shared machine; each test sets its own modest max_examples.
hypothesis_settings.register_profile(
    "tradeapp",
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
hypothesis_settings.load_profile("tradeapp")


def pytest_configure(config):
    """Static files straight from the source folders, as DEBUG serves them: the tests run
    without collectstatic (DEBUG is off by default, and pytest-django keeps it off)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True


# Connections opened by worker threads (asgiref's executors, runner threads): Django closes only
# the main thread's, and one left open makes PostgreSQL refuse to drop the test database.
_thread_connections: "weakref.WeakSet" = weakref.WeakSet()


def _remember_thread_connection(sender, connection, **kwargs) -> None:
    if threading.current_thread() is not threading.main_thread():
        _thread_connections.add(connection)


connection_created.connect(_remember_thread_connection)


@pytest.fixture(scope="session", autouse=True)
def _no_connection_left_for_teardown(django_db_setup, django_db_blocker):
    """Close worker threads' database connections before the test database is dropped."""
    yield
    with django_db_blocker.unblock():
        for wrapper in list(_thread_connections):
            wrapper.inc_thread_sharing()
            try:
                wrapper.close()
            finally:
                wrapper.dec_thread_sharing()


@pytest.fixture
def user(django_user_model):
    """A plain signed-up user."""
    return django_user_model.objects.create_user(username="alice", password="s3cret-pass!")


@pytest.fixture
def other_user(django_user_model):
    """A second plain user."""
    return django_user_model.objects.create_user(username="bob", password="s3cret-pass!")


@pytest.fixture
def staff_user(django_user_model):
    """A superuser for the admin."""
    return django_user_model.objects.create_superuser(username="admin", password="s3cret-pass!")


@pytest.fixture
def access_token(user) -> str:
    """A valid simplejwt access token for `user`."""
    return str(RefreshToken.for_user(user).access_token)


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def auth_client(access_token) -> APIClient:
    """An API client sending `user`'s bearer token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client


@pytest.fixture(autouse=True)
def _process_state_left_clean():
    """Each test starts with no audience counted, no control listener, no runner thread and no
    throttle count (the cache), and leaves none behind."""
    presence.reset()
    _clear_local_cache()
    yield
    launch.stop_runner_loop()
    control.forget_listener()
    presence.reset()
    _clear_local_cache()


def _clear_local_cache() -> None:
    # Only this process's memory cache: a Redis cache's clear() would flush a shared database.
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


@pytest.fixture
def redis_url() -> str:
    """The real Redis for tests that need it; a down Redis fails the test, never skips it."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {TEST_REDIS_URL} is required for this test and is down: {exc}")
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test, so tests never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}"
