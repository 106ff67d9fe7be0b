"""A server started like production holds a bounded number of PostgreSQL connections however
many requests it serves (Django's psycopg pool): persistent connections under ASGI left one
open connection per finished request thread, until PostgreSQL refused more."""

import os

import psycopg
import pytest

from tests.e2e.servers import daphne_cluster

pytestmark = pytest.mark.e2e

# This test is about PostgreSQL whatever the suite runs on: the machine's server (CI's too).
POSTGRES = os.environ.get("DATABASE_URL", "")
if not POSTGRES.startswith(("postgres://", "postgresql://")):
    POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
POOL_SIZE = 4
REQUESTS = 40  # ten times the pool: one connection per request would show at once


def connections_to(database_url: str) -> int:
    """Open connections to this database, as PostgreSQL counts them."""
    server, name = database_url.rsplit("/", 1)
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {server} is required for this test and is down: {exc}")
    return row[0]


def test_a_served_process_holds_at_most_its_pool_of_connections(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", POSTGRES)  # the cluster's fresh database, on PostgreSQL
    with daphne_cluster(tmp_path, 1, use_redis=False, DB_POOL_MAX_SIZE=str(POOL_SIZE)) as (server,):
        database_url = server.env["DATABASE_URL"]
        assert database_url.startswith("postgres")
        access = server.token()["access"]
        created = []
        for i in range(REQUESTS):
            if i % 4 == 0:
                status, body = server.api("POST", "/api/debates/", {"asset": "BTC"}, access)
                assert status == 201, body
                created.append(body["id"])
            else:
                status, body = server.api("GET", "/api/debates/", None, access)
                assert status == 200, body
        assert len(created) == REQUESTS // 4

        held = connections_to(database_url)
        assert 1 <= held <= POOL_SIZE, f"{held} connections after {REQUESTS} requests"
