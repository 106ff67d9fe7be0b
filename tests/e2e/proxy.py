"""Debian's nginx run with the repository's load-balancer config (docker/nginx.conf) in front of
real daphne processes; always stopped afterwards.

The config file is the one compose mounts, filled in only where compose fills it in (the listen
port and the upstream servers), and included from a minimal main config of the test's own (pid
file, logs and temporary files in the test's directory). A missing nginx fails the test (never
skips): scripts/test.sh installs Debian's package.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bench.launcher import BASE_DIR, HOST, Server, free_port

CONFIG = BASE_DIR / "docker" / "nginx.conf"
READY_TIMEOUT_S = 20

_MAIN = """\
{user}worker_processes 1;
daemon off;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run_dir}/body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    include {run_dir}/tradeapp.conf;
}}
"""


def nginx_binary() -> str:
    """Debian's nginx; fail the test when it is not installed."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        pytest.fail("nginx is required for the load-balancer tests (scripts/test.sh installs it)")
    return found


def render(port: int, backends: list[Server]) -> str:
    """docker/nginx.conf for a listen port and these daphne processes."""
    upstreams = " ".join(f"server {HOST}:{server.port};" for server in backends)
    text = CONFIG.read_text()
    return text.replace("${NGINX_PORT}", f"{HOST}:{port}").replace(
        "${TRADEAPP_UPSTREAM_SERVERS}", upstreams
    )


class Nginx:
    """One nginx process in front of `backends`; `url` / `ws_url` reach them through it."""

    def __init__(self, run_dir: Path, backends: list[Server]) -> None:
        self.run_dir = run_dir
        self.port = free_port()
        self.backends = backends
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Write the configs, check them with ``nginx -t``, start nginx, wait until it listens."""
        binary = nginx_binary()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "tradeapp.conf").write_text(render(self.port, self.backends))
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers may read the test's files
        main = self.run_dir / "nginx.conf"
        main.write_text(_MAIN.format(user=user, run_dir=self.run_dir))
        command = [binary, "-p", str(self.run_dir), "-c", str(main)]
        checked = subprocess.run(
            [*command, "-t"], capture_output=True, text=True, timeout=30, check=False
        )
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=(self.run_dir / "stderr.log").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, f"nginx did not listen in time:\n{self.log()}"
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop nginx (its whole process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        """nginx's error log, for failure messages."""
        parts = []
        for name in ("error.log", "stderr.log"):
            with contextlib.suppress(OSError):
                parts.append((self.run_dir / name).read_text(errors="replace"))
        return "\n".join(parts)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT of the proxy."""
        return f"http://{HOST}:{self.port}"

    def ws_url(self, path: str) -> str:
        """A socket URL through the proxy."""
        return f"ws://{HOST}:{self.port}{path}"


@contextlib.contextmanager
def nginx_in_front_of(run_dir: Path, backends: list[Server]):
    """A started Nginx in front of `backends`, always stopped on exit."""
    proxy = Nginx(run_dir, backends)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()
