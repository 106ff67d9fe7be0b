"""Replays and share links over the debate socket (WebsocketCommunicator), and the schedule."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from debates import services
from debates.models import Debate, DebateStatus
from streaming import protocol
from streaming.archive import archive_save
from streaming.models import Viewer
from streaming.publisher import publish_event
from streaming.replay import Replay, ReplayQueryError, event_time, parse_replay, schedule
from tests.streaming.conftest import ORIGIN, QA_TOKEN, application

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def archived_events(debate_id, gaps_s: list[float]) -> list[tuple[int, str]]:
    """A finished debate's events: running, one turn of tokens spaced by gaps_s, completed."""
    moment = START
    events = [protocol.event(protocol.STATUS_UPDATE, debate_id, 1, _iso(moment), status="running")]
    words = [f"w{i} " for i in range(len(gaps_s) - 1)]
    for i, gap in enumerate(gaps_s[:-1]):
        moment += timedelta(seconds=gap)
        events.append(
            protocol.event(
                protocol.TOKEN_RECEIVED,
                debate_id,
                len(events) + 1,
                _iso(moment),
                agent="bull",
                token=words[i],
                turn=1,
            )
        )
    moment += timedelta(seconds=gaps_s[-1])
    events.append(
        protocol.event(
            protocol.STATUS_UPDATE, debate_id, len(events) + 1, _iso(moment), status="completed"
        )
    )
    return [(e["payload"]["seq"], protocol.encode(e)) for e in events]


@pytest.fixture
def finished(db):
    """A completed debate whose archive has 1 + 4 + 1 events, 10 ms apart."""
    debate = Debate.objects.create(
        asset="AAPL", status=DebateStatus.COMPLETED, started_at=START, finished_at=timezone.now()
    )
    events = archived_events(debate.id, [0.01] * 5)
    assert archive_save(debate_id=debate.id, events=events)
    return debate, events


def socket(debate_id, query: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, f"/ws/debate/{debate_id}/?{query}", headers=[(b"origin", ORIGIN.encode())]
    )
    comm.scope["client"] = ("127.0.0.1", 50000)
    return comm


async def receive_all(comm, count: int) -> list[dict]:
    return [await comm.receive_json_from(timeout=10) for _ in range(count)]


async def expect_close(comm, code: int) -> dict:
    connected, _ = await comm.connect(timeout=10)
    assert connected
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == protocol.ERROR
    assert error["payload"]["code"] == code
    assert await comm.receive_output(timeout=10) == {"type": "websocket.close", "code": code}
    return error


# --- the schedule -----------------------------------------------------------------------------


def test_parse_replay_speeds_and_refusals():
    assert parse_replay({}) is None
    assert parse_replay({"speed": "10"}) is None  # no replay=1: watched as usual
    assert parse_replay({"replay": "1"}) == Replay(speed=1.0, at=0, label="1")
    assert parse_replay({"replay": "1", "speed": "10", "at": "7"}) == Replay(10.0, 7, "10")
    assert parse_replay({"replay": "1", "speed": "instant"}).instant
    for bad in ({"speed": "3"}, {"speed": "-1"}, {"at": "-2"}, {"at": "x"}, {"at": "9" * 13}):
        with pytest.raises(ReplayQueryError):
            parse_replay({"replay": "1", **bad})


def test_schedule_follows_timestamps_sped_up_and_caps_quiet_stretches():
    events = archived_events("d", [1.0, 2.0, 30.0, 0.5])
    # seq 1 at 0; gaps 1, 2, 30 (capped at 5), 0.5 seconds; x2.
    assert schedule(events, Replay(2.0, 0, "2"), max_gap_s=5.0) == [0.0, 0.5, 1.5, 4.0, 4.25]
    assert schedule(events, Replay(0.0, 0, "instant"), max_gap_s=5.0) == [0.0] * 5
    # Up to `at` at once, the event after it too (the jump lands on it), then paced.
    assert schedule(events, Replay(1.0, 2, "1"), max_gap_s=5.0) == [0.0, 0.0, 0.0, 5.0, 5.5]
    # A resume (events after lastSeq) starts at once with its first event.
    assert schedule(events[3:], Replay(10.0, 0, "10"), max_gap_s=5.0) == [0.0, 0.05]
    assert event_time(events[1][1]) == pytest.approx(START.timestamp() + 1.0)
    assert event_time("not json") is None


