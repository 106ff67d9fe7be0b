"""A viewer that stops reading, against a real daphne: the send-buffer bound drops it, the
server's memory stays bounded meanwhile (RSS measured), and the viewer resumes exactly."""

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streaming import protocol
from tests.e2e.servers import (
    ORIGIN,
    QA_TOKEN,
    ROOT,
    RawSocket,
    daphne_cluster,
    synthetic_debate,
)

pytestmark = pytest.mark.e2e

DEADLINE_S = 120
MIB = 1024 * 1024
LIMIT = 256 * 1024
GRACE_S = 1
TURNS, TOKENS, TOKEN_CHARS = 16, 50, 16384  # ~26 MB of frames, ~820 KB per argument
# The bound: LIMIT, plus what arrives within the grace (~3 MB/s here), plus one fan-out and the
# allocator's slack (measured: 4.6-5.1 MiB). Unbounded, the same run grew by 26 MiB: the whole
# stream less the ~2.7 MB the kernel's send buffer holds (docs/streaming.md).
RSS_BOUND = 10 * MIB
FINAL = set(protocol.FINAL_STATUSES)
DROPPED = re.compile(r"dropping a slow viewer: (\d+) bytes unsent")


def _counter(server, name: str) -> float:
    status, body = server.api("GET", "/metrics")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name
    )


