"""Orchestrates one capacity run: servers, client processes, the debate, and the report.

Phases: start W servers (or use --url targets) on a migrated temporary SQLite database and
one Redis; spawn C client processes; measure connection set-up at a fixed arrival rate on a
pending debate; connect V viewers and wait until all are connected; start the debate; wait
until every viewer saw its final status; report delivery, latency, time to first token and
server CPU/memory per 1,000 connections.
"""

import atexit
import contextlib
import json
import logging
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from bench import clientproc
from bench.servers import (
    BASE_DIR,
    ProcessSampler,
    ServerGroup,
    manage,
    pids_listening,
    remove_tree,
)

logger = logging.getLogger(__name__)

ORIGIN = "http://localhost"
VIEWERS_PER_SOURCE_IP = 10_000  # well under the ~28k ephemeral ports per source address
TERMINAL = {"completed", "failed", "cancelled"}
TOKEN_TYPE = "DEBATE/TOKEN_RECEIVED"


@dataclass
class Config:
    """Options of one run (see `manage.py bench_stream --help`)."""

    workers: int = 1
    viewers: int = 100
    clients: int = 2
    rate: float = 50.0
    flush_ms: float = 50.0
    turns: int = 2
    warmup: float = 2.0
    timeout: float = 300.0
    connect_rate: float = 500.0
    connect_count: int = 1000
    connect_concurrency: int = 100
    urls: list[str] = field(default_factory=list)
    server: str = "daphne"
    redis_url: str = "redis://127.0.0.1:6379/13"
    database_url: str = ""
    qa_token: str = ""
    asset: str = "AAPL"
    source: str = "api"  # "publisher": synthetic events from bench.publish, no engine
    tokens_per_turn: int = 200
    warm_debate: bool = True
    server_env: dict = field(default_factory=dict)
    keep: bool = False


class BenchError(RuntimeError):
    """The run could not be carried out (servers, REST calls, clients)."""


