"""A WebSocket viewer in a process of its own (a test can SIGSTOP it): it watches one debate as
the web page does, resuming with lastSeq after any drop, and writes every debate event it gets
as one JSON line to a file, then exits 0 at the final status.

    python -m tests.faults.ws_reader URL_WITHOUT_LASTSEQ OUTPUT_FILE [RCVBUF]
"""

import asyncio
import json
import socket
import sys
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FINAL = {"completed", "failed", "cancelled"}
ORIGIN = "http://localhost:8000"


def _socket(url: str, rcvbuf: int) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((parts.hostname, parts.port))
    return sock


async def watch(url: str, output: str, rcvbuf: int) -> None:
    """Watch to the final status, reconnecting with lastSeq; one line per event."""
    last_seq = 0
    with open(output, "a", buffering=1) as out:  # noqa: ASYNC230 - one small line at a time
        for _attempt in range(50):
            target = f"{url}&lastSeq={last_seq}" if last_seq else url
            try:
                async with connect(
                    target, sock=_socket(url, rcvbuf), origin=ORIGIN, max_size=None
                ) as ws:
                    out.write(json.dumps({"connected": True}) + "\n")
                    async for text in ws:
                        message = json.loads(text)
                        payload = message.get("payload", {})
                        if "seq" not in payload or payload["seq"] <= last_seq:
                            continue
                        last_seq = payload["seq"]
                        out.write(text + "\n")
                        if message["type"] == "DEBATE/STATUS_UPDATE" and (
                            payload["status"] in FINAL
                        ):
                            return
            except (ConnectionClosed, OSError) as exc:
                out.write(json.dumps({"dropped": type(exc).__name__}) + "\n")
                await asyncio.sleep(0.2)
    sys.exit(1)


if __name__ == "__main__":
    asyncio.run(watch(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0))
