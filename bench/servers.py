"""Start, watch and stop the server processes of a benchmark run."""

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(args: list[str], env: dict, timeout: float = 120) -> str:
    """Run a manage.py command in a child process; raise with its output on failure."""
    proc = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


class ServerGroup:
    """W server processes, each in its own process group, killed by stop() whatever happens."""

    def __init__(self, run_dir: Path, env: dict, server: str = "daphne") -> None:
        self.run_dir = run_dir
        self.env = env
        self.server = server
        self.procs: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self._logs: list = []

    def command(self, port: int) -> list[str]:
        """The command line of one server process."""
        if self.server == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                "tradeapp.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
                "--backlog",
                "4096",
                "--log-level",
                "warning",
            ]
        return [
            sys.executable,
            "-m",
            "daphne",
            "-e",
            f"tcp:port={port}:interface=127.0.0.1:backlog=4096",
            "-v",
            "0",
            # Thousands of handshakes queue behind each other on one loop: the default 5 s would
            # drop viewers during the mass connect, which measures the connect storm, not fan-out.
            "--websocket_connect_timeout",
            "120",
            "tradeapp.asgi:application",
        ]

    def start(self, count: int) -> None:
        """Start `count` processes on free ports."""
        for i in range(count):
            port = free_port()
            log = open(self.run_dir / f"server-{i}.log", "wb")  # noqa: SIM115 - closed in stop()
            self._logs.append(log)
            proc = subprocess.Popen(
                self.command(port),
                env=self.env,
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs.append(proc)
            self.ports.append(port)

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until every process answers /healthz."""
        deadline = time.time() + timeout
        for i, port in enumerate(self.ports):
            while True:
                if self.procs[i].poll() is not None:
                    raise RuntimeError(f"server {i} exited early:\n{self.log_tail(i)}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                        break
                if time.time() > deadline:
                    raise RuntimeError(f"server {i} not ready in {timeout}s:\n{self.log_tail(i)}")
                time.sleep(0.2)

    def log_tail(self, i: int, lines: int = 30) -> str:
        """The end of one server's log."""
        path = self.run_dir / f"server-{i}.log"
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def alive(self) -> list[bool]:
        """Whether each process still runs."""
        return [p.poll() is None for p in self.procs]

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 5
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.time()))
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        for log in self._logs:
            log.close()
        self._logs = []


def pids_listening(ports: list[int]) -> list[int]:
    """The PIDs listening on these local ports (for --url targets we did not start)."""
    pids = set()
    with contextlib.suppress(psutil.Error, PermissionError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports and conn.pid:
                pids.add(conn.pid)
    return sorted(pids)


class ProcessSampler:
    """Samples CPU and resident memory of a set of PIDs from a background thread."""

    def __init__(self, pids: list[int], interval: float = 0.5) -> None:
        self.procs = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self.procs.append(psutil.Process(pid))
        self.interval = interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss = max(self.peak_rss, self.rss())

    def start(self) -> None:
        """Start sampling peak memory."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=2)

    def rss(self) -> int:
        """Total resident bytes now."""
        total = 0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def cpu(self) -> float:
        """Total CPU seconds (user + system) so far."""
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total


def remove_tree(path: Path) -> None:
    """Delete a run directory, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
