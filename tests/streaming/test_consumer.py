"""DebateConsumer over WebsocketCommunicator: every message, close code and the resume seam."""

import asyncio
import os
import types
from datetime import timedelta

import jwt
import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from debates.models import Argument, Debate, DebateStatus
from streaming import backends, consumers, presence, protocol, services
from streaming.auth import token_user, token_users
from streaming.fanout import get_hub
from streaming.models import Viewer
from streaming.publisher import publish_event
from tests.streaming.conftest import (
    ORIGIN,
    communicator,
    connect,
    expect_refusal,
    new_id,
    receive_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def _publish_turn(debate_id, turn: int, agent: str, words: list[str]) -> None:
    await publish_event(debate_id, protocol.TURN_CHANGE, {"currentAgent": agent, "turn": turn})
    for word in words:
        await publish_event(
            debate_id, protocol.TOKEN_RECEIVED, {"agent": agent, "token": word, "turn": turn}
        )
    await publish_event(
        debate_id,
        protocol.ARGUMENT_COMPLETE,
        {"agent": agent, "content": "".join(words), "turn": turn},
    )


# --- connect and stream ---------------------------------------------------------------------


async def test_connected_then_live_events(debate):
    comm, first = await connect(debate.id)
    assert first["type"] == protocol.CONNECTED
    assert first["payload"] == {
        "debateId": str(debate.id),
        "status": "running",
        "lastSeq": 0,
        "viewers": 1,
        "reset": False,
    }
    await _publish_turn(debate.id, 1, "bull", ["Up ", "we go."])
    messages = await receive_until(comm, lambda m: m["type"] == protocol.ARGUMENT_COMPLETE)
    assert [m["payload"]["seq"] for m in messages] == [1, 2, 3, 4]
    assert (
        "".join(m["payload"]["token"] for m in messages if m["type"] == protocol.TOKEN_RECEIVED)
        == messages[-1]["payload"]["content"]
    )
    await comm.disconnect()


async def test_user_jwt_is_accepted_and_recorded_on_the_viewer(debate, user):
    token = str(AccessToken.for_user(user))
    comm, first = await connect(debate.id, token=token)
    assert first["type"] == protocol.CONNECTED
    viewer = await database_sync_to_async(Viewer.objects.get)(debate=debate)
    assert viewer.user_id == user.pk
    assert viewer.client_ip == "127.0.0.1"
    assert viewer.disconnected_at is None
    await comm.disconnect()
    await asyncio.sleep(0)
    viewer = await database_sync_to_async(Viewer.objects.get)(pk=viewer.pk)
    assert viewer.disconnected_at is not None


async def test_a_valid_token_of_a_user_who_is_gone_or_inactive_is_refused(debate, user, settings):
    token = str(AccessToken.for_user(user))
    user.is_active = False
    await database_sync_to_async(user.save)()
    await expect_refusal(communicator(debate.id, token=token), protocol.Close.UNAUTHORIZED)

    await database_sync_to_async(user.delete)()
    # The user is checked before the debate: an unknown debate still gets 4001.
    await expect_refusal(communicator(new_id(), token=token), protocol.Close.UNAUTHORIZED)
    assert not await database_sync_to_async(Viewer.objects.exists)()


async def test_a_token_from_before_a_password_change_names_no_user_when_revocation_is_on(
    user, settings
):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "CHECK_REVOKE_TOKEN": True}
    token = AccessToken.for_user(user)
    token["hash_password"] = get_md5_hash_password(user.password)  # what simplejwt stamps
    users = await database_sync_to_async(token_users)([token])
    assert token_user(token, users) == user
    user.set_password("a-new-password-1")
    await database_sync_to_async(user.save)()
    users = await database_sync_to_async(token_users)([token])
    assert token_user(token, users) is None


async def test_a_storm_of_user_tokens_is_checked_in_the_ledgers_batches(debate, user, other_user):
    tokens = [str(AccessToken.for_user(u)) for u in (user, other_user)] * 10
    results = await asyncio.gather(*(connect(debate.id, token=t) for t in tokens))
    assert [first["type"] for _comm, first in results] == [protocol.CONNECTED] * 20
    rows = await database_sync_to_async(list)(
        Viewer.objects.filter(debate=debate).values_list("user_id", flat=True)
    )
    assert sorted(rows) == sorted([user.pk, other_user.pk] * 10)
    for comm, _first in results:
        await comm.disconnect()


