"""Prometheus metrics of the streaming layer and the /metrics view.

/metrics answers the client IPs in METRICS_ALLOWED_IPS (loopback by default; the client IP as
streaming.ratelimit resolves it, so behind a proxy the proxy's own address does not count) and
requests with ``Authorization: Bearer <METRICS_TOKEN>``; anyone else gets 403.

With several daphne processes set PROMETHEUS_MULTIPROC_DIR (wiped by whoever starts the
processes); the view then aggregates every process's files, gauges with ``livesum`` (the
live-gauge files of processes that died without cleaning up are removed first; the directory
is per host, so a pid names a process of this machine).
"""

import contextlib
import hmac
import ipaddress
import os
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from streaming.ratelimit import request_client_ip

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ACTIVE_CONNECTIONS = Gauge(
    "ws_active_connections",
    "Open debate WebSockets that passed every check.",
    multiprocess_mode="livesum",
)
MESSAGES_SENT = Counter("ws_messages_sent", "Frames sent to viewers (events, pings, replies).")
RECONNECTIONS = Counter("ws_reconnections", "Connections that resumed with lastSeq.")
ERRORS = Counter("ws_errors", "DEBATE/ERROR frames sent, by code.", ["code"])
EVENT_SEND_LATENCY = Histogram(
    "ws_event_send_latency_seconds",
    "From the creation of a message's oldest event to its delivery to the last local viewer "
    "(per message, per process).",
    buckets=LATENCY_BUCKETS,
)
SLOW_VIEWERS_DROPPED = Counter(
    "ws_slow_viewers_dropped",
    "Sockets aborted because their unsent data passed WS_SEND_BUFFER_LIMIT_BYTES.",
)
SERVER_PATCH_ACTIVE = Gauge(
    "server_patch_active",
    "1 when the streaming.server patch is applied in this process, 0 when left off.",
    ["patch"],
    multiprocess_mode="liveall",  # one sample per live process, so an unpatched one shows
)
FAST_PATH_FRAMES = Counter(
    "ws_fast_path_frames",
    "Frames written straight to daphne's sockets by the fast path (flushed once a second).",
)
TIME_TO_FIRST_TOKEN = Histogram(
    "debate_time_to_first_token_seconds",
    "From the start of a debate's run to its first token handed to the publisher.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live(?:sum|all|max|min|mostrecent)_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_processes(path: str) -> list[int]:
    """Drop the live-gauge files of processes that are gone (a killed daphne's open sockets
    would otherwise stay in ws_active_connections); counters and histograms are kept."""
    dead = set()
    for name in os.listdir(path):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):  # another process reaped it first
            multiprocess.mark_process_dead(pid, path)
    return sorted(dead)


def _ip_allowed(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
        return any(
            address in ipaddress.ip_network(allowed, strict=False)
            for allowed in settings.METRICS_ALLOWED_IPS
        )
    except ValueError:
        return False


def metrics_allowed(request: HttpRequest) -> bool:
    """True for a client IP in METRICS_ALLOWED_IPS or the METRICS_TOKEN bearer token."""
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    return _ip_allowed(request_client_ip(request))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text of this process, or of every process in multiprocess mode (403 for a
    client that metrics_allowed refuses)."""
    if not metrics_allowed(request):
        return JsonResponse({"detail": "Metrics are not available to this client."}, status=403)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        reap_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
