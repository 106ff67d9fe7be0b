"""ASGI middleware: authenticate a WebSocket from the simplejwt access token in ``?token=``.

The middleware never refuses a socket itself: it records the outcome in ``scope["auth"]`` and
puts the user on ``scope["user"]``; the consumer accepts, sends DEBATE/ERROR and closes 4001 so
that browsers can read the code. Tokens are checked by simplejwt's JWTAuthentication (its
AUTH_TOKEN_CLASSES, AccessToken by default): expired, tampered, ``alg=none`` and refresh tokens
are refused. ``WS_QA_TOKEN`` is accepted for automated tests only while DEBUG is on, or when
WS_QA_TOKEN_ALLOW_IN_PRODUCTION says so. The token is never logged.
"""

import hmac
import logging
from dataclasses import dataclass
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthResult:
    """The outcome of authenticating one socket."""

    ok: bool
    reason: str = ""
    expires_at: float | None = None  # epoch seconds; None for the QA token
    qa: bool = False


def query_params(scope) -> dict[str, str]:
    """The socket's query string as a dict of first values."""
    raw = scope.get("query_string", b"")
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def qa_token_allowed() -> bool:
    """True when WS_QA_TOKEN may be used (set, and DEBUG or explicitly allowed)."""
    return bool(settings.WS_QA_TOKEN) and (
        settings.DEBUG or settings.WS_QA_TOKEN_ALLOW_IN_PRODUCTION
    )


def _validate_jwt(raw: str):
    authenticator = JWTAuthentication()
    validated = authenticator.get_validated_token(raw.encode())
    user = authenticator.get_user(validated)
    return user, float(validated["exp"])


async def authenticate(raw: str | None) -> tuple[AuthResult, object]:
    """Check a raw token; return the result and the user (AnonymousUser when refused)."""
    if not raw:
        return AuthResult(False, "missing token"), AnonymousUser()
    if settings.WS_QA_TOKEN and hmac.compare_digest(raw.encode(), settings.WS_QA_TOKEN.encode()):
        if qa_token_allowed():
            return AuthResult(True, qa=True), AnonymousUser()
        return AuthResult(False, "QA token disabled"), AnonymousUser()
    try:
        user, expires_at = await database_sync_to_async(_validate_jwt)(raw)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AuthResult(False, "invalid or expired token"), AnonymousUser()
    return AuthResult(True, expires_at=expires_at), user


class JwtQueryAuthMiddleware:
    """Put ``scope["user"]`` and ``scope["auth"]`` on WebSocket scopes from ``?token=``."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            result, user = await authenticate(query_params(scope).get("token"))
            scope = {**scope, "user": user, "auth": result}
        return await self.inner(scope, receive, send)