async def test_catch_up_from_seq_1_without_last_seq(debate):
    await _publish_turn(debate.id, 1, "bull", ["a", "b"])
    comm, first = await connect(debate.id)
    assert first["payload"]["lastSeq"] == 4
    messages = [await comm.receive_json_from(timeout=5) for _ in range(4)]
    assert [m["payload"]["seq"] for m in messages] == [1, 2, 3, 4]
    await _publish_turn(debate.id, 2, "bear", ["c"])
    live = [await comm.receive_json_from(timeout=5) for _ in range(3)]
    assert [m["payload"]["seq"] for m in live] == [5, 6, 7]
    await comm.disconnect()


async def test_resume_after_last_seq_exactly_once(debate):
    await _publish_turn(debate.id, 1, "bull", ["a", "b", "c"])  # seqs 1..5
    comm, first = await connect(debate.id, last_seq=3)
    assert first["payload"]["lastSeq"] == 5
    messages = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    assert [m["payload"]["seq"] for m in messages] == [4, 5]
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
    last = await comm.receive_json_from(timeout=5)
    assert last["payload"]["seq"] == 6
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_no_gap_or_duplicate_at_the_seam(debate, monkeypatch):
    """Events published while the consumer reads the log arrive once, in order."""
    from streaming import eventlog

    await _publish_turn(debate.id, 1, "bull", ["a"])  # seqs 1..3
    log = eventlog.get_event_log()
    original = log.snapshot

    published = []

    async def slow_snapshot(debate_id, after_seq):
        result = await original(debate_id, after_seq)
        if not published:
            published.append(True)
            # Between the log read and going live, two more events are published.
            await publish_event(
                debate.id, protocol.TURN_CHANGE, {"currentAgent": "bear", "turn": 2}
            )
            await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
        return result

    monkeypatch.setattr(log, "snapshot", slow_snapshot)
    comm, _first = await connect(debate.id, last_seq=1)
    messages = [await comm.receive_json_from(timeout=5) for _ in range(4)]
    assert [m["payload"]["seq"] for m in messages] == [2, 3, 4, 5]
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_live_events_already_replayed_are_dropped(debate, monkeypatch):
    """An event both in the log read and in the live buffer is sent once."""
    from streaming import eventlog

    log = eventlog.get_event_log()
    original = log.snapshot

    published = []

    async def publish_then_snapshot(debate_id, after_seq):
        # Published after the subscription, before the log read: in the buffer AND the log.
        if not published:
            published.append(
                await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
            )
            await asyncio.sleep(0.05)  # let the hub buffer it (no assertion on time)
        return await original(debate_id, after_seq)

    monkeypatch.setattr(log, "snapshot", publish_then_snapshot)
    comm, _first = await connect(debate.id)
    monkeypatch.setattr(log, "snapshot", original)
    message = await comm.receive_json_from(timeout=5)
    assert message["payload"]["seq"] == 1
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
    assert (await comm.receive_json_from(timeout=5))["payload"]["seq"] == 2
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_hub_repairs_a_lost_event_from_the_log(debate):
    """A live event lost by the layer is read from the log before the next one."""
    from streaming import eventlog

    comm, _ = await connect(debate.id)
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    assert (await comm.receive_json_from(timeout=5))["payload"]["seq"] == 1
    # Seq 2 goes into the log but never through the layer.
    head, tail = protocol.event_text_parts(
        protocol.TURN_CHANGE,
        {"debateId": str(debate.id), "currentAgent": "bull", "turn": 1},
        protocol.now_iso(),
    )
    await eventlog.get_event_log().append(str(debate.id), head, tail)
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
    messages = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    assert [m["payload"]["seq"] for m in messages] == [2, 3]
    # A lost last event is repaired by the tick.
    await eventlog.get_event_log().append(str(debate.id), head, tail)
    await get_hub().tick()
    messages = await receive_until(comm, lambda m: m["type"] != protocol.PING)
    assert messages[-1]["payload"]["seq"] == 4
    await comm.disconnect()


