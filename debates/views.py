"""HTML pages: thin shells whose data comes from the REST API and the WebSocket (DESIGN §3)."""

from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _page(request: HttpRequest, template: str, **context) -> HttpResponse:
    """Render a page; auth happens in the browser with the JWT pair, so pages are public shells."""
    return render(request, template, context)


def signin(request: HttpRequest) -> HttpResponse:
    """The sign-in form (stores the JWT pair in sessionStorage)."""
    return _page(request, "debates/signin.html", page="signin")


def debate_list(request: HttpRequest) -> HttpResponse:
    """Debates with status and live viewers, and the form to start a new one."""
    return _page(request, "debates/list.html", page="list")


def debate_watch(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Watch one debate live: both sides streaming, turn, status, viewers and the verdict."""
    return _page(
        request,
        "debates/watch.html",
        page="watch",
        debate_id=str(pk),
        ping_interval_ms=int(settings.WS_PING_INTERVAL_S * 1000),
    )


def shared_watch(request: HttpRequest) -> HttpResponse:
    """Watch (or replay) the debate of a share link at /shared/#<token>, without an account."""
    return _page(
        request,
        "debates/watch.html",
        page="watch",
        debate_id="",
        shared=True,
        ping_interval_ms=int(settings.WS_PING_INTERVAL_S * 1000),
    )


def track_record(request: HttpRequest) -> HttpResponse:
    """How right the verdicts were: hit rate, Brier score and calibration per model and asset."""
    return _page(request, "debates/track_record.html", page="track-record")
