"""Real daphne processes for the WebSocket end-to-end tests, always killed afterwards.

``daphne_cluster(tmp_dir, n, redis=True, **env)`` migrates a fresh database (a SQLite file in
tmp, or a new PostgreSQL database when DATABASE_URL is postgres, dropped afterwards), creates the
test user, starts ``n`` daphne processes sharing that database and Redis (unique key and channel
prefixes per cluster), waits for /healthz and yields the servers. Each process's stdout and
stderr go to their own files (the log-redaction test greps them).
"""

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
STARTUP_DEADLINE_S = 60
USERNAME = "ws-e2e"
PASSWORD = "ws-e2e-password-1"
QA_TOKEN = "qa-e2e-token-0123456789"
ORIGIN = "http://localhost:8000"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@dataclass
class Daphne:
    """One daphne process."""

    port: int
    env: dict
    stdout_path: Path
    stderr_path: Path
    proc: subprocess.Popen | None = None
    ping: tuple[float, float] = (20, 30)  # daphne's --ping-interval / --ping-timeout

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, debate_id, token: str | None = QA_TOKEN, last_seq: int | None = None) -> str:
        """The debate socket URL on this process."""
        query = []
        if token is not None:
            query.append(f"token={token}")
        if last_seq is not None:
            query.append(f"lastSeq={last_seq}")
        suffix = ("?" + "&".join(query)) if query else ""
        return f"ws://127.0.0.1:{self.port}/ws/debate/{debate_id}/{suffix}"

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """Call the REST API; return (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                ctype = response.headers.get("Content-Type", "")
                return response.status, json.loads(raw) if raw and "json" in ctype else raw
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, raw

    def token(self) -> dict:
        """A fresh JWT pair for the test user."""
        status, data = self.api(
            "POST", "/api/auth/token/", {"username": USERNAME, "password": PASSWORD}
        )
        assert status == 200, data
        return data

    def start(self) -> None:
        """Start daphne and wait until /healthz answers."""
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "--ping-interval",
                    str(self.ping[0]),
                    "--ping-timeout",
                    str(self.ping[1]),
                    "tradeapp.asgi:application",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer in time:\n{self.logs()[-4000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, the whole process group."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def logs(self) -> str:
        """Everything the process wrote to stdout and stderr."""
        parts = [p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path)]
        return "\n".join(parts)


def _database_url(tmp_dir: Path) -> tuple[str, object]:
    """A fresh database: PostgreSQL when the test run uses it, else a SQLite file."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp_dir / f'ws-e2e-{uuid.uuid4().hex[:6]}.sqlite3'}", None
    import psycopg

    name = f"tradeapp_ws_{uuid.uuid4().hex[:10]}"
    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + f"/{name}", drop


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@contextlib.contextmanager
def daphne_cluster(
    tmp_dir: Path,
    count: int = 1,
    *,
    use_redis: bool = True,
    ping: tuple[float, float] = (20, 30),
    **extra_env: str,
):
    """`count` daphne processes on one fresh database (and Redis); torn down on exit."""
    db_url, drop_db = _database_url(tmp_dir)
    prefix = f"wse2e-{uuid.uuid4().hex[:10]}"
    metrics_dir = tmp_dir / f"prom-{prefix}"
    metrics_dir.mkdir()  # fresh, i.e. wiped, for this cluster
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeapp.settings",
        "DATABASE_URL": db_url,
        "DEBUG": "1",
        "WS_QA_TOKEN": QA_TOKEN,
        "WS_ALLOWED_ORIGINS": ORIGIN,
        "WS_RATE_LIMIT": "100000/minute",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STREAMING_KEY_PREFIX": prefix,
        "CHANNEL_LAYER_PREFIX": prefix,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    if use_redis:
        env["REDIS_URL"] = require_redis()
    else:
        env.pop("REDIS_URL", None)
    servers: list[Daphne] = []
    try:
        _manage(env, "migrate", "--noinput")
        _manage(env, "ensure_demo_user", "--username", USERNAME, "--password", PASSWORD)
        for _ in range(count):
            port = free_port()
            server = Daphne(
                port=port,
                env=env,
                stdout_path=tmp_dir / f"daphne-{port}.out",
                stderr_path=tmp_dir / f"daphne-{port}.err",
                ping=ping,
            )
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        if drop_db:
            drop_db()
        if use_redis:
            client = redis.Redis.from_url(env["REDIS_URL"])
            try:
                keys = list(client.scan_iter(f"{prefix}*"))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


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
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from debates.models import Argument, Debate
    from streaming import protocol
    from streaming.publisher import publish_event

    await sync_to_async(Debate.objects.filter(pk=debate_id).update, thread_sensitive=False)(
        status="running", started_at=timezone.now()
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
