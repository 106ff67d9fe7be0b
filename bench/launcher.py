"""Real server processes for the benchmark and the end-to-end tests: the one launcher.

A `Cluster` is N servers (daphne or uvicorn) sharing one database and, optionally, Redis (one
node, or several as a comma-separated list) under a key and channel prefix of its own.
`start()` makes a fresh database (a SQLite file in the run directory, or a new PostgreSQL
database when the base URL is postgres), migrates it, creates the user, starts every server on
its port in its own process group with its own stdout and stderr files, and waits for /healthz.
`close()` stops the servers (SIGTERM, then SIGKILL), drops the database it made and deletes the
Redis keys under its prefix. How a server is started is said in one place: `server_command()`."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import rest

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
ASGI_APP = "tradeapp.asgi:application"  # what uvicorn serves (tradeapp.serve: daphne)
READY_TIMEOUT_S = 60
STOP_GRACE_S = 10.0
MANAGE_TIMEOUT_S = 180
_QA_TOKEN = object()  # ws_url()'s default: the cluster's QA token


@dataclass(frozen=True)
class ServerOptions:
    """How each server of a cluster runs, beyond its port and what the environment sets; None
    leaves the production default (tradeapp.serve)."""

    ping: tuple[float, float] | None = None  # WebSocket ping interval and timeout, s
    backlog: int | None = None  # listen backlog
    connect_timeout: float | None = None  # daphne's WebSocket handshake timeout, s
    quiet: bool = False  # no access log


def server_command(kind: str, port: int, options: ServerOptions) -> list[str]:
    """The command line of one server process: the only place that says how servers start.
    daphne is started through the production entry point (``python -m tradeapp.serve``), so
    tests and benchmarks run what users run."""
    if kind == "uvicorn":  # for comparison only
        command = [sys.executable, "-m", "uvicorn", ASGI_APP, "--host", HOST, "--port", str(port)]
        command += ["--ws", "websockets-sansio", "--ws-per-message-deflate", "false"]
        # tradeapp.serving's wrapper has a synchronous __call__ (see there): uvicorn would
        # take it for an ASGI 2 app.
        command += ["--interface", "asgi3"]
        if options.ping:
            command += ["--ws-ping-interval", str(options.ping[0])]
            command += ["--ws-ping-timeout", str(options.ping[1])]
        if options.quiet:
            command += ["--no-access-log", "--log-level", "warning"]
        if options.backlog:
            command += ["--backlog", str(options.backlog)]
        return command
    if kind != "daphne":
        raise ValueError(f"unknown server kind {kind!r}")
    command = [sys.executable, "-m", "tradeapp.serve", "--host", HOST, "--port", str(port)]
    if options.backlog:
        command += ["--backlog", str(options.backlog)]
    if options.ping:
        command += ["--ping-interval", _seconds(options.ping[0])]
        command += ["--ping-timeout", _seconds(options.ping[1])]
    if options.connect_timeout is not None:
        command += ["--connect-timeout", _seconds(options.connect_timeout)]
    if options.quiet:
        command += ["--no-access-log"]
    return command


def _seconds(value: float) -> str:
    return str(max(1, round(value)))  # daphne takes whole seconds


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def ws_path(debate_id, token: str | None = None, last_seq: int | None = None) -> str:
    """The path of a debate's socket, with its token and resume point."""
    query = []
    if token is not None:
        query.append(f"token={token}")
    if last_seq is not None:
        query.append(f"lastSeq={last_seq}")
    return f"/ws/debate/{debate_id}/" + ("?" + "&".join(query) if query else "")


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    """Run a manage.py command in a child process; return stdout, raise with its output."""
    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT_S,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_user(env: dict, username: str, password: str) -> None:
    """Create (or reset) a login on the database `env` names."""
    # "--password=..." because a generated password may start with "-".
    manage(env, "ensure_demo_user", f"--username={username}", f"--password={password}")


