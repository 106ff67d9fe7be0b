"""Orchestrates one capacity run: servers, client processes, the debate, and the report.

Phases: start W servers (or use --url targets) on a migrated temporary SQLite database and
one Redis; spawn C client processes; measure connection set-up at a fixed arrival rate on a
pending debate; connect V viewers and wait until all are connected; start the debate; wait
until every viewer saw its final status; report delivery, latency, time to first token and
server CPU/memory per 1,000 connections.
"""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from bench import rest
from bench.errors import BenchError
from bench.ipc import ClientPool
from bench.launcher import BASE_DIR, Cluster, ServerOptions, ensure_user, server_env, ws_path
from bench.sampler import ProcessSampler, pids_listening
from bench.signals import cleanup_on_exit
from bench.stats import analyse, merged, ms, rehoming, timing
from bench.voting import Voting, make_voters
from bench.wsclient import FINAL_STATUSES

ORIGIN = "http://localhost"
USERNAME = "bench"
VIEWERS_PER_SOURCE_IP = 10_000  # well under the ~28k ephemeral ports per source address
# After a kill, the latency of the undisturbed viewers is kept apart for this long.
STORM_WINDOW_S = 10.0
# The servers run with the production defaults (tradeapp.serve: listen backlog, handshake
# timeout, persistent database connections); the bench only turns the access log off, as a
# user may.
SERVER_OPTIONS = ServerOptions(quiet=True)


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
    warm_debate: bool = False
    viewer_rate: float = 0.0  # viewers arrive at this rate; the debate starts as the last does
    server_env: dict = field(default_factory=dict)
    keep: bool = False
    kill_server: int | None = None  # SIGKILL this server (0: the one running the debate) ...
    kill_at: float = 5.0  # ... this many seconds after the debate's start
    server_cpus: list[int] = field(default_factory=list)  # pin the servers (like taskset -c)
    client_cpus: list[int] = field(default_factory=list)  # pin the load generator
    voters: int = 0  # users who vote over REST while the debate streams (bench.voting) ...
    vote_window: float = 10.0  # ... spread over this many seconds ...
    vote_delay: float = 0.0  # ... beginning this long after the debate's start


def pin(pids: list[int], cpus: list[int]) -> None:
    """Run these processes (and their threads) on these CPUs only, as `taskset -c` would."""
    if not cpus:
        return
    for pid in pids:
        for task in psutil.Process(pid).threads():
            with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                os.sched_setaffinity(task.id, cpus)