async def test_finished_debate_after_ttl_is_replayed_from_the_database(db):
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="MSFT",
        status=DebateStatus.COMPLETED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    for turn, agent, content in [(1, "bull", "Buy it."), (2, "bear", "Sell it.")]:
        await database_sync_to_async(Argument.objects.create)(
            debate=debate, turn=turn, agent=agent, content=content
        )
    comm, first = await connect(debate.id)
    assert first["payload"]["status"] == "completed"
    assert first["payload"]["lastSeq"] == 8
    messages = [await comm.receive_json_from(timeout=5) for _ in range(8)]
    assert [m["type"] for m in messages] == [
        protocol.STATUS_UPDATE,
        protocol.TURN_CHANGE,
        protocol.TOKEN_RECEIVED,
        protocol.ARGUMENT_COMPLETE,
        protocol.TURN_CHANGE,
        protocol.TOKEN_RECEIVED,
        protocol.ARGUMENT_COMPLETE,
        protocol.STATUS_UPDATE,
    ]
    assert [m["payload"]["seq"] for m in messages] == list(range(1, 9))
    assert [m["payload"]["content"] for m in messages if "content" in m["payload"]] == [
        "Buy it.",
        "Sell it.",
    ]
    assert messages[-1]["payload"]["status"] == "completed"
    await comm.disconnect()
    # Without an archive the numbering is the synthesis's own: a resuming client starts over.
    comm, first = await connect(debate.id, last_seq=6)
    assert first["payload"]["reset"] is True
    assert first["payload"]["lastSeq"] == 8
    again = [await comm.receive_json_from(timeout=5) for _ in range(8)]
    assert again == messages
    assert await comm.receive_nothing(timeout=0.1)
    await comm.disconnect()


async def _expire_log(debate_id) -> None:
    """Drop the debate's live event log, as its TTL would."""
    from streaming import backends, eventlog

    if backends.redis_url():
        client = backends.redis_client()
        await client.delete(backends.key("seq", debate_id), backends.key("log", debate_id))
    else:
        eventlog._memory_log._logs.pop(backends.key(str(debate_id)), None)


async def _run_debate(debate, turns) -> None:
    """Publish a whole debate (saving its arguments) and finish it."""
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    for turn, agent, words in turns:
        await publish_event(debate.id, protocol.TURN_CHANGE, {"currentAgent": agent, "turn": turn})
        for word in words:
            await publish_event(
                debate.id, protocol.TOKEN_RECEIVED, {"agent": agent, "token": word, "turn": turn}
            )
        await database_sync_to_async(Argument.objects.create)(
            debate=debate, turn=turn, agent=agent, content="".join(words)
        )
        await publish_event(
            debate.id,
            protocol.ARGUMENT_COMPLETE,
            {"agent": agent, "content": "".join(words), "turn": turn},
        )
    await database_sync_to_async(Debate.objects.filter(pk=debate.pk).update)(
        status=DebateStatus.COMPLETED, finished_at=timezone.now()
    )
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_resume_after_the_ttl_keeps_the_live_seqs(debate, backend, request):
    """The archived log replays the live texts and seqs: lastSeq=N stays exact after the TTL."""
    if backend == "redis":
        request.getfixturevalue("use_redis")
    live_comm, _ = await connect(debate.id)
    await _run_debate(debate, [(1, "bull", ["Up ", "and ", "up."]), (2, "bear", ["No", "."])])
    live = await receive_until(
        live_comm, lambda m: m["payload"].get("status") == "completed", limit=50
    )
    await live_comm.disconnect()
    assert [m["payload"]["seq"] for m in live] == list(range(1, 12))
    await _expire_log(debate.id)

    for last_seq in [None, 0, 3, 7, 10, 11]:
        comm, first = await connect(debate.id, last_seq=last_seq)
        assert first["payload"]["status"] == "completed"
        assert first["payload"]["lastSeq"] == 11
        assert first["payload"]["reset"] is False
        expected = live[(last_seq or 0) :]
        replay = [await comm.receive_json_from(timeout=5) for _ in expected]
        assert replay == expected  # same texts, same seqs, same timestamps
        assert await comm.receive_nothing(timeout=0.1)
        await comm.disconnect()


