"""Helpers for the browser tests: a live daphne on its own database, and Debian's Chromium."""

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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_DEADLINE_S = 60
USERNAME = "u"
PASSWORD = "p-browser-test"


def require_chromium() -> str:
    """The Chromium binary; fail (never skip) with the install command when it is missing."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is required for the browser tests and was not found at {CHROMIUM}. "
            "Install Debian's build with `apt-get update && apt-get install -y chromium` "
            "(Playwright's own browser download cannot work offline), "
            "or point CHROMIUM_PATH at a Chromium binary."
        )
    return CHROMIUM


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """One daphne process serving the project on its own database."""

    port: int
    env: dict
    log_path: Path
    proc: subprocess.Popen | None = None
    cleanup: list = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """Run manage.py against this server's database; return stdout, raise on failure."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def shell(self, code: str) -> str:
        """Run Python in `manage.py shell` against this server's database."""
        return self.manage("shell", "--no-imports", "-c", code)

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
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def token(self, username: str = USERNAME, password: str = PASSWORD) -> dict:
        """A fresh JWT pair for the test user."""
        status, data = self.api(
            "POST", "/api/auth/token/", {"username": username, "password": password}
        )
        assert status == 200, data
        return data

    def start(self) -> None:
        """Start daphne and wait until /healthz answers."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "tradeapp.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer in time:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        """Stop daphne (SIGTERM, then SIGKILL) — always, even when a test failed."""
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

    def log_tail(self, chars: int = 4000) -> str:
        """The end of daphne's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def _database_url(tmp_dir: Path) -> tuple[str, object]:
    """A fresh database: PostgreSQL when the test run uses it, else a SQLite file."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{tmp_dir / 'browser.sqlite3'}", None
    import psycopg

    name = f"tradeapp_browser_{uuid.uuid4().hex[:10]}"
    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + f"/{name}", drop


@contextlib.contextmanager
def live_server(tmp_dir: Path, **extra_env: str):
    """A migrated database with the test user, and daphne serving it; torn down on exit."""
    port = free_port()
    db_url, drop_db = _database_url(tmp_dir)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeapp.settings",
        "DATABASE_URL": db_url,
        "DEBUG": "1",
        "OFFLINE_LLM_TOKENS_PER_S": "40",
        "WS_ALLOWED_ORIGINS": f"http://127.0.0.1:{port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    if "REDIS_URL" not in extra_env:
        env.pop("REDIS_URL", None)  # one process: the in-memory layer and event log suffice
    server = LiveServer(port=port, env=env, log_path=tmp_dir / f"daphne-{port}.log")
    try:
        server.manage("migrate", "--noinput")
        server.manage("ensure_demo_user", "--username", USERNAME, "--password", PASSWORD)
        server.start()
        yield server
    finally:
        server.stop()
        if drop_db:
            drop_db()


def launch_chromium(playwright):
    """Debian's Chromium, headless, with everything that would call the internet turned off."""
    return playwright.chromium.launch(
        executable_path=require_chromium(), args=CHROMIUM_ARGS, headless=True
    )


def sign_in(
    page,
    server: LiveServer,
    next_path: str = "/debates/",
    username: str = USERNAME,
    password: str = PASSWORD,
) -> None:
    """Sign in through the form, as a person would."""
    page.goto(f"{server.base_url}/signin/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base_url}{next_path}")


FAKE_ORIGIN = "http://app.test"

# A scriptable stand-in for the browser's WebSocket, for client tests with no server.
FAKE_WEBSOCKET_JS = """
class FakeWebSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedByClient = null;
    FakeWebSocket.instances.push(this);
  }
  get params() { return new URL(this.url).searchParams; }
  open() { this.readyState = 1; this.onopen && this.onopen({}); }
  message(action) { this.onmessage && this.onmessage({ data: JSON.stringify(action) }); }
  serverClose(code, reason = "") {
    this.readyState = 3;
    this.onclose && this.onclose({ code, reason, wasClean: code !== 1006 });
  }
  close(code = 1000, reason = "") { this.readyState = 3; this.closedByClient = { code, reason }; }
  send(data) { this.sent.push(data); }
}
window.FakeWebSocket = FakeWebSocket;
"""


def route_app(page, pages: dict[str, str], api: dict[str, object] | None = None) -> None:
    """Serve /static/ from the repo, the given HTML pages and canned API answers at FAKE_ORIGIN."""
    static_root = ROOT / "static"
    api = api or {}

    def handle(route, request) -> None:
        path = request.url.removeprefix(FAKE_ORIGIN).split("?", 1)[0]
        if path.startswith("/static/"):
            file = (static_root / path.removeprefix("/static/")).resolve()
            if static_root in file.parents and file.is_file():
                kind = {".js": "text/javascript", ".css": "text/css"}.get(file.suffix, "text/plain")
                route.fulfill(status=200, body=file.read_bytes(), content_type=kind)
                return
        if path in pages:
            route.fulfill(status=200, body=pages[path], content_type="text/html")
            return
        if path in api:
            answer = api[path]
            status, body = answer if isinstance(answer, tuple) else (200, answer)
            route.fulfill(status=status, body=json.dumps(body), content_type="application/json")
            return
        route.fulfill(status=404, body="not found", content_type="text/plain")

    page.route(f"{FAKE_ORIGIN}/**", handle)


def make_jwt(exp: float) -> str:
    """An unsigned JWT-shaped token with the given exp (the client only reads exp)."""
    import base64

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'exp': int(exp)})}.sig"
