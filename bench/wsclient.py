"""A minimal WebSocket viewer on raw asyncio protocols, cheap enough to run thousands per process.

The `websockets` library costs tens of µs and tens of KB per connection on the client side; on a
2-core box shared with the servers that would measure the load generator, not the server. This
client does the RFC 6455 client handshake, reads unmasked server frames straight from
`data_received`, answers pings and closes, and keeps per-viewer state in a few slots.

Like the web page (static/js/debate-socket.js), a viewer whose socket is lost before the debate
ended reconnects (``keep_watching``): exponential backoff with jitter, another server, and
``lastSeq``; its seq bookkeeping runs on across sockets, so a resume that skips or repeats an
event shows as a gap or a duplicate. Each event's latency is measured twice: from its
``timestamp`` (when the server created it: production -> receipt) and from its ``publishedAt``
(when the publisher's outbox sent it: flush -> receipt). Events replayed by a catch-up are
counted, not timed.
"""

import asyncio
import base64
import os
import random
import struct
import time
from collections import defaultdict
from datetime import datetime

import orjson

from streaming import protocol
from streaming.protocol import CONNECTED, ERROR, STATUS_UPDATE, TOKEN_RECEIVED, VOTES

# Debate statuses after which no event follows; streaming.protocol has no name for them yet.
FINAL_STATUSES = frozenset(protocol.FINAL_STATUSES)

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

_ts_cache: dict[str, float] = {}