@contextlib.contextmanager
def fresh_database(run_dir: Path, name: str, base_url: str) -> Iterator[str]:
    """A new empty database: on the PostgreSQL server of `base_url` when it is postgres (dropped
    with FORCE on exit), else a SQLite file in `run_dir`."""
    if not base_url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{run_dir / f'{name}.sqlite3'}"
        return
    import psycopg

    server, _ = base_url.rsplit("/", 1)
    db_name = f"tradeapp_{name}".replace("-", "_")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        yield f"{server}/{db_name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def redis_nodes(redis_url: str) -> list[str]:
    """The Redis nodes a --redis-url names: one URL, or several separated by commas."""
    return [url.strip() for url in redis_url.split(",") if url.strip()]


def delete_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete every key under `prefix` (on every node of a comma-separated list)."""
    import redis

    for url in redis_nodes(redis_url):
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(f"{prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()


def server_env(
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    prefix: str | None = None,
    qa_token: str | None = None,
    origins: str | None = None,
    metrics_dir: Path | None = None,
    extra: dict | None = None,
) -> dict:
    """The environment of a cluster's servers and manage.py calls; `extra` has the last word."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeapp.settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    env.pop("REDIS_URLS", None)
    if redis_url and len(redis_nodes(redis_url)) > 1:
        env["REDIS_URLS"] = redis_url  # several nodes
        env.pop("REDIS_URL", None)
    elif redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)  # one process: the in-memory layer and event log suffice
    if redis_url and prefix:
        # Pub/sub channels ignore the Redis db number: a prefix keeps clusters apart.
        env["STREAMING_KEY_PREFIX"] = env["CHANNEL_LAYER_PREFIX"] = prefix
    if qa_token:
        env["WS_QA_TOKEN"] = qa_token
    if origins:
        env["WS_ALLOWED_ORIGINS"] = origins
    if metrics_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env.update(extra or {})
    return env


