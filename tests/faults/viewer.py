"""A viewer that behaves like the web page (tests/faults): it resumes with lastSeq after any drop,
starts over on CONNECTED.reset, and records what it saw and every close code it got."""

import asyncio
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from streaming import protocol
from tests.e2e.servers import ORIGIN

FINAL = set(protocol.FINAL_STATUSES)


class Viewer:
    """Watches one debate until its final status, over any of `servers` (round robin on drops)."""

    def __init__(self, servers, debate_id: str, *, attempts: int = 200) -> None:
        self.servers = list(servers)
        self.debate_id = debate_id
        self.attempts = attempts
        self.events: list[dict] = []  # the debate's events, seq 1.. without gap (after resets)
        self.arrived: list[float] = []  # monotonic arrival time of each event
        self.closes: list[int] = []  # close codes of dropped sockets
        self.errors: list[dict] = []  # DEBATE/ERROR payloads
        self.notices: list[dict] = []  # messages without a seq other than CONNECTED/PING/PONG
        self.http_statuses: list[int] = []  # a refused handshake's HTTP status
        self.connects = 0
        self.connected = asyncio.Event()

    @property
    def last_seq(self) -> int:
        """The newest seq held."""
        return self.events[-1]["payload"]["seq"] if self.events else 0

    def final_status(self) -> str | None:
        """The status of the final STATUS_UPDATE seen, if any."""
        for event in reversed(self.events):
            if event["type"] == protocol.STATUS_UPDATE and event["payload"]["status"] in FINAL:
                return event["payload"]["status"]
        return None

    def running_at(self) -> list[float]:
        """Arrival times of every STATUS_UPDATE running (a takeover sends it again)."""
        return [
            at
            for event, at in zip(self.events, self.arrived, strict=True)
            if event["type"] == protocol.STATUS_UPDATE and event["payload"]["status"] == "running"
        ]

    def arguments(self) -> dict[int, str]:
        """turn -> content of every ARGUMENT_COMPLETE seen."""
        return {
            e["payload"]["turn"]: e["payload"]["content"]
            for e in self.events
            if e["type"] == protocol.ARGUMENT_COMPLETE
        }

    async def watch(self, timeout_s: float = 240) -> "Viewer":
        """Watch to the final status (or raise after `timeout_s`)."""
        await asyncio.wait_for(self._watch(), timeout_s)
        return self

    async def _watch(self) -> None:
        for attempt in range(self.attempts):
            server = self.servers[attempt % len(self.servers)]
            if not server.alive():
                continue
            url = server.ws_url(self.debate_id, last_seq=self.last_seq or None)
            try:
                async with connect(url, origin=ORIGIN, open_timeout=30) as ws:
                    if await self._read(ws):
                        return
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                self.closes.append(code)
            except InvalidStatus as exc:
                self.http_statuses.append(exc.response.status_code)
            except (InvalidHandshake, OSError):  # a process dying mid-handshake
                self.closes.append(1006)
            await asyncio.sleep(0.3)
        raise AssertionError(f"debate {self.debate_id}: no final status for this viewer")

    async def _read(self, ws) -> bool:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            kind, payload = message["type"], message.get("payload", {})
            if kind == protocol.CONNECTED:
                self.connects += 1
                self.connected.set()
                if payload.get("reset"):
                    self.events.clear()
                    self.arrived.clear()
                continue
            if kind == protocol.ERROR:
                self.errors.append(payload)
                continue
            if "seq" not in payload:
                if kind not in (protocol.PING, protocol.PONG):
                    self.notices.append({**message, "arrived": time.monotonic()})
                continue
            assert payload["seq"] == self.last_seq + 1, (
                f"seq {payload['seq']} after {self.last_seq}: a gap or a duplicate"
            )
            self.events.append(message)
            self.arrived.append(time.monotonic())
            if kind == protocol.STATUS_UPDATE and payload["status"] in FINAL:
                return True