def parse_ts(ts: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp, cached (every viewer sees the same strings)."""
    value = _ts_cache.get(ts)
    if value is None:
        value = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        if len(_ts_cache) > 100_000:
            _ts_cache.clear()
        _ts_cache[ts] = value
    return value


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (clients must mask, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x80 | opcode])
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class Stats:
    """What one client process measures, merged by the parent."""

    def __init__(self) -> None:
        # 0.1 ms buckets: token latency from production (timestamp) and from the flush
        # (publishedAt), the same for every other live event.
        self.token_hist: dict[int, int] = defaultdict(int)
        self.token_flush_hist: dict[int, int] = defaultdict(int)
        self.other_hist: dict[int, int] = defaultdict(int)
        self.other_flush_hist: dict[int, int] = defaultdict(int)
        # Token latency (production) of viewers that never lost their socket, received within
        # [storm_from, storm_until): what the rest of the audience saw while a server was lost.
        self.storm_hist: dict[int, int] = defaultdict(int)
        self.storm_from = float("inf")
        self.storm_until = float("inf")
        self.token_max = 0.0
        self.token_frames = 0
        self.events = 0
        self.replayed = 0  # events a catch-up sent after a reconnect (not timed)
        # (seq, type, timestamp, turn, len(token), publishedAt) of one viewer
        self.sample: list | None = None

    @property
    def event_hist(self) -> dict[int, int]:
        """0.1 ms buckets of latency (production) over all live events."""
        return _added(self.other_hist, self.token_hist)

    @property
    def event_flush_hist(self) -> dict[int, int]:
        """0.1 ms buckets of latency (flush) over all live events."""
        return _added(self.other_flush_hist, self.token_flush_hist)


def _added(one: dict, other: dict) -> dict:
    merged = dict(one)
    for bucket, count in other.items():
        merged[bucket] = merged.get(bucket, 0) + count
    return merged


def _bucket(latency: float) -> int:
    return int(latency * 10_000) if latency > 0 else 0


# Every viewer receives the same bytes for an event, so a read's frames and a message's fields
# are worked out once per client process and looked up by the bytes for the other viewers: the
# load generator then costs little more than its recv() calls.
CACHE_LIMIT = 4096
_reads: dict[bytes, tuple] = {}  # one read of whole text frames -> their payloads
_messages: dict[bytes, tuple] = {}  # one event message -> parse_event(message)
_versions: dict[bytes, int] = {}  # one DEBATE/VOTES message -> its version


def _remember(cache: dict, key: bytes, value) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def split_frames(buf) -> tuple[list[tuple[int, bool, bytes]], int]:
    """The complete frames at the start of `buf` as (opcode, fin, payload), and bytes used."""
    frames = []
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b0 = buf[pos]
        ln = buf[pos + 1] & 0x7F
        hdr = 2
        if ln == 126:
            if n - pos < 4:
                break
            ln = (buf[pos + 2] << 8) | buf[pos + 3]
            hdr = 4
        elif ln == 127:
            if n - pos < 10:
                break
            ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            hdr = 10
        if n - pos < hdr + ln:
            break
        frames.append((b0 & 0x0F, bool(b0 & 0x80), bytes(buf[pos + hdr : pos + hdr + ln])))
        pos += hdr + ln
    return frames, pos


def parse_event(data: bytes) -> tuple:
    """(type, seq, epoch of timestamp, timestamp, status, error code, turn, token length,
    epoch of publishedAt or 0, CONNECTED's lastSeq or 0)."""
    msg = orjson.loads(data)
    payload = msg.get("payload") or {}
    seq = payload.get("seq")
    timestamp = msg.get("timestamp")
    published = msg.get("publishedAt")
    return (
        msg.get("type"),
        seq,
        parse_ts(timestamp) if seq is not None else 0.0,
        timestamp,
        payload.get("status"),
        payload.get("code"),
        payload.get("turn"),
        len(payload.get("token") or ""),
        parse_ts(published) if seq is not None and published else 0.0,
        payload.get("lastSeq") or 0,
    )


class Viewer(asyncio.Protocol):
    """One WebSocket viewer: handshake, frame parser, seq bookkeeping; one socket at a time
    (``reconnect`` opens the next one, the seq bookkeeping goes on)."""

    def __init__(self, request: bytes, stats: Stats, sample: bool = False) -> None:
        self.stats = stats
        self.sample = sample
        self.done = asyncio.get_running_loop().create_future()  # terminal status (or gave up)
        self.rehoming = False  # a lost socket is followed by a reconnect, not the end
        self.first_token = 0.0
        self.last_seq = 0
        self.gaps: set[int] = set()
        self.dups = 0
        self.reordered = 0
        self.final_seq = 0
        self.final_status = ""
        self.error_code: int | None = None
        self.reconnects = 0
        self.rehome_times: list[float] = []  # socket lost -> CONNECTED on the next one, s
        self.disrupted = False  # lost a socket at least once
        self.votes: list[tuple[float, int]] = []  # (receipt time, version) of DEBATE/VOTES
        self._socket(request)

    def _socket(self, request: bytes) -> None:
        """Per-socket state for a new connection."""
        loop = asyncio.get_running_loop()
        self.request = request
        self.transport = None
        self.buf = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] | None = None
        self.handshake = loop.create_future()
        self.ready = loop.create_future()  # DEBATE/CONNECTED seen
        self.closed = loop.create_future()  # this socket ended
        self.t_upgraded = 0.0
        self.t_connected = 0.0
        self.t_lost = 0.0
        self.replay_upto = 0  # events up to this seq are a catch-up's
        self.close_code: int | None = None
        self.lost = False

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        """Called when TCP connects: send the upgrade request."""
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        """Called when the socket closes, cleanly or not."""
        self.lost = True
        self.t_lost = time.time()
        if self.close_code is None:
            self.close_code = 1006
        futures = [self.handshake, self.ready, self.closed]
        if not self.rehoming or self.final_status:
            futures.append(self.done)
        for fut in futures:
            if not fut.done():
                fut.set_result(False)

    def data_received(self, data: bytes) -> None:
        """Called with bytes from the server: the HTTP answer, then frames."""
        if self.upgraded and not self.buf:
            payloads = _reads.get(data)
            if payloads is not None:  # whole text frames another viewer already read
                for payload in payloads:
                    self.message(payload)
                return
            frames, used = split_frames(data)
            if used == len(data) and all(op == OP_TEXT and fin for op, fin, _ in frames):
                _remember(_reads, data, tuple(payload for _, _, payload in frames))
            else:
                self.buf += data[used:]
        else:
            self.buf += data
            if not self.upgraded and not self._upgrade():
                return
            frames, used = split_frames(self.buf)
            del self.buf[:used]
        for opcode, fin, payload in frames:
            self.frame(opcode, fin, payload)

    def _upgrade(self) -> bool:
        """Consume the HTTP answer from the buffer; True once upgraded."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        status_line = bytes(buf[: buf.find(b"\r\n")])
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        del buf[: end + 4]
        if status != 101:
            self.close_code = -status  # an HTTP refusal, e.g. -403
            self.transport.close()
            return False
        self.upgraded = True
        self.t_upgraded = time.time()
        self.handshake.set_result(True)
        return True

    # --- frames and messages -------------------------------------------------------------------

    def frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        """Handle one complete frame."""
        if opcode in (OP_TEXT, OP_BINARY):
            if fin:
                self.message(payload)
            else:
                self.fragments = [payload]
        elif opcode == OP_CONT:
            if self.fragments is not None:
                self.fragments.append(payload)
                if fin:
                    data, self.fragments = b"".join(self.fragments), None
                    self.message(data)
        elif opcode == OP_PING:
            self.transport.write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if not self.transport.is_closing():
                self.transport.write(client_frame(OP_CLOSE, payload[:2]))
                self.transport.close()

    def message(self, data: bytes) -> None:
        """Handle one server message: timing, seq accounting, lifecycle."""
        now = time.time()
        parsed = _messages.get(data)
        if parsed is None:
            parsed = parse_event(data)
            if parsed[1] is not None:  # events are shared by all viewers; CONNECTED is not
                _remember(_messages, data, parsed)
        kind, seq, created, timestamp, status, code, turn, token_len, published, newest = parsed
        if seq is None:
            if kind == CONNECTED:
                self.t_connected = now
                self.replay_upto = newest
                if not self.ready.done():
                    self.ready.set_result(True)
            elif kind == ERROR:
                self.error_code = code
            elif kind == VOTES:
                version = _versions.get(data)
                if version is None:
                    version = orjson.loads(data)["payload"]["version"]
                    _remember(_versions, data, version)
                self.votes.append((now, version))
            return
        stats = self.stats
        stats.events += 1
        if seq <= self.replay_upto and self.reconnects:
            stats.replayed += 1  # a catch-up after a reconnect: late by the outage, not timed
        else:
            self._time(kind, now, created, published)
        if self.sample:
            stats.sample.append((seq, kind, timestamp, turn, token_len, published))
        last = self.last_seq
        if seq == last + 1:
            self.last_seq = seq
        elif seq > last + 1:
            self.gaps.update(range(last + 1, seq))
            self.last_seq = seq
        elif seq in self.gaps:
            self.gaps.discard(seq)
            self.reordered += 1
        else:
            self.dups += 1
        if kind == STATUS_UPDATE and status in FINAL_STATUSES:
            self.final_seq = seq
            self.final_status = status
            if not self.done.done():
                self.done.set_result(True)

    def _time(self, kind: str, now: float, created: float, published: float) -> None:
        stats = self.stats
        latency = now - created
        bucket = _bucket(latency)
        if kind == TOKEN_RECEIVED:
            stats.token_frames += 1
            stats.token_hist[bucket] += 1
            if published:
                stats.token_flush_hist[_bucket(now - published)] += 1
            if latency > stats.token_max:
                stats.token_max = latency
            if not self.first_token:
                self.first_token = now
            if not self.disrupted and stats.storm_from <= now < stats.storm_until:
                stats.storm_hist[bucket] += 1
        else:
            stats.other_hist[bucket] += 1
            if published:
                stats.other_flush_hist[_bucket(now - published)] += 1

    def close(self) -> None:
        """Send a normal close and drop the socket."""
        if self.transport is not None and not self.transport.is_closing():
            if self.upgraded:
                self.transport.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
            self.transport.close()


def upgrade_request(host: str, port: int, path: str, origin: str) -> bytes:
    """The HTTP/1.1 upgrade request of one viewer."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\nUser-Agent: bench_stream\r\n\r\n"
    ).encode()