class Server:
    """One server process of a cluster: start, wait, signal, stop, restart, logs, REST calls."""

    def __init__(self, cluster: "Cluster", index: int, port: int) -> None:
        self.cluster = cluster
        self.index = index
        self.port = port
        self.proc: subprocess.Popen | None = None
        name = f"{cluster.kind}-{index}-{port}"
        self.stdout_path = cluster.run_dir / f"{name}.out"
        self.stderr_path = cluster.run_dir / f"{name}.err"

    @property
    def env(self) -> dict:
        """The environment this process runs with (the cluster's)."""
        return self.cluster.env

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://{HOST}:{self.port}"

    def ws_url(self, debate_id, token=_QA_TOKEN, last_seq: int | None = None) -> str:
        """A debate socket URL on this process (the cluster's QA token unless given; None:
        no token)."""
        token = self.cluster.qa_token if token is _QA_TOKEN else token
        return f"ws://{HOST}:{self.port}{ws_path(debate_id, token, last_seq)}"

    # --- the process ---------------------------------------------------------------------------

    def spawn(self) -> None:
        """Start the process, without waiting for it to answer."""
        command = server_command(self.cluster.kind, self.port, self.cluster.options)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                command,
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: stop() reaches its children
            )

    def wait_ready(self, deadline: float) -> None:
        """Wait until /healthz answers; raise with the log's tail if it dies or runs late."""
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name()} exited early:\n{self.log_tail()}")
            status = rest.probe(self.base_url + "/healthz")
            if status is not None and status < 500:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name()} did not answer in time:\n{self.log_tail()}")
            time.sleep(0.2)

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the process and wait until it answers."""
        self.spawn()
        self.wait_ready(time.monotonic() + timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the process group (fault tests; stop() is the clean way)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def reap(self, deadline: float) -> None:
        """Wait for the process until `deadline`, then SIGKILL its group."""
        if self.proc is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if self.proc.poll() is None:
            self.kill(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `grace` seconds."""
        self.kill(signal.SIGTERM)
        self.reap(time.monotonic() + grace)

    def restart(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Stop the process and start it again on the same port (its logs go on)."""
        self.stop()
        self.start(timeout)

    def alive(self) -> bool:
        """Whether the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def name(self) -> str:
        """E.g. "daphne 0 on port 41234", for messages."""
        return f"{self.cluster.kind} {self.index} on port {self.port}"

    def logs(self) -> str:
        """Everything the process wrote to stdout and stderr."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the logs, for failure messages."""
        return self.logs()[-chars:]

    # --- calls ---------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """Call the REST API; return (status, JSON body or raw bytes)."""
        return rest.api(self.base_url, method, path, body, token)

    def token(self, username: str | None = None, password: str | None = None) -> dict:
        """A fresh JWT pair, for the cluster's user unless told."""
        default_user, default_password = self.cluster.user or ("", "")
        return rest.token(self.base_url, username or default_user, password or default_password)

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """Run manage.py against this server's database; return stdout."""
        return manage(self.env, *args, stdin=stdin)

    def shell(self, code: str) -> str:
        """Run Python in `manage.py shell` against this server's database."""
        return self.manage("shell", "--no-imports", "-c", code)


class Cluster:
    """`count` servers on one fresh (or given) database and one Redis prefix; see the module."""

    def __init__(
        self,
        run_dir: Path,
        count: int = 1,
        *,
        name: str = "cluster",
        kind: str = "daphne",
        options: ServerOptions | None = None,
        ports: list[int] | None = None,
        database_url: str | None = None,
        fresh_from: str | None = None,
        redis_url: str | None = None,
        qa_token: str | None = None,
        origins: str | None = None,
        user: tuple[str, str] | None = None,
        env: dict | None = None,
    ) -> None:
        """`ports`: chosen beforehand (e.g. for an origin that names the port), else free ones;
        `database_url`: migrate and use this database, else a fresh one on the server of
        `fresh_from` (default $DATABASE_URL; not postgres: SQLite)."""
        self.run_dir = run_dir
        self.kind = kind
        self.options = options or ServerOptions()
        self.prefix = f"{name}-{uuid.uuid4().hex[:10]}"
        self.database_url = database_url
        self.fresh_from = os.environ.get("DATABASE_URL", "") if fresh_from is None else fresh_from
        self.redis_url = redis_url
        self.qa_token = qa_token
        self.origins = origins
        self.user = user
        self.extra_env = dict(env or {})
        self.env: dict = {}
        ports = list(ports) if ports else [free_port() for _ in range(count)]
        self.servers = [Server(self, i, port) for i, port in enumerate(ports)]
        self._exit = contextlib.ExitStack()

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Database, migrations, user, then every server; wait until all answer /healthz."""
        if self.redis_url:
            self._exit.callback(delete_redis_keys, self.redis_url, self.prefix)
        database_url = self.database_url or self._exit.enter_context(
            fresh_database(self.run_dir, self.prefix, self.fresh_from)
        )
        metrics_dir = self.run_dir / f"prometheus-{self.prefix}"
        metrics_dir.mkdir(parents=True)  # new, i.e. empty, for this cluster
        self.env = server_env(
            database_url=database_url,
            redis_url=self.redis_url,
            prefix=self.prefix,
            qa_token=self.qa_token,
            origins=self.origins,
            metrics_dir=metrics_dir,
            extra=self.extra_env,
        )
        self._exit.callback(self.stop)
        manage(self.env, "migrate", "--noinput")
        if self.user:
            ensure_user(self.env, *self.user)
        for server in self.servers:
            server.spawn()
        deadline = time.monotonic() + timeout
        for server in self.servers:
            server.wait_ready(deadline)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM every server, then SIGKILL those still running after `grace` seconds."""
        for server in self.servers:
            server.kill(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for server in self.servers:
            server.reap(deadline)

    def close(self) -> None:
        """Stop the servers, drop the fresh database, delete the Redis keys; safe to repeat."""
        self._exit.close()

    def alive(self) -> list[bool]:
        """Whether each server still runs."""
        return [server.alive() for server in self.servers]

    def pids(self) -> list[int]:
        """The servers' process ids."""
        return [server.proc.pid for server in self.servers if server.proc is not None]


@contextlib.contextmanager
def cluster(run_dir: Path, count: int = 1, **kwargs) -> Iterator[Cluster]:
    """A started Cluster (arguments as Cluster's), always closed on exit."""
    servers = Cluster(run_dir, count, **kwargs)
    try:
        servers.start()
        yield servers
    finally:
        servers.close()
