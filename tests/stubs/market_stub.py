"""A local Binance-style klines server (stdlib http.server in a thread) for market data tests."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def make_klines(closes: list[float], volumes: list[float] | None = None, start_ms: int = 0):
    """Binance kline rows (strings, like the real API) for a close series, hourly."""
    volumes = volumes or [100.0] * len(closes)
    rows = []
    prev = closes[0]
    for i, (close, volume) in enumerate(zip(closes, volumes, strict=True)):
        t = start_ms + i * 3_600_000
        high, low = max(prev, close), min(prev, close)
        rows.append(
            [
                t,
                str(prev),
                str(high),
                str(low),
                str(close),
                str(volume),
                t + 3_599_999,
                "0",
                1,
                "0",
                "0",
                "0",
            ]
        )
        prev = close
    return rows


class MarketStub:
    """Serves GET /api/v3/klines with `rows` (or `status` when it is not 200); logs the queries."""

    def __init__(self, rows: list | None = None, status: int = 200) -> None:
        self.rows = rows or []
        self.status = status
        self.queries: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The MARKET_DATA_URL of this stub."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "MarketStub":
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/api/v3/klines":
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                stub.queries.append(query)
                rows = stub.rows
                if "startTime" in query:  # like Binance: klines opening at or after it
                    start = int(query["startTime"])
                    rows = [r for r in rows if not str(r[0]).isdigit() or int(r[0]) >= start]
                    rows = rows[: int(query.get("limit", 500))]
                body = json.dumps(rows if stub.status == 200 else {"msg": "stub error"})
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        return Handler
