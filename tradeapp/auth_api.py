"""The token endpoints: sign-in throttled per IP and per username, rotating refresh tokens,
and sign-out revoking the refresh token (simplejwt's blacklist)."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
)

from streaming.ratelimit import request_client_ip

THROTTLED = OpenApiResponse(description="Too many attempts; `Retry-After` says when to retry.")
REFUSED = OpenApiResponse(description="Unknown, expired, revoked or malformed refresh token.")


class _LoginThrottle(SimpleRateThrottle):
    """A sign-in throttle whose rate is read from the settings when each request is checked
    (SimpleRateThrottle keeps the rates it saw when first imported)."""

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class LoginIpThrottle(_LoginThrottle):
    """Sign-in attempts per client IP (LOGIN_RATE_PER_IP), the IP as the WebSocket's rate limit
    resolves it (WS_TRUSTED_PROXIES), so a client cannot forge X-Forwarded-For past it."""

    scope = "login_ip"

    def get_cache_key(self, request, view) -> str:
        ident = request_client_ip(request) or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginUsernameThrottle(_LoginThrottle):
    """Sign-in attempts per username from any IP (LOGIN_RATE_PER_USERNAME): guessing one
    account's password from many addresses is throttled too."""

    scope = "login_username"

    def get_cache_key(self, request, view) -> str | None:
        data = request.data if hasattr(request.data, "get") else {}
        username = data.get("username")
        if not isinstance(username, str) or not username.strip():
            return None  # refused by the serializer anyway
        ident = username.strip().lower().encode().hex()[:300]  # any text, a safe cache key
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, with a deleted user's token refused (401) instead of a 500."""

    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from None


@extend_schema_view(post=extend_schema(responses={429: THROTTLED}))
class LoginApi(TokenObtainPairView):
    """Exchange a username and password for an access and a refresh token."""

    throttle_classes = [LoginIpThrottle, LoginUsernameThrottle]


@extend_schema_view(post=extend_schema(responses={401: REFUSED}))
class RefreshApi(TokenRefreshView):
    """A new access token and a new refresh token; the refresh token sent is revoked."""


@extend_schema_view(post=extend_schema(responses={401: REFUSED}))
class RevokeApi(TokenBlacklistView):
    """Sign out: revoke the refresh token (its access token lapses within minutes)."""