async def test_last_seq_beyond_the_log_replays_all_with_reset(debate):
    """A lastSeq from another numbering (a lost log) gets everything from seq 1, flagged."""
    await _publish_turn(debate.id, 1, "bull", ["a", "b"])  # seqs 1..4
    comm, first = await connect(debate.id, last_seq=40)
    assert first["payload"]["reset"] is True
    assert first["payload"]["lastSeq"] == 4
    messages = [await comm.receive_json_from(timeout=5) for _ in range(4)]
    assert [m["payload"]["seq"] for m in messages] == [1, 2, 3, 4]
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "completed"})
    assert (await comm.receive_json_from(timeout=5))["payload"]["seq"] == 5
    await comm.disconnect()


async def test_a_log_that_lost_its_events_falls_back_to_the_archive(debate, use_redis):
    from streaming import backends

    await _run_debate(debate, [(1, "bull", ["x", "y"])])  # seqs 1..6, archived
    # The stream is gone but its seq key is not (evicted apart, or expired between them).
    await backends.redis_client().delete(backends.key("log", debate.id))
    comm, first = await connect(debate.id, last_seq=2)
    assert first["payload"]["lastSeq"] == 6
    assert first["payload"]["reset"] is False
    rest = [await comm.receive_json_from(timeout=5) for _ in range(4)]
    assert [m["payload"]["seq"] for m in rest] == [3, 4, 5, 6]
    await comm.disconnect()


async def test_resume_with_the_redis_log(debate, use_redis):
    await _publish_turn(debate.id, 1, "bull", ["a", "b"])
    comm, first = await connect(debate.id, last_seq=2)
    assert first["payload"]["lastSeq"] == 4
    messages = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    assert [m["payload"]["seq"] for m in messages] == [3, 4]
    await comm.disconnect()


async def test_invalid_last_seq_replays_from_the_start(debate):
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    comm, _ = await connect(debate.id, last_seq="abc")
    assert (await comm.receive_json_from(timeout=5))["payload"]["seq"] == 1
    await comm.disconnect()


# --- refusals -------------------------------------------------------------------------------


async def test_missing_token_is_refused(debate):
    await expect_refusal(communicator(debate.id, token=None), 4001)


async def test_garbage_token_is_refused(debate):
    await expect_refusal(communicator(debate.id, token="not-a-jwt"), 4001)


async def test_expired_token_is_refused(debate, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=5))
    await expect_refusal(communicator(debate.id, token=str(token)), 4001)


