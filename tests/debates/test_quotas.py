"""Per-user debate quotas: created per 24 hours and running at once; 429 with the limit."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from debates import lifecycle, services
from debates.models import Debate, DebateStatus

# Inside a test transaction: a start claims the debate, and its run (launched on commit) never
# begins, so a started debate stays running for the running quota.
pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.DEBATES_PER_USER_PER_DAY = 3
    settings.DEBATES_RUNNING_PER_USER = 2
    return settings


def create(client: APIClient):
    return client.post("/api/debates/", {"asset": "BTC", "maxTurns": 20}, format="json")


def test_creating_past_the_daily_quota_is_429_with_the_limit(limits, auth_client, user):
    assert [create(auth_client).status_code for _ in range(3)] == [201, 201, 201]
    refused = create(auth_client)
    assert refused.status_code == 429
    body = refused.json()
    assert body["limit"] == 3
    assert body["window"] == "24h"
    assert body["quota"] == "debates_per_day"
    assert "3 debates in 24 hours" in body["detail"]
    assert 0 < int(refused["Retry-After"]) <= 24 * 3600
    assert Debate.objects.filter(created_by=user).count() == 3  # nothing half-written


def test_debates_older_than_24_hours_free_the_daily_quota(limits, auth_client, user):
    for _ in range(3):
        assert create(auth_client).status_code == 201
    Debate.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert create(auth_client).status_code == 201


def test_the_quota_is_per_user(limits, auth_client, other_user):
    for _ in range(3):
        assert create(auth_client).status_code == 201
    other = APIClient()
    other.force_authenticate(other_user)
    assert create(other).status_code == 201


def test_starting_past_the_running_quota_is_429_and_leaves_the_debate_pending(
    limits, auth_client, user
):
    ids = [create(auth_client).json()["id"] for _ in range(3)]
    started = [auth_client.post(f"/api/debates/{i}/start/").status_code for i in ids]
    assert started == [202, 202, 429]
    refused = auth_client.post(f"/api/debates/{ids[2]}/start/")
    assert refused.json() == {
        "detail": "You may have 2 debates running at once; wait for one to finish.",
        "quota": "running_debates",
        "limit": 2,
        "window": "running",
    }
    assert Debate.objects.get(pk=ids[2]).status == DebateStatus.PENDING
    # A finished debate frees its slot.
    assert auth_client.post(f"/api/debates/{ids[0]}/cancel/").status_code == 202
    assert auth_client.post(f"/api/debates/{ids[2]}/start/").status_code == 202


def test_an_already_running_debate_is_409_not_429(limits, auth_client):
    ids = [create(auth_client).json()["id"] for _ in range(2)]
    for debate_id in ids:
        assert auth_client.post(f"/api/debates/{debate_id}/start/").status_code == 202
    assert auth_client.post(f"/api/debates/{ids[0]}/start/").status_code == 409


def test_staff_are_exempt(limits, staff_user):
    staff = APIClient()
    staff.force_authenticate(staff_user)
    ids = [create(staff).json()["id"] for _ in range(4)]
    assert all(ids)
    assert [staff.post(f"/api/debates/{i}/start/").status_code for i in ids] == [202] * 4


def test_zero_means_no_limit(settings, auth_client):
    settings.DEBATES_PER_USER_PER_DAY = 0
    settings.DEBATES_RUNNING_PER_USER = 0
    ids = [create(auth_client).json()["id"] for _ in range(5)]
    assert [auth_client.post(f"/api/debates/{i}/start/").status_code for i in ids] == [202] * 5


def test_lifecycle_start_enforces_the_quota_for_every_caller(limits, user):
    debates = [services.debate_create(asset="ETH", created_by=user) for _ in range(3)]
    for debate in debates[:2]:
        lifecycle.start(debate=debate, user=user)
    with pytest.raises(services.QuotaExceeded):
        lifecycle.start(debate=debates[2], user=None)  # a trusted caller, the creator's quota


def test_run_debate_refuses_a_user_over_quota(limits, user):
    for _ in range(3):
        services.debate_create(asset="ETH", created_by=user)
    with pytest.raises(CommandError, match="3 debates in 24 hours"):
        call_command("run_debate", "BTC", "--user", user.username, stdout=StringIO())


def test_the_schema_documents_the_429s(api_client, staff_user):
    api_client.force_login(staff_user)
    paths = api_client.get("/api/schema/?format=json").json()["paths"]
    assert "429" in paths["/api/debates/"]["post"]["responses"]
    assert "429" in paths["/api/debates/{id}/start/"]["post"]["responses"]
    assert "429" in paths["/api/auth/token/"]["post"]["responses"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_cannot_both_take_the_last_slot(limits, user):
    for _ in range(2):
        services.debate_create(asset="ETH", created_by=user)
    barrier = threading.Barrier(4)
    outcomes = []

    def create() -> None:
        barrier.wait()
        try:
            services.debate_create(asset="BTC", created_by=user)
            outcomes.append("created")
        except services.QuotaExceeded:
            outcomes.append("429")
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["429", "429", "429", "created"]
    assert Debate.objects.filter(created_by=user).count() == 3
