"""DRF's exception handler, plus 503 for a database or Redis that is down (never a 500)."""

import logging

from rest_framework.response import Response
from rest_framework.views import exception_handler

from tradeapp.retry import service_of

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5


def api_exception_handler(exc, context):
    """DRF's answer; for a lost or refused database or Redis connection, 503 with Retry-After
    and the service's name (never its address)."""
    response = exception_handler(exc, context)
    if response is not None:
        return response
    service = service_of(exc)
    if service is None:
        return None  # a real bug: Django's 500, with its trace in the log
    logger.warning("API request failed: the %s is unavailable (%s)", service, type(exc).__name__)
    return Response(
        {"detail": f"The {service} is temporarily unavailable; try again shortly."},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