async def test_tampered_token_is_refused(debate, user, other_user):
    header, payload, signature = str(AccessToken.for_user(user)).split(".")
    forged = jwt.encode(
        {**jwt.decode(str(AccessToken.for_user(other_user)), options={"verify_signature": False})},
        "a-wrong-signing-key-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    await expect_refusal(communicator(debate.id, token=forged), 4001)
    await expect_refusal(communicator(debate.id, token=f"{header}.{payload}x.{signature}"), 4001)


async def test_alg_none_token_is_refused(debate, user):
    claims = jwt.decode(str(AccessToken.for_user(user)), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    await expect_refusal(communicator(debate.id, token=unsigned), 4001)


async def test_refresh_token_is_refused_as_access(debate, user):
    # for_user records the token (the blacklist app): a database write, off the event loop.
    refresh = await database_sync_to_async(RefreshToken.for_user)(user)
    await expect_refusal(communicator(debate.id, token=str(refresh)), 4001)


async def test_qa_token_is_refused_when_debug_is_off(debate, settings):
    settings.DEBUG = False
    await expect_refusal(communicator(debate.id), 4001)
    settings.WS_QA_TOKEN_ALLOW_IN_PRODUCTION = True
    comm, first = await connect(debate.id)
    assert first["type"] == protocol.CONNECTED
    await comm.disconnect()


async def test_socket_closes_when_its_access_token_expires(debate, user, monkeypatch):
    token = AccessToken.for_user(user)
    # The consumer's clock says this valid token expires in half a second (however slow the
    # machine is while connecting), so its expiry timer fires while the socket is open.
    clock = types.SimpleNamespace(time=lambda: token["exp"] - 0.5)
    monkeypatch.setattr(consumers, "time", clock)
    comm, first = await connect(debate.id, token=str(token))
    assert first["type"] == protocol.CONNECTED
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == protocol.ERROR
    assert error["payload"]["code"] == 4001
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4001}


@pytest.mark.parametrize("origin", ["http://evil.example", "null", None, "http://localhost:9999"])
async def test_foreign_null_or_missing_origin_is_refused(debate, origin):
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    comm = communicator(debate.id, origin=origin)
    await expect_refusal(comm, 4003)
    assert await comm.receive_nothing(timeout=0.1)  # no debate event leaked


async def test_unknown_debate_is_refused(db):
    await expect_refusal(communicator(new_id()), 4004)


async def test_malformed_debate_id_is_refused(db):
    await expect_refusal(communicator("not-a-uuid"), 4004)


async def test_rate_limit_refuses_the_eleventh_connection(debate, settings):
    settings.WS_RATE_LIMIT = "10/minute"
    for _ in range(10):
        comm, first = await connect(debate.id, client=("10.1.1.1", 1))
        assert first["type"] == protocol.CONNECTED
        await comm.disconnect()
    await expect_refusal(communicator(debate.id, client=("10.1.1.1", 1)), 4029)
    comm, first = await connect(debate.id, client=("10.1.1.2", 1))  # another IP is fine
    assert first["type"] == protocol.CONNECTED
    await comm.disconnect()


async def test_spoofed_forwarded_for_changes_nothing_by_default(debate, settings):
    settings.WS_RATE_LIMIT = "2/minute"
    for i in range(2):
        comm, _ = await connect(
            debate.id, client=("10.2.2.2", 1), headers=[(b"x-forwarded-for", f"1.1.1.{i}".encode())]
        )
        await comm.disconnect()
    await expect_refusal(
        communicator(debate.id, client=("10.2.2.2", 1), headers=[(b"x-forwarded-for", b"9.9.9.9")]),
        4029,
    )


async def test_internal_error_closes_4500_and_logs_a_trace(debate, monkeypatch, caplog):
    from streaming import consumers

    async def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(consumers, "allow_connection", boom)
    await expect_refusal(communicator(debate.id), 4500)
    assert any(r.exc_info and "simulated failure" in str(r.exc_info[1]) for r in caplog.records)


# --- client frames, heartbeat, operator disconnect ------------------------------------------


async def test_bad_frames_get_typed_errors_and_never_crash(debate):
    comm, _ = await connect(debate.id)
    other, _ = await connect(debate.id)
    frames = [
        ("text", "{not json"),
        ("bytes", b"\x00\x01"),
        ("text", "[1,2,3]"),
        ("text", '{"type": "DEBATE/NOPE"}'),
        ("text", "[" * 5000),
        ("text", "x" * 100_000),
        ("text", ""),
    ]
    for kind, data in frames:
        await comm.send_input({"type": "websocket.receive", kind: data})
        error = await comm.receive_json_from(timeout=5)
        assert error["type"] == protocol.ERROR
        assert error["payload"]["code"] == 4400
    await comm.send_json_to({"type": "DEBATE/PING"})
    assert (await comm.receive_json_from(timeout=5))["type"] == protocol.PONG
    await comm.send_json_to({"type": "DEBATE/PONG"})
    assert await comm.receive_nothing(timeout=0.1)
    await publish_event(debate.id, protocol.STATUS_UPDATE, {"status": "running"})
    assert (await comm.receive_json_from(timeout=5))["payload"]["seq"] == 1
    assert (await other.receive_json_from(timeout=5))["payload"]["seq"] == 1
    await comm.disconnect()
    await other.disconnect()


async def test_a_flood_of_bad_frames_closes_1008(debate):
    comm, _ = await connect(debate.id)
    for _ in range(protocol.MAX_BAD_FRAMES):
        await comm.send_to(text_data="nope")
        await comm.receive_json_from(timeout=5)
    await comm.send_to(text_data="nope")
    error = await comm.receive_json_from(timeout=5)
    assert error["payload"]["code"] == 1008
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 1008}


async def test_heartbeat_ping(debate):
    comm, _ = await connect(debate.id)
    await get_hub().tick()
    message = await comm.receive_json_from(timeout=5)
    assert message["type"] == protocol.PING
    assert message["payload"] == {}
    await comm.disconnect()


