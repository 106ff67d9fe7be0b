"""Debate reads: every query the API, admin, pages and runs share."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, Count, F, IntegerField, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Cast, Floor, Least
from django.utils import timezone

from debates.engine.market import canonical_asset
from debates.engine.state import ArgumentItem, QuestionItem
from debates.models import Argument, Debate, DebateStatus, Forecast, Question
from debates.scoring import CALIBRATION_BINS


def debate_list(*, status: str | None = None, asset: str | None = None) -> QuerySet[Debate]:
    """Debates newest first, with arguments in order."""
    qs = (
        Debate.objects.select_related("created_by", "forecast")
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


# --- Track record ---------------------------------------------------------------------------


def forecasts_due(*, now) -> QuerySet[Forecast]:
    """Unresolved forecasts whose due time has come, oldest due first."""
    return Forecast.objects.filter(resolved_at__isnull=True, due_at__lte=now).order_by("due_at")


# Every forecast is in exactly one of: resolved (scored), pending (parsed, not resolved yet),
# unparsed (never scored, counted apart whether resolved or not).
_SCORED = Q(parsed=True, resolved_at__isnull=False)
_SUMMARY = {
    "total": Count("pk"),
    "resolved": Count("pk", filter=_SCORED),
    "hits": Count("pk", filter=_SCORED & Q(hit=True)),
    "mean_brier": Avg("brier", filter=_SCORED),
    "mean_return_pct": Avg("return_pct", filter=_SCORED),
    "pending": Count("pk", filter=Q(parsed=True, resolved_at__isnull=True)),
    "unparsed": Count("pk", filter=Q(parsed=False)),
    "sample": Count("pk", filter=Q(is_sample=True)),
}


def _summary(row: dict, bins: dict) -> dict:
    resolved = row["resolved"]
    return {
        **{k: row[k] for k in _SUMMARY},
        "hit_rate": row["hits"] / resolved if resolved else None,
        "calibration": _calibration(bins),
    }


def _calibration(found: dict) -> list[dict]:
    """Every confidence bin, empty ones included (hit rate null)."""
    out = []
    for i in range(CALIBRATION_BINS):
        count, hits, mean_conf = found.get(i, (0, 0, None))
        out.append(
            {
                "bin": i,
                "lower": i / CALIBRATION_BINS,
                "upper": (i + 1) / CALIBRATION_BINS,
                "count": count,
                "hits": hits,
                "hit_rate": hits / count if count else None,
                "mean_confidence": mean_conf,
            }
        )
    return out


def _grouped(qs: QuerySet[Forecast], key: str | None) -> list[tuple[str | None, dict]]:
    """Summaries and calibration bins of ``qs`` grouped by ``key`` (None: all of it), counted
    in the database."""
    keys = [key] if key else []
    rows = (
        qs.values(*keys).annotate(**_SUMMARY).order_by(*keys) if key else [qs.aggregate(**_SUMMARY)]
    )
    binned = (
        qs.filter(_SCORED)
        .annotate(
            bin=Cast(
                Least(Floor(F("confidence") * CALIBRATION_BINS), CALIBRATION_BINS - 1),
                IntegerField(),
            )
        )
        .values(*keys, "bin")
        .annotate(n=Count("pk"), hit_n=Count("pk", filter=Q(hit=True)), conf=Avg("confidence"))
        .order_by()
    )
    bins: dict = {}
    for b in binned:
        bins.setdefault(b[key] if key else None, {})[int(b["bin"])] = (
            b["n"],
            b["hit_n"],
            b["conf"],
        )
    return [
        (row[key] if key else None, _summary(row, bins.get(row[key] if key else None, {})))
        for row in rows
    ]


def track_record(*, model: str | None = None, asset: str | None = None) -> dict:
    """Hit rate, mean Brier score, counts and calibration bins: overall, per model, per asset."""
    qs = Forecast.objects.all()
    if model:
        qs = qs.filter(model=model)
    if asset:
        qs = qs.filter(asset=canonical_asset(asset))  # BTC/USDT is BTC, as the verdict saw it
    return {
        "overall": _grouped(qs, None)[0][1],
        "by_model": [{"model": k, **v} for k, v in _grouped(qs, "model")],
        "by_asset": [{"asset": k, **v} for k, v in _grouped(qs, "asset")],
    }
