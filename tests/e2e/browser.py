"""Helpers for the browser tests: a live daphne on its own database, and Debian's Chromium."""

import contextlib
import json
import os
from pathlib import Path

import pytest

from bench.launcher import BASE_DIR as ROOT
from bench.launcher import Server, cluster, free_port

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


@contextlib.contextmanager
def live_server(tmp_dir: Path, **extra_env: str):
    """A migrated database with the test user, and daphne serving it; torn down on exit."""
    port = free_port()  # chosen first: the page's own origin must be allowed
    with cluster(
        tmp_dir,
        name="browser",
        ports=[port],
        redis_url=extra_env.get("REDIS_URL"),
        origins=f"http://127.0.0.1:{port}",
        user=(USERNAME, PASSWORD),
        env={"DEBUG": "1", "OFFLINE_LLM_TOKENS_PER_S": "40", **extra_env},
    ) as launched:
        yield launched.servers[0]


def launch_chromium(playwright):
    """Debian's Chromium, headless, with everything that would call the internet turned off."""
    return playwright.chromium.launch(
        executable_path=require_chromium(), args=CHROMIUM_ARGS, headless=True
    )


def sign_in(
    page,
    server: Server,
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
