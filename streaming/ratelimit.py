"""Rate limits: new connections per client IP (WS_RATE_LIMIT, "10/minute" by default), client
frames per socket (WS_CLIENT_FRAMES_PER_S with WS_CLIENT_FRAMES_BURST), and the one rule for a
client's IP (the WebSocket's and HTTP's).

Connections: a moving window from the ``limits`` library: with REDIS_URL its Redis script
(atomic Lua, shared by every process; with several Redis nodes, each client address's window on
the node its address hashes to), run through streaming.scripts so the checks of a connection
storm share round trips; without Redis its MemoryStorage in this process. Frames: a token bucket
on the socket itself.
"""

import ipaddress
import logging
import time
from functools import lru_cache
from importlib.resources import files

from django.conf import settings
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from streaming import backends
from streaming.backends import PerLoop
from streaming.scripts import LuaScript, run_script

logger = logging.getLogger(__name__)

# The limits library's own moving window (the script its RedisStorage runs, on its keys), run
# through streaming.scripts so a storm's checks share round trips.
_ACQUIRE = LuaScript(
    (files("limits") / "resources/redis/lua_scripts/acquire_moving_window.lua").read_text()
)
_memory: PerLoop[MovingWindowRateLimiter] = PerLoop(
    lambda: MovingWindowRateLimiter(MemoryStorage())
)


@lru_cache(maxsize=8)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


async def allow_connection(client_ip: str) -> bool:
    """Count one new connection from the IP; False when it is over the limit."""
    item = _item(settings.WS_RATE_LIMIT)
    if not backends.redis_url():
        return await _memory.get().hit(item, "ws-connect", client_ip)
    key = f"{backends.key('ratelimit')}:{item.key_for('ws-connect', client_ip)}"
    args = [time.time(), item.amount, item.get_expiry(), 1]
    return bool(await run_script(client_ip, _ACQUIRE, [key], args))


class FrameBudget:
    """One socket's client frames: a token bucket of WS_CLIENT_FRAMES_BURST frames refilled at
    WS_CLIENT_FRAMES_PER_S (0: no limit)."""

    def __init__(self, clock=time.monotonic) -> None:
        self.rate = float(settings.WS_CLIENT_FRAMES_PER_S)
        self.burst = max(1.0, float(settings.WS_CLIENT_FRAMES_BURST))
        self.tokens = self.burst
        self.clock = clock
        self.at = clock()

    def allow(self) -> bool:
        """Spend one frame; False when the socket is over its rate."""
        if self.rate <= 0:
            return True
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _header(scope, name: bytes) -> str:
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]
    return ",".join(values)


def resolve_client_ip(peer: str | None, forwarded_for: str) -> str | None:
    """The client's IP: the socket peer, or the Nth-from-right X-Forwarded-For entry when
    WS_TRUSTED_PROXIES = N > 0 (fewer entries than N: the socket peer)."""
    trusted = int(settings.WS_TRUSTED_PROXIES)
    if trusted > 0:
        entries = [e.strip() for e in forwarded_for.split(",") if e.strip()]
        if len(entries) >= trusted:
            candidate = entries[-trusted]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                logger.warning("ignoring a malformed X-Forwarded-For entry")
    return peer


def client_ip(scope) -> str | None:
    """A WebSocket's client IP (resolve_client_ip)."""
    client = scope.get("client")
    return resolve_client_ip(client[0] if client else None, _header(scope, b"x-forwarded-for"))


def request_client_ip(request) -> str | None:
    """An HTTP request's client IP (resolve_client_ip), for the same rule on every path."""
    peer = request.META.get("REMOTE_ADDR") or None
    return resolve_client_ip(peer, request.META.get("HTTP_X_FORWARDED_FOR", ""))