def percentile_from_hist(hist: dict, q: float) -> float | None:
    """The q-quantile (0..1) in ms of a 0.1 ms histogram."""
    total = sum(hist.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen > rank:
            return round(bucket / 10 + 0.05, 2)
    return round(max(hist) / 10, 2)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of a list, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def ms(value: float | None) -> float | None:
    """Seconds to ms, rounded."""
    return None if value is None else round(value * 1000, 2)


def merge_counts(into: dict, more: dict) -> dict:
    """Add counts of `more` into `into`."""
    for key, value in more.items():
        into[key] = into.get(key, 0) + value
    return into


class Run:
    """One benchmark run; use run() and always let it finish its finally."""

    def __init__(self, cfg: Config, out=print) -> None:
        self.cfg = cfg
        self.out = out
        self.run_dir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
        self.servers: ServerGroup | None = None
        self.clients: list = []  # (process, pipe)
        self.targets: list[tuple[str, int]] = []
        self.base_url = ""
        self.qa_token = cfg.qa_token or secrets.token_urlsafe(16)
        self.started = time.time()
        self.deadline = self.started + cfg.timeout
        self._cleaned = False
        self.publisher = None
        self._env: dict | None = None

    # --- plumbing --------------------------------------------------------------------------

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left before --timeout, minus a reserve for cleanup."""
        return max(1.0, self.deadline - time.time() - reserve)

    def env(self) -> dict:
        """The environment of the server processes and manage.py calls (fixed for the run)."""
        if self._env is not None:
            return self._env
        cfg = self.cfg
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tradeapp.settings",
                "PYTHONPATH": str(BASE_DIR),
                "REDIS_URL": cfg.redis_url,
                "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(40),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "WS_QA_TOKEN": self.qa_token,
                "WS_QA_TOKEN_ALLOW_IN_PRODUCTION": "1",
                "WS_RATE_LIMIT": "1000000/minute",
                "WS_ALLOWED_ORIGINS": ORIGIN,
                "DEBATE_LLM": "offline",
                "OFFLINE_LLM_TOKENS_PER_S": str(cfg.rate),
                "TOKEN_FLUSH_INTERVAL_MS": str(cfg.flush_ms),
                "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / "prometheus"),
                # Pub/sub channels ignore the Redis db number: keep concurrent runs apart.
                "CHANNEL_LAYER_PREFIX": f"bench{uuid.uuid4().hex[:10]}",
                "EVENT_LOG_TTL_S": "900",
                "LOG_LEVEL": "WARNING",
                # Persistent DB connections, as in production: 0 reopens SQLite on every query.
                "DB_CONN_MAX_AGE": "600",
            }
        )
        if cfg.database_url:
            env["DATABASE_URL"] = cfg.database_url
        elif not cfg.urls:
            env["DATABASE_URL"] = f"sqlite:///{self.run_dir / 'bench.sqlite3'}"
        env.update(cfg.server_env)
        self._env = env
        return env

    def ask(self, index: int, command: dict, timeout: float) -> dict:
        """Send a command to one client process and wait for its answer."""
        _, pipe = self.clients[index]
        pipe.send(command)
        return self.answer(index, timeout)

    def answer(self, index: int, timeout: float) -> dict:
        """The next answer of one client process."""
        proc, pipe = self.clients[index]
        deadline = time.time() + timeout
        while not pipe.poll(0.2):
            if not proc.is_alive():
                raise BenchError(f"client process {index} died (exit {proc.exitcode})")
            if time.time() > deadline:
                raise BenchError(f"client process {index} did not answer in {timeout:.0f}s")
        result = pipe.recv()
        if "error" in result:
            raise BenchError(f"client process {index}: {result['error']}")
        return result

    def broadcast(self, commands: list[dict], timeout: float) -> list[dict]:
        """Send one command to each client process, then gather every answer."""
        for (_, pipe), command in zip(self.clients, commands, strict=True):
            pipe.send(command)
        return [self.answer(i, timeout) for i in range(len(self.clients))]

    def cleanup(self) -> None:
        """Stop every client and server process and remove the run directory."""
        if self._cleaned:
            return
        self._cleaned = True
        for i, (proc, pipe) in enumerate(self.clients):
            with contextlib.suppress(Exception):
                if proc.is_alive():
                    pipe.send({"cmd": "quit"})
                    self.answer(i, 3)
        for proc, _ in self.clients:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
        if self.publisher is not None and self.publisher.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.publisher.pid, signal.SIGKILL)
            self.publisher.wait(timeout=5)
        if self.servers:
            self.servers.stop()
        if not self.cfg.keep:
            remove_tree(self.run_dir)

    # --- phases ----------------------------------------------------------------------------

    def start_servers(self) -> list[int]:
        """Start W servers (or resolve --url targets); return the PIDs to sample."""
        cfg = self.cfg
        env = self.env()
        (self.run_dir / "prometheus").mkdir()
        if not cfg.urls:
            manage(["migrate", "--noinput"], env)
        self.password = secrets.token_urlsafe(12)
        # "--password=..." because a generated password may start with "-".
        manage(["ensure_demo_user", "--username=bench", f"--password={self.password}"], env)
        if cfg.urls:
            for url in cfg.urls:
                parts = urlsplit(url if "://" in url else f"http://{url}")
                self.targets.append((parts.hostname or "127.0.0.1", parts.port or 80))
            ports = [port for _, port in self.targets]
            pids = pids_listening(ports)
        else:
            self.servers = ServerGroup(self.run_dir, env, cfg.server)
            self.servers.start(cfg.workers)
            self.servers.wait_ready(timeout=min(60, self.remaining()))
            self.targets = [("127.0.0.1", port) for port in self.servers.ports]
            pids = [p.pid for p in self.servers.procs]
        host, port = self.targets[0]
        self.base_url = f"http://{host}:{port}"
        return pids

    def login(self) -> str:
        """A fresh JWT access token (a long connect phase outlives one: 15 min by default)."""
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            resp = http.post(
                "/api/auth/token/", json={"username": "bench", "password": self.password}
            )
        if resp.status_code != 200:
            raise BenchError(f"token: {resp.status_code} {resp.text[:300]}")
        return resp.json()["access"]

    def create_debate(self, turns: int | None = None) -> tuple[str, str]:
        """Log in over REST and create a pending debate; return (debate id, access token)."""
        turns = turns or self.cfg.turns
        access = self.login()
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            resp = http.post(
                "/api/debates/",
                json={"asset": self.cfg.asset, "maxTurns": turns},
                headers={"Authorization": f"Bearer {access}"},
            )
            if resp.status_code != 201:
                raise BenchError(f"create debate: {resp.status_code} {resp.text[:300]}")
            return resp.json()["id"], access

    def start_clients(self) -> dict:
        """Spawn the client processes and wait until each is ready."""
        ctx = multiprocessing.get_context("spawn")
        for i in range(self.cfg.clients):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=clientproc.main, args=(child, i), daemon=True, name=f"bench-client-{i}"
            )
            proc.start()
            self.clients.append((proc, parent))
        ready = [self.answer(i, 60) for i in range(len(self.clients))]
        return {"pids": [r["ready"] for r in ready], "uvloop": all(r["uvloop"] for r in ready)}

    def ws_path(self, debate_id: str) -> str:
        """The WebSocket path viewers open."""
        return f"/ws/debate/{debate_id}/?token={self.qa_token}"

    def setup_phase(self, debate_id: str) -> dict:
        """Open --connect-count connections at --connect-rate per second; time each set-up."""
        cfg = self.cfg
        count, rate = cfg.connect_count, cfg.connect_rate
        start_at = time.time() + 0.5
        local_ips = [
            f"127.0.0.{100 + i}" for i in range(max(1, count // VIEWERS_PER_SOURCE_IP + 1))
        ]
        common = {
            "cmd": "setup",
            "targets": self.targets,
            "path": self.ws_path(debate_id),
            "origin": ORIGIN,
            "count": count,
            "rate": rate,
            "clients": len(self.clients),
            "start_at": start_at,
            "local_ips": local_ips,
            "timeout": 30.0,
        }
        results = self.broadcast([common] * len(self.clients), timeout=count / rate + 60)
        times = [t for r in results for t in r["times"]]
        errors: dict = {}
        for r in results:
            merge_counts(errors, r["errors"])
        return {
            "rate_per_s": rate,
            "attempted": count,
            "connected": len(times),
            "p50_ms": ms(percentile(times, 0.5)),
            "p99_ms": ms(percentile(times, 0.99)),
            "max_ms": ms(max(times) if times else None),
            "errors": errors,
        }

    def connect_viewers(self, debate_id: str) -> dict:
        """Connect V viewers spread over servers, client processes and source addresses."""
        cfg = self.cfg
        shares: list[list] = [[] for _ in self.clients]
        for j in range(cfg.viewers):
            host, port = self.targets[j % len(self.targets)]
            local_ip = f"127.0.0.{2 + j // VIEWERS_PER_SOURCE_IP}"
            shares[j % len(self.clients)].append((host, port, local_ip))
        started = time.time()
        commands = [
            {
                "cmd": "connect",
                "viewers": share,
                "path": self.ws_path(debate_id),
                "origin": ORIGIN,
                "concurrency": max(1, cfg.connect_concurrency // len(self.clients)),
                "timeout": 120.0,
                "retries": 2,
                "sample": True,
            }
            for share in shares
        ]
        results = self.broadcast(commands, timeout=self.remaining(reserve=15))
        times = [t for r in results for t in r["times"]]
        errors: dict = {}
        for r in results:
            merge_counts(errors, r["errors"])
        return {
            "viewers": cfg.viewers,
            "connected": sum(r["connected"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "retried": sum(r["retried"] for r in results),
            "errors": errors,
            "elapsed_s": round(time.time() - started, 2),
            "p50_ms": ms(percentile(times, 0.5)),
            "p99_ms": ms(percentile(times, 0.99)),
        }

    def start_debate(self, debate_id: str, access: str) -> float:
        """POST /start/ on the first server; return the time the request was sent."""
        if self.cfg.source == "publisher":
            sent = time.time()
            self.publisher = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.publish",
                    debate_id,
                    f"--rate={self.cfg.rate}",
                    f"--turns={self.cfg.turns}",
                    f"--tokens={self.cfg.tokens_per_turn}",
                ],
                env=self.env(),
                cwd=BASE_DIR,
                start_new_session=True,
            )
            return sent
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            sent = time.time()
            resp = http.post(
                f"/api/debates/{debate_id}/start/", headers={"Authorization": f"Bearer {access}"}
            )
        if resp.status_code != 202:
            raise BenchError(f"start debate: {resp.status_code} {resp.text[:300]}")
        return sent

    def warm_up(self) -> dict:
        """Run one unwatched 1-turn debate on every server, so imports and first-use costs
        (LangGraph, the model, DB and Redis connections) are not in the measured debate."""
        started = time.time()
        base_url = self.base_url
        statuses = []
        try:
            for host, port in self.targets:
                self.base_url = f"http://{host}:{port}"
                debate_id, access = self.create_debate(turns=1)
                self.start_debate(debate_id, access)
                deadline = time.time() + min(90, self.remaining(reserve=30))
                status = "running"
                while time.time() < deadline:
                    status = self.debate_status(debate_id, access)
                    if status in TERMINAL:
                        break
                    time.sleep(0.2)
                statuses.append(status)
        finally:
            self.base_url = base_url
        return {"statuses": statuses, "seconds": round(time.time() - started, 2)}

    def debate_status(self, debate_id: str, access: str) -> str:
        """The debate's status over REST."""
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            resp = http.get(
                f"/api/debates/{debate_id}/", headers={"Authorization": f"Bearer {access}"}
            )
        return (
            resp.json().get("status", "?")
            if resp.status_code == 200
            else f"http-{resp.status_code}"
        )

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict:
        """Carry out the run and return the report."""
        cfg = self.cfg
        report: dict = {"config": asdict(cfg) | {"server_env": sorted(cfg.server_env)}}
        report["config"].pop("qa_token", None)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.out(f"run dir {self.run_dir}")
        pids = self.start_servers()
        report["servers"] = {
            "kind": "external" if cfg.urls else cfg.server,
            "targets": [f"{h}:{p}" for h, p in self.targets],
            "pids": pids,
        }
        self.out(f"servers ready: {report['servers']['targets']}")
        sampler = ProcessSampler(pids)
        sampler.start()
        rss_idle = sampler.rss()
        if cfg.source == "api" and cfg.warm_debate:
            report["warm_up"] = self.warm_up()
            self.out(f"warm-up debates: {report['warm_up']}")
        debate_id, access = self.create_debate()
        clients = self.start_clients()
        report["clients"] = {"processes": len(self.clients), "uvloop": clients["uvloop"]}
        client_sampler = ProcessSampler(clients["pids"])

        if cfg.connect_count > 0 and cfg.connect_rate > 0:
            self.out(f"set-up phase: {cfg.connect_count} connections at {cfg.connect_rate:g}/s")
            report["setup"] = self.setup_phase(debate_id)
            self.out(f"set-up: {report['setup']}")
            time.sleep(1.0)
        rss_before = sampler.rss()

        self.out(f"connecting {cfg.viewers} viewers")
        report["connect"] = self.connect_viewers(debate_id)
        self.out(f"connected: {report['connect']}")
        if cfg.warmup > 0:
            time.sleep(min(cfg.warmup, self.remaining(reserve=30)))
        rss_connected = sampler.rss()

        cpu0, ccpu0, t0 = sampler.cpu(), client_sampler.cpu(), time.time()
        access = self.login()
        start_sent = self.start_debate(debate_id, access)
        self.out(f"debate {debate_id} started; watching")
        watch_deadline = time.time() + self.remaining(reserve=15)
        results = self.broadcast(
            [{"cmd": "watch", "deadline": watch_deadline}] * len(self.clients),
            timeout=self.remaining(reserve=5) + 10,
        )
        cpu1, ccpu1, t1 = sampler.cpu(), client_sampler.cpu(), time.time()
        sampler.stop()
        connections = max(1, report["connect"]["connected"])
        try:
            status = self.debate_status(debate_id, self.login())
        except (httpx.HTTPError, BenchError) as exc:
            # A server busy fanning out may not answer in time; the viewers' final event decides.
            status = f"unknown ({type(exc).__name__})"
        analysis = self.analyse(results, start_sent)
        report["debate"] = {"id": debate_id, "status": status, **analysis.pop("debate")}
        report.update(analysis)
        report["debate"]["watched_s"] = round(t1 - t0, 2)
        cpu_pct = 100 * (cpu1 - cpu0) / max(1e-6, t1 - t0)
        report["server_resources"] = {
            "cpu_pct": round(cpu_pct, 1),
            "cpu_pct_per_1k_connections": round(cpu_pct * 1000 / connections, 2),
            "cpu_s_per_1k_connections": round((cpu1 - cpu0) * 1000 / connections, 3),
            "rss_idle_mb": round(rss_idle / 2**20, 1),
            "rss_connected_mb": round(rss_connected / 2**20, 1),
            "rss_peak_mb": round(max(sampler.peak_rss, rss_connected) / 2**20, 1),
            "mb_per_1k_connections": round(
                (rss_connected - rss_before) / 2**20 * 1000 / connections, 2
            ),
            "kb_per_connection": round((rss_connected - rss_before) / 1024 / connections, 1),
            "cpus": psutil.cpu_count(),
        }
        report["client_resources"] = {
            "cpu_pct": round(100 * (ccpu1 - ccpu0) / max(1e-6, t1 - t0), 1),
        }
        if self.servers:
            report["servers"]["alive_at_end"] = self.servers.alive()
        delivery = report["delivery"]
        report["ok"] = bool(
            delivery["complete"] == cfg.viewers
            and (
                cfg.source == "publisher"
                or report["debate"]["status"] == "completed"
                or report["debate"]["status"].startswith("unknown")
            )
            and report["debate"].get("final_status") == "completed"
        )
        return report

    def analyse(self, results: list[dict], start_sent: float) -> dict:
        """Merge the client processes' answers into delivery and latency figures."""
        viewers = [v for r in results for v in r["viewers"]]
        final_seq = max((v[1] for v in viewers), default=0) or max(
            (v[0] for v in viewers), default=0
        )
        final_statuses = {v[2] for v in viewers if v[2]}
        complete = 0
        viewers_missing = 0
        missing_events = 0
        duplicates = 0
        reordered = 0
        sample_missing: list = []
        close_codes: dict = {}
        first_tokens = []
        for last, final, _status, gaps, n_gaps, dups, reord, first_token, close_code in viewers:
            missing = n_gaps + max(0, final_seq - last)
            duplicates += dups
            reordered += reord
            if missing == 0 and dups == 0 and final == final_seq:
                complete += 1
            if missing:
                viewers_missing += 1
                missing_events += missing
                if len(sample_missing) < 10:
                    sample_missing.append(
                        {"gaps": gaps, "lastSeq": last, "missingAfterLast": final_seq - last}
                    )
            if close_code is not None:
                key = str(close_code)
                close_codes[key] = close_codes.get(key, 0) + 1
            if first_token:
                first_tokens.append(first_token - start_sent)
        token_hist: dict = {}
        event_hist: dict = {}
        for r in results:
            merge_counts(token_hist, r["token_hist"])
            merge_counts(event_hist, r["event_hist"])
        token_frames = sum(r["token_frames"] for r in results)
        sample = next((r["sample"] for r in results if r.get("sample")), []) or []
        debate = self.debate_shape(sample, start_sent)
        debate["final_seq"] = final_seq
        debate["final_status"] = ",".join(sorted(final_statuses)) or None
        expected = self.cfg.viewers
        return {
            "delivery": {
                "viewers": expected,
                "complete": complete,
                "complete_share": round(complete / expected, 4) if expected else None,
                "viewers_missing_events": viewers_missing + (expected - len(viewers)),
                "missing_events": missing_events,
                "duplicates": duplicates,
                "reordered": reordered,
                "missing_sample": sample_missing,
                "close_codes": close_codes,
            },
            "token_latency_ms": {
                "p50": percentile_from_hist(token_hist, 0.5),
                "p99": percentile_from_hist(token_hist, 0.99),
                "max": ms(max((r["token_max"] for r in results), default=None)),
                "frames": token_frames,
            },
            "event_latency_ms": {
                "p50": percentile_from_hist(event_hist, 0.5),
                "p99": percentile_from_hist(event_hist, 0.99),
            },
            "first_token_ms": {
                "p50": ms(percentile(first_tokens, 0.5)),
                "p99": ms(percentile(first_tokens, 0.99)),
                "max": ms(max(first_tokens) if first_tokens else None),
                "viewers": len(first_tokens),
            },
            "debate": debate,
        }

    def debate_shape(self, sample: list, start_sent: float) -> dict:
        """Events, token frames, pace and the observed coalescing interval, from one viewer."""
        from bench.wsclient import parse_ts

        if not sample:
            return {}
        times = [parse_ts(ts) for _, _, ts, _, _ in sample]
        gaps = []
        for prev, cur, t_prev, t_cur in zip(sample, sample[1:], times, times[1:], strict=False):
            if prev[1] == cur[1] == "DEBATE/TOKEN_RECEIVED" and prev[3] == cur[3]:
                gaps.append(t_cur - t_prev)
        token_frames = [s for s in sample if s[1] == "DEBATE/TOKEN_RECEIVED"]
        return {
            "events": len(sample),
            "token_frames": len(token_frames),
            "token_chars": sum(s[4] for s in token_frames),
            "duration_s": round(times[-1] - times[0], 2),
            # Where time to first token goes: the server creating events vs delivering them.
            "start_to_first_event_ms": ms(times[0] - start_sent),
            "start_to_first_token_event_ms": ms(
                next((t for s, t in zip(sample, times, strict=True) if s[1] == TOKEN_TYPE), 0)
                - start_sent
            )
            if token_frames
            else None,
            "flush_ms_configured": self.cfg.flush_ms,
            "token_frame_interval_ms_p50": ms(percentile(gaps, 0.5)),
            "token_frame_interval_ms_p99": ms(percentile(gaps, 0.99)),
        }


def run(cfg: Config, out=print) -> dict:
    """Run one benchmark; every process started is stopped before this returns."""
    bench = Run(cfg, out)
    atexit.register(bench.cleanup)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not in the main thread
        signal.signal(signal.SIGTERM, on_term)
    try:
        return bench.run()
    finally:
        bench.cleanup()
        atexit.unregister(bench.cleanup)
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)


