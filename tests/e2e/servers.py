"""Real daphne processes for the WebSocket end-to-end tests, always killed afterwards.

``daphne_cluster(tmp_dir, n, use_redis=True, **env)`` starts a cluster of the shared launcher
(bench/launcher.py): a fresh database (a SQLite file in tmp, or a new PostgreSQL database when
DATABASE_URL is postgres, dropped afterwards), the test user, ``n`` daphne processes sharing that
database and Redis (unique key and channel prefixes per cluster), each with its own stdout and
stderr files (the log-redaction test greps them).
"""

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bench.launcher import BASE_DIR as ROOT
from bench.launcher import Server, ServerOptions, cluster

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

PYTHON = sys.executable
USERNAME = "ws-e2e"
PASSWORD = "ws-e2e-password-1"
QA_TOKEN = "qa-e2e-token-0123456789"
ORIGIN = "http://localhost:8000"

Daphne = Server  # what daphne_cluster yields


def require_redis() -> str:
    """The test Redis; fail (never skip) when it is down."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {TEST_REDIS_URL} is required for this test and is down: {exc}")
    finally:
        client.close()
    return TEST_REDIS_URL


@contextlib.contextmanager
def daphne_cluster(
    tmp_dir: Path,
    count: int = 1,
    *,
    use_redis: bool = True,
    redis_url: str | None = None,
    ping: tuple[float, float] = (20, 30),
    **extra_env: str,
):
    """`count` daphne processes on one fresh database (and Redis: the test Redis, or
    `redis_url`, several nodes separated by commas); torn down on exit."""
    with cluster(
        tmp_dir,
        count,
        name="wse2e",
        options=ServerOptions(ping=ping),
        redis_url=(redis_url or require_redis()) if use_redis else None,
        qa_token=QA_TOKEN,
        origins=ORIGIN,
        user=(USERNAME, PASSWORD),
        env={"DEBUG": "1", "WS_RATE_LIMIT": "100000/minute", **extra_env},
    ) as launched:
        yield launched.servers


# --- a raw WebSocket client that can stop reading or stop answering pings ------------------


class RawSocket:
    """A WebSocket over a plain TCP socket: it answers nothing (no pong) unless told."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""

    @classmethod
    def open(cls, server: Daphne, path: str, rcvbuf: int | None = None) -> "RawSocket":
        """Connect and complete the handshake (Origin allowed)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
        )
        sock.sendall(request.encode())
        raw = cls(sock)
        head = raw._read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return raw

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.pending += chunk
        head, self.pending = self.pending.split(marker, 1)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.pending += chunk
        data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def recv_frame(self) -> tuple[int, bytes]:
        """One server frame: (opcode, payload); pings are returned, never answered."""
        first, second = self._read_exact(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._read_exact(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read_exact(8), "big")
        return first & 0x0F, self._read_exact(length)

    def recv_json(self) -> dict:
        """The next text frame as JSON (skipping control frames)."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x1:
                return json.loads(payload)

    def wait_closed(self, deadline_s: float = 120) -> None:
        """Read (never answering pings) until the server ends the connection."""
        self.sock.settimeout(deadline_s)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass

    def close(self) -> None:
        """Drop the TCP connection."""
        with contextlib.suppress(OSError):
            self.sock.close()


# --- a synthetic producer, for when the test must not depend on the engine ------------------

WORDS = [
    "price",
    "volume",
    "trend",
    "momentum",
    "support",
    "resistance",
    "margin",
    "growth",
    "risk",
    "cash",
]


async def _produce(
    debate_id: str, turns: int, tokens_per_turn: int, rate: float, token_chars: int = 0
) -> None:
    from datetime import timedelta

    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from debates.models import Argument, Debate
    from streaming import protocol
    from streaming.publisher import publish_event

    # No run heartbeats for a synthetic debate: a heartbeat far ahead keeps every janitor's
    # takeover (a sweep every DEBATE_SWEEP_S) away from it.
    await sync_to_async(Debate.objects.filter(pk=debate_id).update, thread_sensitive=False)(
        status="running",
        started_at=timezone.now(),
        runner_id="synthetic",
        heartbeat_at=timezone.now() + timedelta(days=1),
    )
    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "running"})
    for turn in range(1, turns + 1):
        agent = "bull" if turn % 2 else "bear"
        await publish_event(debate_id, protocol.TURN_CHANGE, {"currentAgent": agent, "turn": turn})
        tokens = [f"{WORDS[(turn * 7 + i) % len(WORDS)]}{i} " for i in range(tokens_per_turn)]
        if token_chars:
            tokens = [(token * token_chars)[:token_chars] for token in tokens]
        for token in tokens:
            await publish_event(
                debate_id, protocol.TOKEN_RECEIVED, {"agent": agent, "token": token, "turn": turn}
            )
            if rate > 0:
                await asyncio.sleep(1 / rate)
        content = "".join(tokens)
        await sync_to_async(Argument.objects.create, thread_sensitive=False)(
            debate_id=debate_id, turn=turn, agent=agent, content=content
        )
        await publish_event(
            debate_id,
            protocol.ARGUMENT_COMPLETE,
            {"agent": agent, "content": content, "turn": turn},
        )
    await sync_to_async(Debate.objects.filter(pk=debate_id).update, thread_sensitive=False)(
        status="completed", finished_at=timezone.now()
    )
    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": "completed"})


def synthetic_debate(
    env: dict,
    debate_id: str,
    turns: int = 3,
    tokens_per_turn: int = 60,
    rate: float = 150.0,
    token_chars: int = 0,
) -> subprocess.Popen:
    """Start a producer process that runs a scripted debate through publish_event
    (rate 0: as fast as possible; token_chars > 0: each token padded to that many chars)."""
    return subprocess.Popen(
        [
            PYTHON,
            "-m",
            "tests.e2e.servers",
            "produce",
            debate_id,
            str(turns),
            str(tokens_per_turn),
            str(rate),
            str(token_chars),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


if __name__ == "__main__" and sys.argv[1:2] == ["produce"]:
    import django

    django.setup()
    _id, _turns, _tokens, _rate, _chars = (
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        float(sys.argv[5]),
        int(sys.argv[6]) if len(sys.argv) > 6 else 0,
    )
    asyncio.run(_produce(_id, _turns, _tokens, _rate, _chars))
