"""Concurrent users on the database under test (SQLite by default, the embedded default; CI runs
it on PostgreSQL too): two users hammering create/start/cancel while debates run
get no 5xx, and every debate ends; on the embedded default (one daphne, no Redis: one
database thread) and with Redis (debates on the runner thread: two threads writing)."""

import threading
import time
from collections import Counter

import pytest

from tests.e2e.servers import daphne_cluster

pytestmark = pytest.mark.e2e

RUNNING = 8  # long debates writing while the users hammer
ROUNDS = 25  # create + start + cancel, per user
DEADLINE_S = 240  # only to fail a hung test
SECOND_USER = ("second-user", "second-user-password-7")


def hammer(server, token: str, statuses: Counter, ids: list, lock: threading.Lock) -> None:
    """Create, start and cancel debates as fast as the server answers."""
    for _ in range(ROUNDS):
        calls = []
        status, body = server.api("POST", "/api/debates/", {"asset": "BTC", "maxTurns": 4}, token)
        calls.append(status)
        if status == 201:
            debate_id = body["id"]
            calls.append(server.api("POST", f"/api/debates/{debate_id}/start/", None, token)[0])
            calls.append(server.api("POST", f"/api/debates/{debate_id}/cancel/", None, token)[0])
            with lock:
                ids.append(debate_id)
        with lock:
            statuses.update(calls)


@pytest.mark.parametrize("use_redis", [False, True], ids=["embedded", "with-redis"])
def test_two_users_hammering_create_and_cancel_while_debates_run_get_no_5xx(tmp_path, use_redis):
    with daphne_cluster(
        tmp_path,
        1,
        use_redis=use_redis,
        OFFLINE_LLM_TOKENS_PER_S="200",
        DEBATES_PER_USER_PER_DAY="0",
        DEBATES_RUNNING_PER_USER="0",
    ) as (server,):
        server.manage(
            "ensure_demo_user", f"--username={SECOND_USER[0]}", f"--password={SECOND_USER[1]}"
        )
        first = server.token()["access"]
        second = server.token(*SECOND_USER)["access"]
        ids: list[str] = []
        for _ in range(RUNNING):
            status, body = server.api(
                "POST", "/api/debates/", {"asset": "ETH", "maxTurns": 20}, first
            )
            assert status == 201, body
            assert server.api("POST", f"/api/debates/{body['id']}/start/", None, first)[0] == 202
            ids.append(body["id"])

        statuses: Counter = Counter()
        lock = threading.Lock()
        users = [
            threading.Thread(target=hammer, args=(server, token, statuses, ids, lock))
            for token in (first, second)
        ]
        for user in users:
            user.start()
        for user in users:
            user.join(DEADLINE_S)
        assert not any(user.is_alive() for user in users)

        errors = {status: n for status, n in statuses.items() if status >= 500}
        assert errors == {}, f"{errors} of {sum(statuses.values())}: {server.log_tail()}"
        assert statuses[201] == 2 * ROUNDS
        assert set(statuses) <= {201, 202, 409}  # 409: a debate that ended before its cancel

        # Every debate ends in a final status: none left running.
        deadline = time.monotonic() + DEADLINE_S
        while True:
            final = {
                debate_id: server.api("GET", f"/api/debates/{debate_id}/", None, first)[1]["status"]
                for debate_id in ids
            }
            if all(s in {"completed", "cancelled", "failed"} for s in final.values()):
                break
            assert time.monotonic() < deadline, Counter(final.values())
            time.sleep(1)
        assert "failed" not in final.values(), server.log_tail()
        assert " ERROR " not in server.logs()