# --- replays over the socket --------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
async def test_replay_sends_every_event_in_order_then_the_socket_stays_open(finished):
    debate, events = finished
    comm = socket(debate.id, f"token={QA_TOKEN}&replay=1&speed=10")
    assert (await comm.connect(timeout=10))[0]
    first = await comm.receive_json_from(timeout=10)
    assert first["type"] == protocol.CONNECTED
    assert first["payload"]["replay"] == {"speed": "10", "at": 0}
    assert first["payload"]["lastSeq"] == len(events)
    received = await receive_all(comm, len(events))
    assert [orjson.dumps(m).decode() for m in received] == [text for _seq, text in events]
    await comm.send_json_to({"type": protocol.PING})
    assert (await comm.receive_json_from(timeout=10))["type"] == protocol.PONG
    await comm.disconnect()


@pytestmark_db
async def test_resume_inside_a_replay_continues_after_last_seq(finished):
    debate, events = finished
    comm = socket(debate.id, f"token={QA_TOKEN}&replay=1&speed=2&lastSeq=3")
    assert (await comm.connect(timeout=10))[0]
    first = await comm.receive_json_from(timeout=10)
    assert first["payload"]["reset"] is False
    rest = await receive_all(comm, len(events) - 3)
    assert [m["payload"]["seq"] for m in rest] == list(range(4, len(events) + 1))
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


@pytestmark_db
async def test_instant_replay_and_a_jump_to_a_seq(finished):
    debate, events = finished
    comm = socket(debate.id, f"token={QA_TOKEN}&replay=1&speed=instant&at=4")
    assert (await comm.connect(timeout=10))[0]
    first = await comm.receive_json_from(timeout=10)
    assert first["payload"]["replay"] == {"speed": "instant", "at": 4}
    received = await receive_all(comm, len(events))
    assert [m["payload"]["seq"] for m in received] == list(range(1, len(events) + 1))
    await comm.disconnect()


@pytestmark_db
async def test_a_disconnect_mid_replay_stops_it(finished):
    debate, _events = finished
    # One second between events at x1: the replay is still waiting when the viewer leaves.
    await database_sync_to_async(archive_save)(
        debate_id=debate.id, events=archived_events(debate.id, [1.0] * 5)
    )
    comm = socket(debate.id, f"token={QA_TOKEN}&replay=1&speed=1")
    assert (await comm.connect(timeout=10))[0]
    await receive_all(comm, 2)  # CONNECTED, seq 1
    await comm.disconnect()
    viewer = await database_sync_to_async(Viewer.objects.get)(debate=debate)
    assert viewer.disconnected_at is not None


@pytestmark_db
@pytest.mark.parametrize("query", ["speed=3", "speed=fast", "at=-1", "speed=10&at=x"])
async def test_a_bad_replay_query_is_refused_with_4400(finished, query):
    debate, _events = finished
    error = await expect_close(socket(debate.id, f"token={QA_TOKEN}&replay=1&{query}"), 4400)
    assert error["payload"]["reason"] == "invalid_replay"
    assert not await database_sync_to_async(Viewer.objects.filter(debate=debate).exists)()


@pytestmark_db
async def test_replay_of_a_running_debate_is_watched_live(db):
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL", status=DebateStatus.RUNNING, runner_id="t", heartbeat_at=timezone.now()
    )
    comm = socket(debate.id, f"token={QA_TOKEN}&replay=1&speed=10")
    assert (await comm.connect(timeout=10))[0]
    first = await comm.receive_json_from(timeout=10)
    assert first["type"] == protocol.CONNECTED
    assert "replay" not in first["payload"]
    await comm.disconnect()


# --- share links on the socket ------------------------------------------------------------------


