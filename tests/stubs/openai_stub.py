"""A local OpenAI-compatible chat-completions server (stdlib http.server in a thread) for tests.

`POST /v1/chat/completions` with `stream: true` answers as Server-Sent Events (`data: {...}` then
`data: [DONE]`, chunked transfer encoding). Each request takes the next behaviour from `plan`
(then `default`): "ok", "500", "hang" (never answers until the stub stops, so a client timeout
always fires), "drop" (closes the connection mid-stream), "malformed" (a chunk that is not JSON),
"no_done" (the stream ends cleanly but without finish_reason or [DONE]), "429" and "503" (with
``Retry-After: 1``), "slow" (the first token after SLOW_FIRST_TOKEN_S, then as "ok"), "stall"
(three tokens, then silence until the stub stops), "no_usage" (a whole answer, but no usage
chunk even when the request asks for one). When the request asks for usage
(`stream_options.include_usage`), a whole answer ends with OpenAI's usage chunk (no choices):
`usage_for(body, text)`.
"""

import json
import re
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_FIRST_TOKEN_S = 1.0
VERDICT_REPLY = "RECOMMENDATION: BUY\nCONFIDENCE: 0.8\nRATIONALE: The bull cited stronger numbers."


def reply_for(body: dict, index: int) -> str:
    """The stub's deterministic answer: a verdict for the moderator, a short argument otherwise."""
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    if "ROLE: moderator" in text:
        return VERDICT_REPLY
    role = re.search(r"^ROLE: (\w+)$", text, re.MULTILINE)
    return f"Stub {role.group(1) if role else 'speaker'} argument number {index}, with RSI 55. "


def tokens_of(text: str) -> list[str]:
    """Word-ish tokens whose concatenation is the text."""
    return re.findall(r"\S+\s*|\s+", text)


def usage_for(body: dict, text: str) -> dict:
    """The stub's own usage: 7 tokens per message plus its words; one token per streamed token."""
    messages = body.get("messages", [])
    prompt = sum(7 + len(str(m.get("content", "")).split()) for m in messages)
    completion = len(tokens_of(text))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class OpenAIStub:
    """The server, its request log and its behaviour plan."""

    def __init__(self, default: str = "ok") -> None:
        self.default = default
        self.plan: deque[str] = deque()
        self.requests: list[dict] = []
        self.behaviours: list[str] = []  # what each request got
        self.replies: list[str] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OPENAI_BASE_URL of this stub."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "OpenAIStub":
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and shut the server down."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict) -> tuple[str, str]:
        with self._lock:
            behaviour = self.plan.popleft() if self.plan else self.default
            self.requests.append(body)
            self.behaviours.append(behaviour)
            text = reply_for(body, len(self.requests))
            if behaviour in ("ok", "slow", "no_usage"):
                self.replies.append(text)
            return behaviour, text

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _event(self, payload) -> None:
                data = payload if isinstance(payload, str) else json.dumps(payload)
                self._chunk(f"data: {data}\n\n".encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send_error(404)
                    return
                behaviour, text = stub._next(body)
                if behaviour == "hang":
                    stub._stopping.wait(60)
                    self.close_connection = True
                    return
                if behaviour in ("500", "429", "503"):
                    error = json.dumps({"error": {"message": "stub failure", "type": "server"}})
                    self.send_response(int(behaviour))
                    if behaviour != "500":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error.encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                tokens = tokens_of(text)
                base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0}
                base["model"] = body.get("model", "stub")
                if behaviour == "slow":
                    stub._stopping.wait(SLOW_FIRST_TOKEN_S)
                for i, token in enumerate(tokens):
                    if behaviour == "stall" and i == 3:
                        stub._stopping.wait(60)
                        self.close_connection = True
                        return
                    delta = {"content": token} if i else {"role": "assistant", "content": token}
                    self._event({**base, "choices": [{"index": 0, "delta": delta}]})
                    if behaviour == "drop" and i == 2:
                        # Close the socket without the terminating chunk: a dropped stream.
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if behaviour == "malformed" and i == 2:
                        self._event("{this is not json")
                if behaviour != "no_done":
                    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
                    self._event({**base, "choices": [finish]})
                    wants_usage = (body.get("stream_options") or {}).get("include_usage")
                    if wants_usage and behaviour != "no_usage":
                        self._event({**base, "choices": [], "usage": usage_for(body, text)})
                    self._event("[DONE]")
                self._chunk(b"")

        return Handler
