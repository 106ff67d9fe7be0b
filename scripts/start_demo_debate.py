"""Wait for a local server, sign in as the demo user, create and start a debate, print its URL."""

import argparse
import sys
import time

import httpx


def call(url: str, body: dict | None = None, token: str | None = None) -> dict:
    """POST (or GET without a body) JSON and return the decoded answer; raise on 4xx/5xx."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is None:
        response = httpx.get(url, headers=headers, timeout=10)
    else:
        response = httpx.post(url, json=body, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_until_up(base: str, timeout_s: float = 60.0) -> None:
    """Poll /healthz until the server answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            call(f"{base}/healthz")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def main() -> int:
    """Start one demo debate and print where to watch it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", required=True)
    parser.add_argument("--asset", default="BTC")
    parser.add_argument("--turns", type=int, default=6)
    args = parser.parse_args()

    wait_until_up(args.url)
    token = call(
        f"{args.url}/api/auth/token/", {"username": args.username, "password": args.password}
    )["access"]
    debate = call(f"{args.url}/api/debates/", {"asset": args.asset, "maxTurns": args.turns}, token)
    try:
        call(f"{args.url}/api/debates/{debate['id']}/start/", {}, token)
    except httpx.HTTPStatusError as exc:
        print(f"Could not start the demo debate: HTTP {exc.response.status_code}", file=sys.stderr)
        return 1
    print(f"\n  Live debate on {debate['asset']}: {args.url}/debates/{debate['id']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
