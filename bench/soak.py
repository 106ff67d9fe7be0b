"""Soak with churn: ``python -m bench.soak --minutes N``.

Starts daphne processes through the production entry point (bench.launcher) on a fresh database
and one Redis, then for N minutes keeps debates running (short ones, back to back), while
viewers connect, watch a while, leave, and come back with lastSeq (to any process), and one
process is restarted (SIGTERM, as a deploy does) every third of the run; the first process is
never restarted, so its memory can be compared. Afterwards, with every viewer gone:

* no open Viewer row (every closed socket's row is closed, the restarted process's included);
* no leftover group subscription (``PUBSUB CHANNELS <prefix>__group__debate.*`` is empty);
* every Redis key of the run has a TTL, the event log's at most EVENT_LOG_TTL_S;
* every debate ended `completed` with each turn saved once, and no viewer saw a seq gap or a
  repeat;
* the first process's RSS is back within ``--memory-margin-mib`` of its RSS after warm-up.

Prints a JSON report (``--json`` also writes it) and exits 1 when a check fails.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.launcher import Cluster, Server
from streaming import protocol

ORIGIN = "http://localhost"
USERNAME = "soak"
FINAL = set(protocol.FINAL_STATUSES)
PING_INTERVAL_S = 5  # rows of a killed process are swept after 3 pings without its key
EVENT_LOG_TTL_S = 600


@dataclass
class SoakOptions:
    """What one soak run does (the command-line options)."""

    minutes: float = 10.0
    servers: int = 2
    viewers: int = 40
    debates: int = 3  # running at once
    turns: int = 2
    tokens_per_s: float = 100.0
    restarts: int = 2  # of the last process, spread over the run
    memory_margin_mib: float = 30.0
    redis_url: str = field(
        default_factory=lambda: os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    run_dir: Path | None = None
    seed: int = 1


@dataclass
class Tally:
    """What the churn did and saw."""

    debates: list[str] = field(default_factory=list)
    connections: int = 0
    resumes: int = 0
    refused: int = 0  # handshakes that failed (a restarting process)
    refused_by: dict[str, int] = field(default_factory=dict)  # their errors
    drops: int = 0  # sockets closed under a viewer (1001 on a restart, ...)
    close_codes: dict[int, int] = field(default_factory=dict)  # of those drops
    violations: list[str] = field(default_factory=list)  # seq gaps or repeats
    restarts: int = 0


class _Churn:
    def __init__(self, options: SoakOptions, cluster: Cluster, deadline: float) -> None:
        self.options = options
        self.cluster = cluster
        self.deadline = deadline
        self.tally = Tally()
        self.random = random.Random(options.seed)
        self.access = ""

    def live_servers(self) -> list[Server]:
        return [server for server in self.cluster.servers if server.alive()]

    async def api(self, method: str, path: str, body: dict | None = None):
        """A REST call to any live process (retried while one restarts)."""
        for _attempt in range(50):
            server = self.random.choice(self.live_servers() or self.cluster.servers)
            try:
                status, answer = await asyncio.to_thread(
                    server.api, method, path, body, self.access
                )
            except OSError:
                status, answer = None, None
            if status is not None and status < 500:
                return status, answer
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{method} {path} kept failing")

    async def debate_slot(self) -> None:
        """Run debates back to back until the deadline; wait for the last one to end."""
        while time.monotonic() < self.deadline:
            body = {"asset": "AAPL", "maxTurns": self.options.turns}
            status, debate = await self.api("POST", "/api/debates/", body)
            assert status == 201, debate
            self.tally.debates.append(debate["id"])
            status, answer = await self.api("POST", f"/api/debates/{debate['id']}/start/")
            assert status == 202, answer
            await self.wait_final(debate["id"], time.monotonic() + 180)

    async def wait_final(self, debate_id: str, until: float) -> dict:
        while True:
            status, debate = await self.api("GET", f"/api/debates/{debate_id}/")
            if status == 200 and debate["status"] in FINAL:
                return debate
            if time.monotonic() > until:
                raise RuntimeError(f"debate {debate_id} did not end")
            await asyncio.sleep(0.5)

    async def viewer(self) -> None:
        """Connect to a debate, watch a while, leave or come back with lastSeq; until the end."""
        held: dict[str, int] = {}  # debate -> last seq seen (the page's lastSeq)
        while time.monotonic() < self.deadline:
            if not self.tally.debates or not self.live_servers():
                await asyncio.sleep(0.2)
                continue
            debate_id = self.random.choice(self.tally.debates[-2 * self.options.debates :])
            server = self.random.choice(self.live_servers())
            last = held.get(debate_id, 0)
            watch_s = self.random.uniform(0.3, 4.0)
            try:
                held[debate_id] = await self.watch(server, debate_id, last, watch_s)
            except (InvalidHandshake, OSError, TimeoutError) as exc:  # a process restarting
                self.tally.refused += 1
                name = type(exc).__name__
                self.tally.refused_by[name] = self.tally.refused_by.get(name, 0) + 1
            if self.random.random() < 0.3:
                held.pop(debate_id, None)  # left for good: a new page next time
            await asyncio.sleep(self.random.uniform(0.0, 0.5))

    async def watch(self, server: Server, debate_id: str, last: int, seconds: float) -> int:
        url = server.ws_url(debate_id, last_seq=last or None)
        self.tally.connections += 1
        self.tally.resumes += bool(last)
        end = time.monotonic() + seconds
        try:
            async with connect(url, origin=ORIGIN, open_timeout=10) as ws:
                while (left := end - time.monotonic()) > 0:
                    try:
                        text = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    message = json.loads(text)
                    payload = message.get("payload", {})
                    if message["type"] == protocol.CONNECTED and payload.get("reset"):
                        last = 0
                    if "seq" not in payload:
                        continue
                    if payload["seq"] != last + 1:
                        self.tally.violations.append(f"{debate_id}: {payload['seq']} after {last}")
                    last = payload["seq"]
                    if message["type"] == protocol.STATUS_UPDATE and payload["status"] in FINAL:
                        break
        except ConnectionClosed as exc:
            self.tally.drops += 1
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            self.tally.close_codes[code] = self.tally.close_codes.get(code, 0) + 1
        return last

    async def restarts(self) -> None:
        """Restart the last process (SIGTERM, then start) `restarts` times over the run."""
        if self.options.servers < 2 or self.options.restarts < 1:
            return
        period = (self.deadline - time.monotonic()) / (self.options.restarts + 1)
        for _ in range(self.options.restarts):
            await asyncio.sleep(period)
            await asyncio.to_thread(self.cluster.servers[-1].restart)
            self.tally.restarts += 1


def _rss(server: Server) -> int:
    return psutil.Process(server.proc.pid).memory_info().rss


def _shell_int(server: Server, code: str) -> int:
    return int(server.shell(code).strip().splitlines()[-1])


OPEN_VIEWERS = (
    "from streaming.models import Viewer; "
    "print(Viewer.objects.filter(disconnected_at__isnull=True).count())"
)


async def _open_viewers(server: Server, within_s: float) -> int:
    """Open Viewer rows, polled until none is left or `within_s` passed."""
    deadline = time.monotonic() + within_s
    for _poll in range(1000):
        count = await asyncio.to_thread(_shell_int, server, OPEN_VIEWERS)
        if not count or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    return count


def _redis_leftovers(redis_url: str, prefix: str) -> tuple[list[str], list[str], list[str]]:
    """(group channels still subscribed, keys without a TTL, event-log keys past the TTL)."""
    client = redis.Redis.from_url(redis_url)
    try:
        groups = [c.decode() for c in client.pubsub_channels(f"{prefix}__group__debate.*")]
        no_ttl, too_long = [], []
        for key in client.scan_iter(f"{prefix}*", count=1000):
            ttl = client.ttl(key)
            if ttl == -1:
                no_ttl.append(key.decode())
            elif (b":stream:log:" in key or b":stream:seq:" in key) and ttl > EVENT_LOG_TTL_S:
                too_long.append(key.decode())
        return groups, no_ttl, too_long
    finally:
        client.close()


async def soak(options: SoakOptions) -> dict:
    """Run the soak; return its report (``report["ok"]``: every check passed)."""
    run_dir = options.run_dir or Path(tempfile.mkdtemp(prefix="soak-"))
    password = secrets.token_urlsafe(18)
    env = {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "STATE_DIR": str(run_dir / "state"),
        "WS_QA_TOKEN_ALLOW_IN_PRODUCTION": "1",
        "WS_RATE_LIMIT": "100000/minute",
        "WS_PING_INTERVAL_S": str(PING_INTERVAL_S),
        "EVENT_LOG_TTL_S": str(EVENT_LOG_TTL_S),
        "OFFLINE_LLM_TOKENS_PER_S": str(options.tokens_per_s),
        "DB_CONN_MAX_AGE": "0",
        "SERVER_ACCESS_LOG": "0",
    }
    cluster = Cluster(
        run_dir,
        options.servers,
        name="soak",
        redis_url=options.redis_url,
        qa_token=secrets.token_urlsafe(24),
        origins=ORIGIN,
        user=(USERNAME, password),
        env=env,
    )
    try:
        await asyncio.to_thread(cluster.start)
        started = time.monotonic()
        deadline = started + options.minutes * 60
        churn = _Churn(options, cluster, deadline)
        churn.access = (await asyncio.to_thread(cluster.servers[0].token))["access"]
        survivor = cluster.servers[0]
        tasks = [asyncio.create_task(churn.debate_slot()) for _ in range(options.debates)]
        tasks += [asyncio.create_task(churn.viewer()) for _ in range(options.viewers)]
        tasks.append(asyncio.create_task(churn.restarts()))
        await asyncio.sleep(min(20.0, options.minutes * 60 / 4))  # warm-up
        rss_warm = _rss(survivor)
        await asyncio.gather(*tasks)
        debates = [await churn.wait_final(d, time.monotonic() + 120) for d in churn.tally.debates]
        open_viewers = await _open_viewers(survivor, within_s=4 * PING_INTERVAL_S + 10)
        groups, no_ttl, too_long = await asyncio.to_thread(
            _redis_leftovers, options.redis_url, cluster.prefix
        )
        rss_end = _rss(survivor)
        statuses = [d["status"] for d in debates]
        bad_turns = [
            d["id"]
            for d in debates
            if [a["turn"] for a in d["arguments"]] != list(range(1, options.turns + 2))
        ]
        growth_mib = (rss_end - rss_warm) / 2**20
        report = {
            "options": {k: str(v) for k, v in asdict(options).items()},
            "seconds": round(time.monotonic() - started, 1),
            "debates": len(debates),
            "completed": statuses.count("completed"),
            "turns_not_saved_once": bad_turns,
            "tally": {k: v for k, v in asdict(churn.tally).items() if k != "debates"},
            "open_viewer_rows": open_viewers,
            "subscribed_groups": groups,
            "keys_without_ttl": no_ttl,
            "log_keys_past_ttl": too_long,
            "rss_after_warmup_mib": round(rss_warm / 2**20, 1),
            "rss_at_end_mib": round(rss_end / 2**20, 1),
            "rss_growth_mib": round(growth_mib, 1),
        }
        report["ok"] = (
            report["completed"] == len(debates)
            and not bad_turns
            and not churn.tally.violations
            and open_viewers == 0
            and not groups
            and not no_ttl
            and not too_long
            and growth_mib <= options.memory_margin_mib
        )
        return report
    finally:
        await asyncio.to_thread(cluster.close)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the soak, print the report; 0 when every check passed."""
    defaults = SoakOptions()
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--servers", type=int, default=defaults.servers)
    parser.add_argument("--viewers", type=int, default=defaults.viewers)
    parser.add_argument("--debates", type=int, default=defaults.debates, help="running at once")
    parser.add_argument("--turns", type=int, default=defaults.turns)
    parser.add_argument("--tokens-per-s", type=float, default=defaults.tokens_per_s)
    parser.add_argument("--restarts", type=int, default=defaults.restarts)
    parser.add_argument("--memory-margin-mib", type=float, default=defaults.memory_margin_mib)
    parser.add_argument("--redis-url", default=defaults.redis_url)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    options = SoakOptions(**{k: v for k, v in vars(args).items() if k != "json" and v is not None})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeapp.settings")
    report = asyncio.run(soak(options))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with contextlib.suppress(OSError):
            args.json.write_text(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
