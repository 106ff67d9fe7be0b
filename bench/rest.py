"""The REST calls of the benchmark and the end-to-end tests: JSON in and out, a token, debates."""

import json
import urllib.error
import urllib.request

from bench.errors import BenchError

TIMEOUT_S = 30
# Loopback servers only: never send these requests through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RestError(BenchError):
    """A REST call answered with a status other than the one expected."""


def _decode(raw: bytes, content_type: str):
    if not raw:
        return None
    return json.loads(raw) if "json" in content_type else raw


def api(
    base_url: str,
    method: str,
    path: str,
    body: dict | None = None,
    token: str | None = None,
    timeout: float = TIMEOUT_S,
) -> tuple[int, object]:
    """Call the REST API; return (status, JSON body, or the raw bytes of a non-JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, _decode(response.read(), response.headers["Content-Type"] or "")
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read(), exc.headers["Content-Type"] or "")


def probe(url: str, timeout: float = 2) -> int | None:
    """The HTTP status of a GET of `url`, or None when nothing answers."""
    try:
        with _opener.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def expect(answer: tuple[int, object], status: int, what: str):
    """The body of an answer with the expected status; raise RestError with it otherwise."""
    got, body = answer
    if got != status:
        raise RestError(f"{what}: {got} {str(body)[:300]}")
    return body


def token(base_url: str, username: str, password: str) -> dict:
    """A fresh JWT pair {access, refresh} for this user."""
    answer = api(base_url, "POST", "/api/auth/token/", {"username": username, "password": password})
    return expect(answer, 200, "token")


def create_debate(base_url: str, access: str, asset: str, turns: int) -> str:
    """Create a pending debate; return its id."""
    answer = api(base_url, "POST", "/api/debates/", {"asset": asset, "maxTurns": turns}, access)
    return expect(answer, 201, "create debate")["id"]


def start_debate(base_url: str, debate_id: str, access: str) -> None:
    """POST /start/: the server runs the debate."""
    expect(
        api(base_url, "POST", f"/api/debates/{debate_id}/start/", None, access), 202, "start debate"
    )


def debate_status(base_url: str, debate_id: str, access: str) -> str:
    """The debate's status, or http-<code> when the server would not say."""
    status, body = api(base_url, "GET", f"/api/debates/{debate_id}/", None, access)
    return body.get("status", "?") if status == 200 else f"http-{status}"
