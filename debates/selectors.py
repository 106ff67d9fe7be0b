"""Debate reads: every query the API, admin and pages share."""

from django.db.models import Count, Prefetch, Q, QuerySet

from debates.models import Argument, Debate, Viewer

LIVE_VIEWERS = Q(viewers__disconnected_at__isnull=True)


def debate_list(*, status: str | None = None, asset: str | None = None) -> QuerySet[Debate]:
    """Debates newest first, with arguments in order and the live viewer count."""
    qs = (
        Debate.objects.select_related("created_by")
        .prefetch_related(Prefetch("arguments", queryset=Argument.objects.order_by("turn")))
        .annotate(viewer_count=Count("viewers", filter=LIVE_VIEWERS))
        .order_by("-created_at")
    )
    if status:
        qs = qs.filter(status=status)
    if asset:
        qs = qs.filter(asset=asset.strip().upper())
    return qs


def debate_arguments(*, debate_id) -> QuerySet[Argument]:
    """The saved transcript of one debate, in turn order."""
    return Argument.objects.filter(debate_id=debate_id).order_by("turn")


def live_viewers(*, debate_id=None) -> QuerySet[Viewer]:
    """Open viewer connections, optionally of one debate."""
    qs = Viewer.objects.filter(disconnected_at__isnull=True)
    if debate_id is not None:
        qs = qs.filter(debate_id=debate_id)
    return qs


def live_viewer_counts(*, debate_ids) -> dict:
    """Open viewer connections per debate id, 0 for a debate without any."""
    counts = dict.fromkeys(debate_ids, 0)
    rows = (
        live_viewers()
        .filter(debate_id__in=counts)
        .order_by()
        .values("debate_id")
        .annotate(n=Count("pk"))
        .values_list("debate_id", "n")
    )
    counts.update(rows)
    return counts