class _RssSampler(threading.Thread):
    """Samples a process's resident set size every 20 ms until stopped; `peak` is the largest."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self.stopped = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.stopped.wait(0.02)


def _frames_until_closed(raw: RawSocket) -> list[dict]:
    """The whole text frames a dropped socket still delivers, up to its end."""
    raw.sock.settimeout(DEADLINE_S)
    events = []
    try:
        while True:
            events.append(raw.recv_json())
    except OSError:  # reset, closed, or a frame cut by the abort
        return events


async def _resume(server, debate_id: str, last_seq: int | None) -> list[dict]:
    """Reconnect with lastSeq until the final status (again after any drop); every event."""
    events = []
    for _attempt in range(20):
        try:
            url = server.ws_url(debate_id, last_seq=last_seq)
            async with connect(url, origin=ORIGIN, max_size=None) as ws:
                assert json.loads(await ws.recv())["type"] == "DEBATE/CONNECTED"
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
                    if message["type"] == "DEBATE/PING":
                        continue
                    events.append(message)
                    last_seq = message["payload"]["seq"]
                    payload = message["payload"]
                    if message["type"] == "DEBATE/STATUS_UPDATE" and payload["status"] in FINAL:
                        return events
        except ConnectionClosed:
            continue  # a catch-up the bound judged too slow to read: resume again
    raise AssertionError("the viewer never got to the end of the debate")


def _check_exact(events: list[dict]) -> None:
    """Every seq once, in order, and each turn's tokens spell its argument."""
    seqs = [e["payload"]["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "a seq is missing, repeated or out of order"
    assert events[-1]["payload"]["status"] == "completed"
    arguments = [e["payload"] for e in events if e["type"] == "DEBATE/ARGUMENT_COMPLETE"]
    assert [a["turn"] for a in arguments] == list(range(1, TURNS + 1))
    for argument in arguments:
        spelled = "".join(
            e["payload"]["token"]
            for e in events
            if e["type"] == "DEBATE/TOKEN_RECEIVED" and e["payload"]["turn"] == argument["turn"]
        )
        assert spelled == argument["content"]


async def test_a_viewer_that_stops_reading_is_dropped_with_memory_bounded(tmp_path):
    env = {"WS_SEND_BUFFER_LIMIT_BYTES": str(LIMIT), "WS_SEND_BUFFER_GRACE_S": str(GRACE_S)}
    # No protocol pings: only the bound may drop the stalled socket, however slow the box.
    with daphne_cluster(tmp_path, 1, ping=(600, 600), **env) as (server,):
        access = server.token()["access"]
        status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201, debate
        debate_id = debate["id"]
        path = f"/ws/debate/{debate_id}/?token={QA_TOKEN}"
        # A 4 KiB receive window: the kernel takes a few MB for it (the sender's buffer) at most.
        stalled = await asyncio.to_thread(RawSocket.open, server, path, 4096)
        try:
            assert (await asyncio.to_thread(stalled.recv_json))["type"] == "DEBATE/CONNECTED"
            # From here on the viewer reads nothing until it has been dropped.
            sampler = _RssSampler(server.proc.pid)
            baseline = sampler.process.memory_info().rss
            sampler.start()
            producer = synthetic_debate(
                server.env, debate_id, TURNS, TOKENS, rate=100, token_chars=TOKEN_CHARS
            )
            try:
                assert await asyncio.to_thread(producer.wait, DEADLINE_S) == 0
            finally:
                if producer.poll() is None:
                    producer.kill()
            deadline = time.monotonic() + DEADLINE_S
            while not (dropped := re.findall(DROPPED, server.logs())):
                assert time.monotonic() < deadline, "the stalled viewer was never dropped"
                await asyncio.sleep(0.2)
            sampler.stopped.set()
            await asyncio.to_thread(sampler.join)
            assert len(dropped) == 1, server.logs()[-4000:]
            assert _counter(server, "ws_slow_viewers_dropped_total") == 1
            before_drop = await asyncio.to_thread(_frames_until_closed, stalled)
        finally:
            stalled.close()

        before_drop = [e for e in before_drop if "seq" in e["payload"]]  # not CONNECTED
        last_seq = before_drop[-1]["payload"]["seq"] if before_drop else None
        events = before_drop + await _resume(server, debate_id, last_seq)
        _check_exact(events)
        stream = sum(len(json.dumps(e)) for e in events)
        growth = sampler.peak - baseline
        print(
            f"stream {stream / MIB:.1f} MiB; unsent at the drop {int(dropped[0]) / MIB:.2f} MiB; "
            f"RSS growth during the stall {growth / MIB:.1f} MiB (bound {RSS_BOUND / MIB:.0f})"
        )
        assert stream > 2 * RSS_BOUND  # far more than the bound went past the stalled viewer
        assert growth < RSS_BOUND


STOPPED_S = 60


async def test_a_client_process_stopped_for_a_minute_is_dropped_and_resumes(tmp_path):
    """The same stall, caused for real: a viewer process SIGSTOPped for 60 s while the debate
    streams past it, then SIGCONTed; it resumes by itself and ends with every event once."""
    env = {"WS_SEND_BUFFER_LIMIT_BYTES": str(LIMIT), "WS_SEND_BUFFER_GRACE_S": str(GRACE_S)}
    with daphne_cluster(tmp_path, 1, ping=(600, 600), **env) as (server,):
        access = server.token()["access"]
        status, debate = server.api("POST", "/api/debates/", {"asset": "AAPL"}, access)
        assert status == 201, debate
        debate_id = debate["id"]
        output = tmp_path / "reader.jsonl"
        reader = subprocess.Popen(  # noqa: ASYNC220 - started once, never waited for here
            [
                sys.executable,
                "-m",
                "tests.faults.ws_reader",
                server.ws_url(debate_id),
                output,
                "4096",
            ],
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + DEADLINE_S
            while not (output.exists() and "connected" in output.read_text()):
                assert time.monotonic() < deadline, "the reader never connected"
                assert reader.poll() is None, "the reader exited"
                await asyncio.sleep(0.1)
            reader.send_signal(signal.SIGSTOP)
            stopped_at = time.monotonic()
            sampler = _RssSampler(server.proc.pid)
            baseline = sampler.process.memory_info().rss
            sampler.start()
            producer = synthetic_debate(
                server.env, debate_id, TURNS, TOKENS, rate=100, token_chars=TOKEN_CHARS
            )
            try:
                assert await asyncio.to_thread(producer.wait, DEADLINE_S) == 0
            finally:
                if producer.poll() is None:
                    producer.kill()
            while not re.findall(DROPPED, server.logs()):
                assert time.monotonic() < deadline, "the stopped viewer was never dropped"
                await asyncio.sleep(0.2)
            await asyncio.sleep(max(0.0, STOPPED_S - (time.monotonic() - stopped_at)))
            sampler.stopped.set()
            await asyncio.to_thread(sampler.join)
            reader.send_signal(signal.SIGCONT)
            assert await asyncio.to_thread(reader.wait, DEADLINE_S) == 0
        finally:
            if reader.poll() is None:
                reader.send_signal(signal.SIGCONT)
                reader.kill()
                reader.wait(timeout=10)
        lines = [json.loads(line) for line in output.read_text().splitlines()]
        events = [line for line in lines if "type" in line]
        _check_exact(events)
        assert any("dropped" in line for line in lines)  # it was dropped, then resumed
        assert _counter(server, "ws_slow_viewers_dropped_total") >= 1
        growth = sampler.peak - baseline
        print(f"RSS growth while the viewer was stopped: {growth / MIB:.1f} MiB")
        assert growth < RSS_BOUND