@pytestmark_db
async def test_a_share_link_opens_its_debate_only_and_not_once_revoked(finished):
    debate, events = finished
    other = await database_sync_to_async(Debate.objects.create)(
        asset="BTC", status=DebateStatus.COMPLETED, finished_at=timezone.now()
    )
    link, token = await database_sync_to_async(services.share_link_create)(debate=debate, user=None)

    comm = socket(debate.id, f"share={token}&replay=1&speed=instant")
    assert (await comm.connect(timeout=10))[0]
    first = await comm.receive_json_from(timeout=10)
    assert first["type"] == protocol.CONNECTED
    assert len(await receive_all(comm, len(events))) == len(events)
    viewer = await database_sync_to_async(Viewer.objects.get)(debate=debate)
    assert viewer.user_id is None  # a share socket has no user
    await comm.disconnect()

    await expect_close(socket(other.id, f"share={token}"), 4001)  # another debate
    await expect_close(socket(debate.id, f"share={token}x"), 4001)  # not the token
    await expect_close(socket(debate.id, f"share={'a' * 200}"), 4001)  # too long to be one
    await database_sync_to_async(services.share_link_revoke)(link=link, user=None)
    await expect_close(socket(debate.id, f"share={token}"), 4001)  # revoked


@pytestmark_db
async def test_a_share_socket_cannot_moderate(finished):
    debate, events = finished
    _link, token = await database_sync_to_async(services.share_link_create)(
        debate=debate, user=None
    )
    comm = socket(debate.id, f"share={token}")
    assert (await comm.connect(timeout=10))[0]
    await receive_all(comm, 1 + len(events))
    await comm.send_json_to({"type": protocol.CONTROL, "action": "pause", "requestId": "r1"})
    answer = await comm.receive_json_from(timeout=10)
    assert answer["type"] == protocol.CONTROL_RESULT
    assert (answer["payload"]["status"], answer["payload"]["requestId"]) == (403, "r1")
    assert "only watches" in answer["payload"]["detail"]
    await comm.disconnect()


@pytestmark_db
async def test_revoking_a_share_link_closes_its_open_sockets_with_4001(finished):
    debate, events = finished
    link, token = await database_sync_to_async(services.share_link_create)(debate=debate, user=None)
    shared = socket(debate.id, f"share={token}")
    assert (await shared.connect(timeout=10))[0]
    await receive_all(shared, 1 + len(events))
    other, _first = await connect_qa(debate.id)  # a signed-in viewer of the same debate
    await receive_all(other, len(events))

    await database_sync_to_async(services.share_link_revoke)(link=link, user=None)
    error = await shared.receive_json_from(timeout=10)
    assert error["type"] == protocol.ERROR
    assert error["payload"]["code"] == 4001
    assert error["payload"]["message"] == "The share link was revoked."
    assert await shared.receive_output(timeout=10) == {"type": "websocket.close", "code": 4001}
    assert await other.receive_nothing(timeout=0.2)  # the other viewer watches on
    await other.disconnect()


async def connect_qa(debate_id):
    comm = socket(debate_id, f"token={QA_TOKEN}")
    assert (await comm.connect(timeout=10))[0]
    return comm, await comm.receive_json_from(timeout=10)


@pytestmark_db
async def test_a_share_link_watches_a_running_debate_live():
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL", status=DebateStatus.RUNNING, runner_id="t", heartbeat_at=timezone.now()
    )
    _link, token = await database_sync_to_async(services.share_link_create)(
        debate=debate, user=None
    )
    comm = socket(debate.id, f"share={token}")
    assert (await comm.connect(timeout=10))[0]
    first = await comm.receive_json_from(timeout=10)
    assert first["payload"]["status"] == "running"
    await publish_event(debate.id, protocol.TURN_CHANGE, {"currentAgent": "bull", "turn": 1})
    live = await comm.receive_json_from(timeout=10)
    assert live["type"] == protocol.TURN_CHANGE
    assert live["payload"]["seq"] == 1
    await comm.disconnect()


@pytestmark_db
async def test_share_sockets_are_rate_limited_per_ip(finished, settings):
    debate, _events = finished
    settings.WS_RATE_LIMIT = "2/minute"
    _link, token = await database_sync_to_async(services.share_link_create)(
        debate=debate, user=None
    )
    for _ in range(2):
        comm = socket(debate.id, f"share={token}&replay=1&speed=instant")
        assert (await comm.connect(timeout=10))[0]
        assert (await comm.receive_json_from(timeout=10))["type"] == protocol.CONNECTED
        await comm.disconnect()
    await expect_close(socket(debate.id, f"share={token}"), 4029)
