"""The viewer ledger: batched Viewer writes on connect and disconnect, and their failures."""

import asyncio
import threading
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone

from debates.models import Debate, DebateStatus
from streaming import backends, consumers, presence, protocol, services
from streaming.ledger import get_ledger
from streaming.models import Viewer
from tests.streaming.conftest import communicator, connect

pytestmark = pytest.mark.django_db(transaction=True)


class Gate:
    """Wraps a service: records batch sizes and holds the first call until released."""

    def __init__(self, real) -> None:
        self.real = real
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, **kwargs):
        batch = kwargs.get("requests") or kwargs.get("viewer_ids")
        self.sizes.append(len(batch))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(30)
        return self.real(**kwargs)


async def until(predicate, rounds: int = 3000) -> None:
    """Let the loop run until predicate() holds (bounded, no assertion on time)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def _rows(debate) -> list[Viewer]:
    return list(Viewer.objects.filter(debate=debate).order_by("pk"))


async def test_concurrent_connects_share_one_database_batch(debate, monkeypatch):
    gate = Gate(services.viewers_open)
    monkeypatch.setattr(services, "viewers_open", gate)
    first = asyncio.create_task(connect(debate.id))
    await until(gate.entered.is_set)  # the first batch holds the database thread
    others = [asyncio.create_task(connect(debate.id)) for _ in range(7)]
    await until(lambda: len(get_ledger()._opens) == 7)
    gate.release.set()
    results = await asyncio.gather(first, *others)

    assert gate.sizes == [1, 7]
    assert [m["type"] for _c, m in results] == [protocol.CONNECTED] * 8
    counts = [m["payload"]["viewers"] for _c, m in results]
    assert counts[0] == 1  # alone when it connected
    assert all(2 <= n <= 8 for n in counts[1:])
    assert max(counts) == 8
    rows = await database_sync_to_async(_rows)(debate)
    assert len(rows) == 8
    assert all(row.disconnected_at is None and row.process for row in rows)
    for comm, _m in results:
        await comm.disconnect()
    rows = await database_sync_to_async(_rows)(debate)
    assert all(row.disconnected_at is not None for row in rows)


async def test_a_failed_batch_closes_its_sockets_4500_and_writes_nothing(debate, monkeypatch):
    gate = Gate(services.viewers_open)
    monkeypatch.setattr(services, "viewers_open", gate)
    calls = []
    real_insert = Viewer.objects.bulk_create

    def insert_then_fail_once(rows, **kwargs):
        calls.append(rows)
        inserted = real_insert(rows, **kwargs)
        if len(calls) == 2:
            raise DatabaseError("simulated failure inside the second batch, after its inserts")
        return inserted

    monkeypatch.setattr(Viewer.objects, "bulk_create", insert_then_fail_once)
    first = asyncio.create_task(connect(debate.id))
    await until(gate.entered.is_set)
    failing = [communicator(debate.id) for _ in range(3)]
    handshakes = [asyncio.create_task(comm.connect(timeout=10)) for comm in failing]
    await until(lambda: len(get_ledger()._opens) == 3)
    gate.release.set()
    kept, hello = await first

    assert hello["type"] == protocol.CONNECTED
    for comm, handshake in zip(failing, handshakes, strict=True):
        assert (await handshake)[0]
        error = await comm.receive_json_from(timeout=10)
        assert error["payload"]["code"] == 4500
        assert await comm.receive_output(timeout=10) == {"type": "websocket.close", "code": 4500}
    assert gate.sizes == [1, 3]
    # The failed batch's rows were inserted, then rolled back with it.
    rows = await database_sync_to_async(_rows)(debate)
    assert len(rows) == 1
    # The ledger goes on: the next connect is written and counted.
    again, message = await connect(debate.id)
    assert message["payload"]["viewers"] == 2
    await again.disconnect()
    await kept.disconnect()


async def test_opens_and_closes_issued_together_are_one_batch_each(debate, monkeypatch):
    closes = Gate(services.viewers_close)
    closes.release.set()
    monkeypatch.setattr(services, "viewers_close", closes)
    book = get_ledger()
    missing = uuid.uuid4()
    requests = [debate.id, debate.id, debate.id, missing]
    opened = await asyncio.gather(*(book.open(debate_id=d, client_ip="10.0.0.1") for d in requests))
    assert opened[3] is None
    viewers = opened[:3]
    assert all(viewer.debate.pk == debate.pk for viewer in viewers)
    await asyncio.gather(*(book.close(viewer_id=v.pk) for v in viewers))
    assert closes.sizes == [3]
    rows = await database_sync_to_async(_rows)(debate)
    assert [row.disconnected_at is not None for row in rows] == [True] * 3


async def test_a_socket_gone_while_its_row_is_written_gets_the_row_closed(debate, monkeypatch):
    gate = Gate(services.viewers_open)
    monkeypatch.setattr(services, "viewers_open", gate)
    book = get_ledger()
    task = asyncio.create_task(book.open(debate_id=debate.id, client_ip=None))
    await until(gate.entered.is_set)
    task.cancel()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: book._task is None)
    rows = await database_sync_to_async(_rows)(debate)
    assert len(rows) == 1
    assert rows[0].disconnected_at is not None


async def test_connected_viewers_counts_other_processes_viewers(debate, use_redis):
    client = backends.redis_client()
    now = int((await client.time())[0])
    # Another server process reported one viewer of this debate, as streaming.presence does.
    await client.hset(backends.key("audience", debate.id), "other-process", f"1:{now}")
    comm, _first = await connect(debate.id)
    await until(lambda: str(debate.id) in presence._seen)  # the others' count, read back
    second, hello = await connect(debate.id)
    assert hello["payload"]["viewers"] == 3
    await presence.publish_counts()  # what the flush does at most FLUSH_S after a change
    assert await presence.audience(debate.id) == 3
    await second.disconnect()
    await comm.disconnect()


async def test_a_pending_debate_without_a_log_reads_nothing_else(db, monkeypatch):
    """Its log is the truth: no archive, no synthesis, no second debate read."""
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL", status=DebateStatus.PENDING
    )

    def forbidden(*args, **kwargs):
        raise AssertionError("the database rebuild ran for a pending debate")

    monkeypatch.setattr(consumers, "archive_read", forbidden)
    monkeypatch.setattr(consumers, "archive_debate", forbidden)
    comm, first = await connect(debate.id, last_seq=3)
    assert first["payload"] == {
        "debateId": str(debate.id),
        "status": "pending",
        "lastSeq": 0,
        "viewers": 1,
        "reset": False,
    }
    assert await comm.receive_nothing(timeout=0.1)
    await comm.disconnect()


async def test_a_finished_debate_without_a_log_is_still_rebuilt(db):
    debate = await database_sync_to_async(Debate.objects.create)(
        asset="AAPL",
        status=DebateStatus.CANCELLED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    comm, first = await connect(debate.id)
    assert first["payload"]["lastSeq"] == 2  # synthesised: running, then cancelled
    statuses = [(await comm.receive_json_from(timeout=5))["payload"]["status"] for _ in range(2)]
    assert statuses == ["running", "cancelled"]
    await comm.disconnect()


async def test_connect_and_disconnect_skip_channels_close_old_connections(debate, monkeypatch):
    calls = []

    async def counting():
        calls.append(True)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counting)
    comm, first = await connect(debate.id)
    assert first["type"] == protocol.CONNECTED
    await comm.send_json_to({"type": "DEBATE/PING"})
    assert (await comm.receive_json_from(timeout=5))["type"] == protocol.PONG
    await comm.disconnect()
    assert calls == []
    row = await database_sync_to_async(Viewer.objects.get)(debate=debate)
    assert row.disconnected_at is not None


async def test_each_event_loop_has_its_own_ledger(debate):
    here = get_ledger()
    assert get_ledger() is here

    def other_loop():
        async def probe():
            return get_ledger()

        return asyncio.run(probe())

    assert await asyncio.to_thread(other_loop) is not here