async def _connect(viewer: Viewer, host, port, local_ip, timeout) -> str | None:  # noqa: ASYNC109
    """Open the viewer's current socket and wait for DEBATE/CONNECTED; None, or the error."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: viewer,
                host,
                port,
                local_addr=(local_ip, 0) if local_ip else None,
            )
            ok = await viewer.ready
    except TimeoutError:
        viewer.close()
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"oserror-{exc.errno}"
    if ok:
        return None
    code = viewer.close_code
    return f"http-{-code}" if code and code < 0 else f"close-{code}"


async def open_viewer(
    host: str,
    port: int,
    path: str,
    origin: str,
    stats: Stats,
    local_ip: str | None,
    timeout: float,  # noqa: ASYNC109
    sample: bool = False,
) -> tuple[Viewer | None, float, str | None]:
    """Connect one viewer and wait for DEBATE/CONNECTED; return (viewer, set-up s, error)."""
    started = time.time()
    viewer = Viewer(upgrade_request(host, port, path, origin), stats, sample)
    error = await _connect(viewer, host, port, local_ip, timeout)
    if error:
        return None, time.time() - started, error
    return viewer, viewer.t_connected - started, None


# The web page's reconnect schedule (static/js/debate-socket.js backoffDelay).
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 15.0
REHOME_ATTEMPTS = 30
# Closes after which the web page does not reconnect by itself (origin, no such debate, an
# operator's disconnect, too many bad frames).
GIVE_UP_CODES = frozenset({4003, 4004, 4008, 1008})


def backoff_delay(attempt: int) -> float:
    """A delay in [base/2, base) where base doubles per attempt from 0.5 s up to 15 s."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** max(0, attempt))
    return base / 2 + random.random() * base / 2