async def test_operator_disconnect_closes_4008(debate):
    comm, _ = await connect(debate.id)
    other, _ = await connect(debate.id)
    viewer = await database_sync_to_async(Viewer.objects.filter(debate=debate).earliest)("pk")
    await database_sync_to_async(services.viewers_disconnect)(
        viewers=Viewer.objects.filter(pk=viewer.pk)
    )
    error = await comm.receive_json_from(timeout=5)
    assert error["payload"]["code"] == 4008
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4008}
    assert await other.receive_nothing(timeout=0.1)  # only the one asked for
    await other.disconnect()


async def test_admin_action_disconnects_selected_viewers(debate, staff_user, client):
    comm, _ = await connect(debate.id)
    viewer = await database_sync_to_async(Viewer.objects.get)(debate=debate)

    def run_action():
        client.force_login(staff_user)
        return client.post(
            "/admin/streaming/viewer/",
            {"action": "disconnect_viewers", "_selected_action": [viewer.pk]},
        )

    response = await database_sync_to_async(run_action)()
    assert response.status_code == 302
    error = await comm.receive_json_from(timeout=5)
    assert error["payload"]["code"] == 4008
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4008}


async def test_viewer_count_in_connected(debate):
    first_comm, first = await connect(debate.id)
    second_comm, second = await connect(debate.id)
    assert first["payload"]["viewers"] == 1
    assert second["payload"]["viewers"] == 2
    await first_comm.disconnect()
    assert presence.audience_counts([debate.id]) == {debate.id: 1}
    await second_comm.disconnect()
    assert presence.audience_counts([debate.id]) == {debate.id: 0}


async def test_stale_viewer_rows_are_swept(debate):
    stale = await database_sync_to_async(Viewer.objects.create)(
        debate=debate, connected_at=timezone.now() - timedelta(hours=1)
    )
    closed = await services.viewer_sweep_stale(
        process="specific.me!", local_ids=set(), process_started_at=timezone.now().timestamp()
    )
    assert closed == 1
    stale = await database_sync_to_async(Viewer.objects.get)(pk=stale.pk)
    assert stale.disconnected_at is not None


async def test_stale_viewer_rows_are_swept_with_redis(debate, use_redis, settings):
    settings.WS_PING_INTERVAL_S = 30  # process keys live 90 s
    old, new = timezone.now() - timedelta(hours=1), timezone.now()

    def row(process, connected_at=old):
        return Viewer.objects.create(debate=debate, process=process, connected_at=connected_at).pk

    rows = await database_sync_to_async(
        lambda: {
            "dead": row("host-1-dead"),
            "dead_recent": row("host-1-dead", new),  # younger than the TTL: not judged yet
            "alive": row("host-2-alive"),
            "mine": row("host-3-me"),
            "my_orphan": row("host-3-me"),  # no local consumer holds it
            "before_processes": row(""),  # written before rows named their process
        }
    )()
    # "host-2-alive" refreshed its liveness key, as each process's hub tick does.
    await backends.redis_client().set(backends.key("process", "host-2-alive"), 1, ex=90)
    closed = await services.viewer_sweep_stale(
        process="host-3-me", local_ids={rows["mine"]}, process_started_at=0
    )
    assert closed == 3
    open_after = await database_sync_to_async(
        lambda: set(
            Viewer.objects.filter(disconnected_at__isnull=True).values_list("pk", flat=True)
        )
    )()
    assert open_after == {rows[k] for k in ("dead_recent", "alive", "mine")}
    # Idempotent: the next tick finds nothing more.
    again = await services.viewer_sweep_stale(
        process="host-3-me", local_ids={rows["mine"]}, process_started_at=0
    )
    assert again == 0


async def test_a_viewer_row_names_the_process_whose_hub_sweeps_for_it(debate):
    from tradeapp.instance import process_id

    comm, _ = await connect(debate.id)
    row = await database_sync_to_async(Viewer.objects.get)(debate=debate)
    assert row.process == process_id() == get_hub().process
    assert f":{os.getpid()}:" in row.process
    await comm.disconnect()


def test_origin_header_constant_matches_settings(ws_settings):
    assert ORIGIN in ws_settings.WS_ALLOWED_ORIGINS