class Run:
    """One benchmark run; use run() and always let it finish its finally."""

    def __init__(self, cfg: Config, out=print) -> None:
        self.cfg = cfg
        self.out = out
        self.run_dir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
        self.cluster: Cluster | None = None
        self.clients = ClientPool()
        self.targets: list[tuple[str, int]] = []
        self.base_url = ""
        self.qa_token = cfg.qa_token or secrets.token_urlsafe(16)
        self.password = secrets.token_urlsafe(12)
        self.started = time.time()
        self.deadline = self.started + cfg.timeout
        self._cleaned = False
        self.publisher = None
        self.env: dict = {}
        self.killed_at: float | None = None
        self.start_sent = 0.0  # when the measured debate's start request was sent

    # --- plumbing --------------------------------------------------------------------------

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left before --timeout, minus a reserve for cleanup."""
        return max(1.0, self.deadline - time.time() - reserve)

    def settings(self) -> dict:
        """The benchmark's own settings of the servers, on top of the launcher's environment."""
        cfg = self.cfg
        return {
            "PYTHONPATH": str(BASE_DIR),
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "WS_QA_TOKEN_ALLOW_IN_PRODUCTION": "1",
            "WS_RATE_LIMIT": "1000000/minute",
            "DEBATE_LLM": "offline",
            "OFFLINE_LLM_TOKENS_PER_S": str(cfg.rate),
            "TOKEN_FLUSH_INTERVAL_MS": str(cfg.flush_ms),
            "EVENT_LOG_TTL_S": "900",
            "LOG_LEVEL": "WARNING",
            **cfg.server_env,
        }

    def cleanup(self) -> None:
        """Stop every client and server process and remove the run directory."""
        if self._cleaned:
            return
        self._cleaned = True
        self.clients.close()
        if self.publisher is not None and self.publisher.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.publisher.pid, signal.SIGKILL)
            self.publisher.wait(timeout=5)
        if self.cluster:
            self.cluster.close()
        if not self.cfg.keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- phases ----------------------------------------------------------------------------

    def start_servers(self) -> list[int]:
        """Start W servers (or resolve --url targets); return the PIDs to sample."""
        cfg = self.cfg
        if cfg.urls:
            self.env = server_env(
                database_url=cfg.database_url,
                redis_url=cfg.redis_url,
                qa_token=self.qa_token,
                origins=ORIGIN,
                extra=self.settings(),
            )
            ensure_user(self.env, USERNAME, self.password)
            for url in cfg.urls:
                parts = urlsplit(url if "://" in url else f"http://{url}")
                self.targets.append((parts.hostname or "127.0.0.1", parts.port or 80))
            pids = pids_listening([port for _, port in self.targets])
        else:
            self.cluster = Cluster(
                self.run_dir,
                cfg.workers,
                name="bench",
                kind=cfg.server,
                options=SERVER_OPTIONS,
                database_url=cfg.database_url or None,
                fresh_from="",  # a temporary SQLite file unless --database-url
                redis_url=cfg.redis_url,
                qa_token=self.qa_token,
                origins=ORIGIN,
                user=(USERNAME, self.password),
                env=self.settings(),
            )
            self.cluster.start(timeout=min(60, self.remaining()))
            self.env = self.cluster.env
            self.targets = [("127.0.0.1", server.port) for server in self.cluster.servers]
            pids = self.cluster.pids()
            pin(pids, cfg.server_cpus)
        host, port = self.targets[0]
        self.base_url = f"http://{host}:{port}"
        return pids

    def login(self) -> str:
        """A fresh JWT access token (a long connect phase outlives one: 15 min by default)."""
        return rest.token(self.base_url, USERNAME, self.password)["access"]

    def create_debate(self, turns: int | None = None) -> tuple[str, str]:
        """Log in over REST and create a pending debate; return (debate id, access token)."""
        access = self.login()
        debate_id = rest.create_debate(
            self.base_url, access, self.cfg.asset, turns or self.cfg.turns
        )
        return debate_id, access

    def setup_phase(self, debate_id: str) -> dict:
        """Open --connect-count connections at --connect-rate per second; time each set-up."""
        cfg = self.cfg
        count, rate = cfg.connect_count, cfg.connect_rate
        local_ips = [
            f"127.0.0.{100 + i}" for i in range(max(1, count // VIEWERS_PER_SOURCE_IP + 1))
        ]
        common = {
            "cmd": "setup",
            "targets": self.targets,
            "path": ws_path(debate_id, self.qa_token),
            "origin": ORIGIN,
            "count": count,
            "rate": rate,
            "clients": len(self.clients),
            "start_at": time.time() + 0.5,
            "local_ips": local_ips,
            "timeout": 30.0,
        }
        results = self.clients.broadcast([common] * len(self.clients), timeout=count / rate + 60)
        times = [t for r in results for t in r["times"]]
        return {
            "rate_per_s": rate,
            "attempted": count,
            "connected": len(times),
            **timing(results),
            "max_ms": ms(max(times) if times else None),
            "errors": merged(results, "errors"),
        }

    def connect_viewers(self, debate_id: str, start: tuple[str, str] | None = None) -> dict:
        """Connect V viewers spread over servers, client processes and source addresses; with
        --viewer-rate they arrive at that rate and `start` (debate id, access token) is started
        as the last one arrives."""
        cfg = self.cfg
        arrive_from = time.time() + 0.5
        shares: list[list] = [[] for _ in range(len(self.clients))]
        for j in range(cfg.viewers):
            host, port = self.targets[j % len(self.targets)]
            local_ip = f"127.0.0.{2 + j // VIEWERS_PER_SOURCE_IP}"
            shares[j % len(self.clients)].append((host, port, local_ip))
        started = time.time()
        commands = [
            {
                "cmd": "connect",
                "viewers": share,
                "path": ws_path(debate_id, self.qa_token),
                "origin": ORIGIN,
                "concurrency": max(1, cfg.connect_concurrency // len(self.clients)),
                "timeout": 120.0,
                "retries": 2,
                "sample": True,
                "targets": self.targets,
                "rate": cfg.viewer_rate / len(self.clients),
                "start_at": arrive_from,
            }
            for share in shares
        ]
        self.clients.send_all(commands)
        if start is not None:
            time.sleep(max(0.0, arrive_from + cfg.viewers / cfg.viewer_rate - time.time()))
            self.start_sent = self.start_debate(*start)
        results = self.clients.gather(timeout=self.remaining(reserve=15))
        return {
            "viewers": cfg.viewers,
            "connected": sum(r["connected"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "retried": sum(r["retried"] for r in results),
            "errors": merged(results, "errors"),
            "elapsed_s": round(time.time() - started, 2),
            **timing(results),
        }

    def start_debate(self, debate_id: str, access: str) -> float:
        """POST /start/ on the first server; return the time the request was sent."""
        sent = time.time()
        if self.cfg.source == "publisher":
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
                env=self.env,
                cwd=BASE_DIR,
                start_new_session=True,
            )
        else:
            rest.start_debate(self.base_url, debate_id, access)
        return sent

    def schedule_kill(self, start_sent: float) -> threading.Timer | None:
        """SIGKILL server --kill-server at --kill-at seconds after the start, if asked; later
        REST calls go to a server that survives."""
        cfg = self.cfg
        if cfg.kill_server is None or self.cluster is None:
            return None
        victim = self.cluster.servers[cfg.kill_server]
        survivor = next(s for s in self.cluster.servers if s is not victim)

        def kill() -> None:
            self.killed_at = time.time()
            victim.kill(signal.SIGKILL)
            self.base_url = survivor.base_url
            self.out(f"killed {victim.name()} (pid {victim.proc.pid})")

        timer = threading.Timer(max(0.0, start_sent + cfg.kill_at - time.time()), kill)
        timer.daemon = True
        timer.start()
        return timer

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
                    status = rest.debate_status(self.base_url, debate_id, access)
                    if status in FINAL_STATUSES:
                        break
                    time.sleep(0.2)
                statuses.append(status)
        finally:
            self.base_url = base_url
        return {"statuses": statuses, "seconds": round(time.time() - started, 2)}

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict:
        """Carry out the run and return the report."""
        cfg = self.cfg
        report: dict = {"config": asdict(cfg) | {"server_env": sorted(cfg.server_env)}}
        report["config"].pop("qa_token", None)
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
        debate_id, _access = self.create_debate()
        voter_tokens = make_voters(self.env, cfg.voters) if cfg.voters > 0 else []
        clients = self.clients.start(cfg.clients)
        pin([os.getpid(), *clients["pids"]], cfg.client_cpus)
        report["clients"] = {"processes": len(self.clients), "uvloop": clients["uvloop"]}
        client_sampler = ProcessSampler(clients["pids"])

        if cfg.connect_count > 0 and cfg.connect_rate > 0:
            self.out(f"set-up phase: {cfg.connect_count} connections at {cfg.connect_rate:g}/s")
            report["setup"] = self.setup_phase(debate_id)
            self.out(f"set-up: {report['setup']}")
            time.sleep(1.0)
        rss_before = sampler.rss()

        storm = cfg.viewer_rate > 0
        self.out(
            f"connecting {cfg.viewers} viewers" + (f" at {cfg.viewer_rate:g}/s" if storm else "")
        )
        cpu0, ccpu0, t0 = sampler.cpu(), client_sampler.cpu(), time.time()
        report["connect"] = self.connect_viewers(
            debate_id, (debate_id, self.login()) if storm else None
        )
        self.out(f"connected: {report['connect']}")
        if not storm:
            if cfg.warmup > 0:
                time.sleep(min(cfg.warmup, self.remaining(reserve=30)))
            cpu0, ccpu0, t0 = sampler.cpu(), client_sampler.cpu(), time.time()
            self.start_sent = self.start_debate(debate_id, self.login())
        rss_connected = sampler.rss()
        start_sent = self.start_sent
        voting = None
        if voter_tokens:
            urls = [f"http://{host}:{port}" for host, port in self.targets]
            voting = Voting(urls, debate_id, voter_tokens, cfg.vote_window)
            voting.start(at=start_sent + cfg.vote_delay)
        killer = self.schedule_kill(start_sent)
        self.out(f"debate {debate_id} started; watching")
        watch_deadline = time.time() + self.remaining(reserve=15)
        watch = {"cmd": "watch", "deadline": watch_deadline}
        if killer is not None:
            storm_from = start_sent + cfg.kill_at
            watch |= {"storm_from": storm_from, "storm_until": storm_from + STORM_WINDOW_S}
        elif voting is not None:
            # Token latency while the votes come in, kept apart to compare with the rest.
            votes_from = start_sent + cfg.vote_delay
            watch |= {"storm_from": votes_from, "storm_until": votes_from + cfg.vote_window}
        results = self.clients.broadcast(
            [watch] * len(self.clients), timeout=self.remaining(reserve=5) + 10
        )
        if killer is not None:
            killer.cancel()
        if voting is not None:
            voting.join(timeout=self.remaining(reserve=5))
            report["votes"] = voting.report(results, token_latency=killer is None)
        cpu1, ccpu1, t1 = sampler.cpu(), client_sampler.cpu(), time.time()
        sampler.stop()
        connections = max(1, report["connect"]["connected"])
        try:
            status = rest.debate_status(self.base_url, debate_id, self.login())
        except (OSError, BenchError) as exc:
            # A server busy fanning out may not answer in time; the viewers' final event decides.
            status = f"unknown ({type(exc).__name__})"
        analysis = analyse(results, start_sent, cfg.viewers, cfg.flush_ms)
        if killer is not None:
            report["kill"] = {
                "server": cfg.kill_server,
                "ran_the_debate": cfg.kill_server == 0,
                "at_s": cfg.kill_at,
                "killed": self.killed_at is not None,
                "viewers_on_it": len(range(cfg.kill_server, cfg.viewers, len(self.targets))),
                "storm_window_s": STORM_WINDOW_S,
                **rehoming(results),
            }
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
        if self.cluster:
            report["servers"]["alive_at_end"] = self.cluster.alive()
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


def run(cfg: Config, out=print) -> dict:
    """Run one benchmark; every process started is stopped before this returns."""
    bench = Run(cfg, out)
    with cleanup_on_exit(bench.cleanup):
        return bench.run()
