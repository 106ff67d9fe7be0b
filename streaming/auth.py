"""ASGI middleware: authenticate a WebSocket from the simplejwt access token in ``?token=``.

The middleware never refuses a socket itself: it records the outcome in ``scope["auth"]``; the
consumer accepts, sends DEBATE/ERROR and closes 4001 so that browsers can read the code. Tokens
are checked by simplejwt's JWTAuthentication (its AUTH_TOKEN_CLASSES, AccessToken by default):
expired, tampered, ``alg=none`` and refresh tokens are refused. That check is pure CPU, done on
the event loop: the token's user is looked up later, with the debate, in the viewer ledger's
batched database call (``token_user`` applies simplejwt's rules: the user exists, is active and,
with CHECK_REVOKE_TOKEN, has not changed password), so a connect costs no database hop of its
own and a storm of them no queue on the one database thread. ``scope["user"]`` is AnonymousUser
until then; the consumer puts the user there once every check passed. ``WS_QA_TOKEN`` is
accepted for automated tests only while DEBUG is on, or when WS_QA_TOKEN_ALLOW_IN_PRODUCTION
says so. The token is never logged.

A share link's token (``?share=``, see debates.models.ShareLink) stands in for a JWT: the
middleware keeps only its hash, and the ledger's batched call checks that an active link of
that hash belongs to the socket's debate (else 4001). Such a socket has no user: it watches.
"""

import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import settings as simplejwt
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from debates.models import ShareLink
from debates.selectors import SHARE_TOKEN_MAX_CHARS
from streaming import protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthResult:
    """The outcome of authenticating one socket."""

    ok: bool
    reason: str = ""
    expires_at: float | None = None  # epoch seconds; None for the QA token
    qa: bool = False
    token: Token | None = None  # the validated token, whose user the ledger looks up
    share_hash: str | None = None  # a share link's token hash, checked by the ledger


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


def authenticate(raw: str | None) -> AuthResult:
    """Check a raw token's signature, type and expiry (no database: see the module)."""
    if not raw:
        return AuthResult(False, "missing token")
    if settings.WS_QA_TOKEN and hmac.compare_digest(raw.encode(), settings.WS_QA_TOKEN.encode()):
        if qa_token_allowed():
            return AuthResult(True, qa=True)
        return AuthResult(False, "QA token disabled")
    try:
        validated = JWTAuthentication().get_validated_token(raw.encode())
        expires_at = float(validated["exp"])
    except (InvalidToken, TokenError, AuthenticationFailed, KeyError):
        return AuthResult(False, "invalid or expired token")
    if simplejwt.api_settings.USER_ID_CLAIM not in validated:
        return AuthResult(False, "invalid or expired token")
    return AuthResult(True, expires_at=expires_at, token=validated)


def authenticate_share(raw: str) -> AuthResult:
    """A share token's hash for the ledger to check (no database here, as for JWTs)."""
    if len(raw) > SHARE_TOKEN_MAX_CHARS:
        return AuthResult(False, "invalid share token")
    return AuthResult(True, share_hash=ShareLink.hash_token(raw))


def token_users(tokens: Iterable[Token]) -> dict:
    """The users these validated tokens name, in one query, by user id claim."""
    ids = {token[simplejwt.api_settings.USER_ID_CLAIM] for token in tokens}
    if not ids:
        return {}
    users = get_user_model().objects.in_bulk(ids, field_name=simplejwt.api_settings.USER_ID_FIELD)
    return {str(key): user for key, user in users.items()}  # tokens carry the id as a string


def token_user(token: Token, users: dict):
    """The token's user from `users` (token_users), by simplejwt's rules (JWTAuthentication
    .get_user): it exists, is active, and, with CHECK_REVOKE_TOKEN, kept its password; else
    None."""
    user = users.get(str(token[simplejwt.api_settings.USER_ID_CLAIM]))
    if user is None:
        return None
    if simplejwt.api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
        return None
    if simplejwt.api_settings.CHECK_REVOKE_TOKEN and token.get(
        simplejwt.api_settings.REVOKE_TOKEN_CLAIM
    ) != get_md5_hash_password(user.password):
        return None
    return user


class JwtQueryAuthMiddleware:
    """Put ``scope["auth"]`` (and an AnonymousUser on ``scope["user"]``) on WebSocket scopes from
    ``?token=``."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            params = query_params(scope)
            share = params.get(protocol.SHARE_PARAM)
            if share and not params.get("token"):
                result = authenticate_share(share)
            else:
                result = authenticate(params.get("token"))
            scope = {**scope, "user": AnonymousUser(), "auth": result}
        return await self.inner(scope, receive, send)
