"""/metrics exposes the streaming metrics; finished debates are synthesised in order."""

import os

import orjson
import pytest
from django.utils import timezone

from debates.models import Argument, Debate, DebateStatus
from streaming.archive import synthesise_events


def test_metrics_endpoint_lists_streaming_metrics(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.content.decode()
    for name in [
        "ws_active_connections",
        "ws_messages_sent_total",
        "ws_reconnections_total",
        "ws_event_send_latency_seconds_bucket",
        "debate_time_to_first_token_seconds_bucket",
    ]:
        assert name in body


@pytest.mark.django_db
def test_synthesis_of_a_finished_debate():
    debate = Debate.objects.create(
        asset="AAPL", status=DebateStatus.CANCELLED, started_at=timezone.now()
    )
    Argument.objects.create(debate=debate, turn=1, agent="bull", content="Up.")
    events = [orjson.loads(text) for _, text in synthesise_events(debate)]
    assert [e["payload"]["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0]["payload"]["status"] == "running"
    assert events[2]["payload"]["token"] == events[3]["payload"]["content"] == "Up."
    assert events[-1]["payload"]["status"] == "cancelled"


@pytest.mark.django_db
def test_no_synthesis_while_running():
    debate = Debate.objects.create(asset="AAPL", status=DebateStatus.RUNNING)
    assert synthesise_events(debate) == []


def test_dead_processes_leave_the_live_gauges(tmp_path):
    from streaming.metrics import reap_dead_processes

    dead_pid = 2**22 + 12345  # above Linux's pid_max default ceiling: never a live process
    for name in [
        f"gauge_livesum_{dead_pid}.db",
        f"counter_{dead_pid}.db",
        f"histogram_{dead_pid}.db",
        f"gauge_livesum_{os.getpid()}.db",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert reap_dead_processes(str(tmp_path)) == [dead_pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    )
