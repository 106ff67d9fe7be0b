"""PostgreSQL breaking under a running debate (a database of the test's own on the PostgreSQL
server: DATABASE_URL when it is postgres, else 127.0.0.1:5432; required, never skipped).

The runner's connection is terminated during two argument saves (a trigger that kills its own
backend inside the INSERT) and every connection of the app is terminated mid-turn; then the
database refuses connections for a few seconds. The run retries and completes with every turn
saved once; REST answers 503 with Retry-After meanwhile, never 500.
"""

import asyncio
import os

import psycopg
import pytest

from bench.launcher import cluster
from tests.e2e.servers import ORIGIN, PASSWORD, QA_TOKEN, USERNAME, require_redis
from tests.faults.test_redis_outage import _assert_transcript, _debate, _start, _wait_for
from tests.faults.viewer import Viewer

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

KILLED_SAVES = 2
REFUSED_S = 3


def _postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    server, _name = url.rsplit("/", 1)
    try:  # the server, not the named database: CI's DATABASE_URL names one only tests create
        psycopg.connect(f"{server}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {url} is required for this test and is down: {exc}")
    return url


def _admin(database_url: str) -> psycopg.Connection:
    """An autocommit connection to the server's `postgres` database (not the app's)."""
    server, _name = database_url.rsplit("/", 1)
    return psycopg.connect(f"{server}/postgres", autocommit=True)


def _terminate_all(database_url: str) -> int:
    name = database_url.rsplit("/", 1)[1]
    with _admin(database_url) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return len(rows)


def _kill_saves(database_url: str, count: int) -> None:
    """The next `count` argument saves lose their connection inside the INSERT."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE fault_saves")
        conn.execute(
            f"""CREATE FUNCTION fault_kill_save() RETURNS trigger AS $$
            BEGIN
              IF nextval('fault_saves') <= {count} THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
                PERFORM pg_sleep(5);
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql"""
        )
        conn.execute(
            "CREATE TRIGGER fault_kill_save BEFORE INSERT ON debates_argument "
            "FOR EACH ROW EXECUTE FUNCTION fault_kill_save()"
        )


def _saves_attempted(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT last_value FROM fault_saves").fetchone()[0]


def _allow_connections(database_url: str, allowed: bool) -> None:
    name = database_url.rsplit("/", 1)[1]
    with _admin(database_url) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')


async def test_postgres_connections_terminated_mid_debate(tmp_path):
    with cluster(
        tmp_path,
        1,
        name="faultspg",
        fresh_from=_postgres_url(),
        redis_url=require_redis(),
        qa_token=QA_TOKEN,
        origins=ORIGIN,
        user=(USERNAME, PASSWORD),
        env={
            "DEBUG": "1",
            "WS_RATE_LIMIT": "100000/minute",
            "DB_CONN_MAX_AGE": "0",
            "OFFLINE_LLM_TOKENS_PER_S": "40",
        },
    ) as launched:
        server = launched.servers[0]
        database_url = launched.env["DATABASE_URL"]
        _kill_saves(database_url, KILLED_SAVES)
        debate_id, access = _start(server, turns=4)
        viewer = Viewer(launched.servers, debate_id)
        watching = asyncio.create_task(viewer.watch())

        # Mid-turn, after the first saves were killed: every connection of the app terminated.
        await _wait_for(lambda: len(viewer.arguments()) >= 1)
        assert await asyncio.to_thread(_terminate_all, database_url) >= 1

        # The database refuses connections for a while: REST says 503, the run waits.
        await _wait_for(lambda: len(viewer.arguments()) >= 2)
        await asyncio.to_thread(_allow_connections, database_url, False)
        try:
            await asyncio.to_thread(_terminate_all, database_url)
            status, body = server.api("GET", f"/api/debates/{debate_id}/", None, access)
            assert status == 503, body
            assert "database" in body["detail"]
            status, body = server.api("GET", "/api/debates/", None, access)
            assert status == 503, body
            await asyncio.sleep(REFUSED_S)  # the outage itself
        finally:
            await asyncio.to_thread(_allow_connections, database_url, True)

        await watching
        debate = _debate(server, debate_id, access)
        assert debate["status"] == "completed", debate["error"]
        assert viewer.final_status() == "completed"
        _assert_transcript(viewer, debate)
        assert len(debate["arguments"]) == 5  # four turns and the verdict, each once
        assert await asyncio.to_thread(_saves_attempted, database_url) > KILLED_SAVES
