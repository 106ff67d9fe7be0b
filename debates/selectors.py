"""Debate reads: every query the API, admin, pages and runs share."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, QuerySet, Sum
from django.utils import timezone

from debates.engine.state import ArgumentItem, QuestionItem
from debates.models import Argument, Debate, DebateStatus, Question


def debate_list(*, status: str | None = None, asset: str | None = None) -> QuerySet[Debate]:
    """Debates newest first, with arguments in order."""
    qs = (
        Debate.objects.select_related("created_by")
        .prefetch_related(
            Prefetch("arguments", queryset=Argument.objects.order_by("turn")),
            Prefetch("questions", queryset=Question.objects.select_related("asked_by")),
        )
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


def debate_transcript(*, debate_id) -> list[ArgumentItem]:
    """The saved transcript as the engine's argument items (to resume a debate)."""
    return [
        ArgumentItem(turn=a.turn, agent=a.agent, content=a.content)
        for a in debate_arguments(debate_id=debate_id)
    ]


def debate_status(*, debate_id) -> str:
    """The debate's current status ("" when it does not exist)."""
    return Debate.objects.filter(pk=debate_id).values_list("status", flat=True).first() or ""


def user_usage_since(*, user, since: datetime) -> tuple[int, Decimal]:
    """Tokens and (known) US dollars of the user's debates' calls saved since `since`."""
    totals = Argument.objects.filter(debate__created_by=user, created_at__gte=since).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
    )
    tokens = (totals["prompt"] or 0) + (totals["completion"] or 0)
    return tokens, totals["cost"] or Decimal(0)


def user_oldest_usage_since(*, user, since: datetime) -> datetime | None:
    """When the oldest of the user's calls saved since `since` was saved."""
    return (
        Argument.objects.filter(debate__created_by=user, created_at__gte=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def debates_silent() -> list:
    """Ids of running debates whose runner missed two heartbeats but is not stale yet (their
    viewers are told the debate is being recovered)."""
    now = timezone.now()
    silent_since = now - timedelta(seconds=2 * float(settings.DEBATE_HEARTBEAT_S))
    stale_since = now - timedelta(seconds=float(settings.DEBATE_STALE_AFTER_S))
    return list(
        Debate.objects.filter(
            status=DebateStatus.RUNNING,
            heartbeat_at__lt=silent_since,
            heartbeat_at__gte=stale_since,
        ).values_list("pk", flat=True)
    )


def debate_controls(*, debate_id) -> dict | None:
    """The moderator controls' state of a debate (what its run acts on), or None."""
    return (
        Debate.objects.filter(pk=debate_id)
        .values("status", "paused_at", "conclusion_reason", "concluding_at")
        .first()
    )


def debate_questions(*, debate_id) -> QuerySet[Question]:
    """A debate's questions, oldest first."""
    return Question.objects.filter(debate_id=debate_id).select_related("asked_by")


def open_questions(*, debate_id) -> list[QuestionItem]:
    """The questions no saved argument has answered yet, oldest first."""
    rows = debate_questions(debate_id=debate_id).filter(answered_in_turn__isnull=True)
    return [QuestionItem(id=q.pk, text=q.text) for q in rows]
