"""Streaming reads: open viewer connections."""

from django.db.models import QuerySet

from streaming.models import Viewer


def live_viewers(*, debate_id=None) -> QuerySet[Viewer]:
    """Open viewer connections, optionally of one debate."""
    qs = Viewer.objects.filter(disconnected_at__isnull=True)
    if debate_id is not None:
        qs = qs.filter(debate_id=debate_id)
    return qs