def keep_watching(
    viewer: Viewer,
    targets: list[tuple[str, int]],
    current: int,
    path_for,
    origin: str,
    local_ip: str | None,
    timeout: float,
) -> asyncio.Task:
    """Reconnect the viewer whenever its socket is lost before the debate ends, as the web page
    does: backoff with jitter, then another server (at random, as a balancer would spread them)
    with ``path_for(lastSeq)``; give up (``done`` False) after REHOME_ATTEMPTS failures. Returns
    the task doing it; from now on a lost socket no longer ends the viewer."""
    viewer.rehoming = True
    return asyncio.create_task(
        _rehome(viewer, targets, current, path_for, origin, local_ip, timeout)
    )


async def _rehome(viewer, targets, current, path_for, origin, local_ip, timeout) -> None:  # noqa: ASYNC109
    while not viewer.done.done():
        await asyncio.wait({viewer.closed, viewer.done}, return_when=asyncio.FIRST_COMPLETED)
        if viewer.done.done():
            return
        if viewer.close_code in GIVE_UP_CODES:
            break
        lost_at, viewer.disrupted = viewer.t_lost, True
        for attempt in range(REHOME_ATTEMPTS):
            await asyncio.sleep(backoff_delay(attempt))
            others = [i for i in range(len(targets)) if i != current] or [current]
            current = random.choice(others) if attempt == 0 else random.randrange(len(targets))
            host, port = targets[current]
            viewer.reconnects += 1
            viewer._socket(upgrade_request(host, port, path_for(viewer.last_seq), origin))
            if not await _connect(viewer, host, port, local_ip, timeout):
                viewer.rehome_times.append(viewer.t_connected - lost_at)
                break
        else:
            break
    if not viewer.done.done():
        viewer.done.set_result(False)
