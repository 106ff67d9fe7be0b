"""Root URL configuration."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from streaming.metrics import metrics_view
from tradeapp import health
from tradeapp.auth_api import LoginApi, RefreshApi, RevokeApi

# The docs pages' bundles set inline styles and start web workers: allowed on those pages only.
docs_csp = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", LoginApi.as_view(), name="token_obtain_pair"),
    path("api/auth/token/refresh/", RefreshApi.as_view(), name="token_refresh"),
    path("api/auth/token/revoke/", RevokeApi.as_view(), name="token_revoke"),
    path("api/", include("debates.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script.
    path(
        "api/docs/",
        docs_csp(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path("api/redoc/", docs_csp(SpectacularRedocView.as_view(url_name="schema")), name="api-redoc"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("debates.page_urls")),
]

handler404 = "tradeapp.errors.not_found"
handler500 = "tradeapp.errors.server_error"