def format_table(report: dict) -> str:
    """The report as a plain-text table."""
    rows: list[tuple[str, str]] = []

    def add(name: str, value) -> None:
        rows.append((name, "-" if value is None else str(value)))

    cfg = report["config"]
    add("servers", f"{report['servers']['kind']} x {len(report['servers']['targets'])}")
    add("viewers / client processes", f"{cfg['viewers']} / {cfg['clients']}")
    add("token rate / flush ms / turns", f"{cfg['rate']:g} / {cfg['flush_ms']:g} / {cfg['turns']}")
    if "setup" in report:
        s = report["setup"]
        add(
            f"set-up at {s['rate_per_s']:g}/s p50 / p99 / max ms",
            f"{s['p50_ms']} / {s['p99_ms']} / {s['max_ms']}  "
            f"({s['connected']}/{s['attempted']} ok, errors {s['errors'] or 'none'})",
        )
    c = report["connect"]
    add(
        "viewers connected",
        f"{c['connected']}/{c['viewers']} in {c['elapsed_s']} s "
        f"(p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, retried {c['retried']}, "
        f"errors {c['errors'] or 'none'})",
    )
    d = report["delivery"]
    add(
        "delivery: every event",
        f"{d['complete']}/{d['viewers']} viewers ({100 * (d['complete_share'] or 0):.2f} %)",
    )
    add(
        "missing / duplicate / reordered",
        f"{d['missing_events']} / {d['duplicates']} / {d['reordered']} "
        f"(close codes {d['close_codes'] or 'none'})",
    )
    deb = report["debate"]
    add(
        "debate",
        f"{deb.get('status')} final seq {deb.get('final_seq')}, {deb.get('events')} events, "
        f"{deb.get('token_frames')} token frames, {deb.get('duration_s')} s",
    )
    add(
        "coalescing: configured / observed p50 ms",
        f"{deb.get('flush_ms_configured')} / {deb.get('token_frame_interval_ms_p50')}",
    )
    t = report["token_latency_ms"]
    add("token latency p50 / p99 / max ms", f"{t['p50']} / {t['p99']} / {t['max']}")
    f = report["first_token_ms"]
    add(
        "time to first token p50 / p99 ms",
        f"{f['p50']} / {f['p99']} (first token event created "
        f"{deb.get('start_to_first_token_event_ms')} ms after the start request)",
    )
    r = report["server_resources"]
    add(
        "server CPU % (total, per 1k conns)",
        f"{r['cpu_pct']} ({r['cpu_pct_per_1k_connections']} per 1k)",
    )
    add(
        "server RSS MB idle / connected / peak",
        f"{r['rss_idle_mb']} / {r['rss_connected_mb']} / {r['rss_peak_mb']}",
    )
    add(
        "server memory per 1k conns",
        f"{r['mb_per_1k_connections']} MB ({r['kb_per_connection']} KB/conn)",
    )
    add("client CPU %", report["client_resources"]["cpu_pct"])
    add("result", "OK: every viewer got every event" if report["ok"] else "INCOMPLETE")
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def write_json(report: dict, path: str) -> None:
    """Write the report as JSON."""
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
