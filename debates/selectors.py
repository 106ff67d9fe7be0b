"""Debate reads: every query the API, admin, pages and runs share."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, Count, F, IntegerField, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Cast, Floor, Least
from django.utils import timezone

from debates.engine.market import canonical_asset
from debates.engine.state import ArgumentItem, QuestionItem
from debates.models import (
    Argument,
    Debate,
    DebateStatus,
    Forecast,
    Question,
    ShareLink,
    Vote,
    VotePhase,
    VoteSide,
)
from debates.scoring import CALIBRATION_BINS

# Longer than any token this server issues (secrets.token_urlsafe(32): 43 characters).
SHARE_TOKEN_MAX_CHARS = 128


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


def share_links_of(*, debate_id) -> QuerySet[ShareLink]:
    """A debate's share links, newest first (revoked ones too)."""
    return ShareLink.objects.filter(debate_id=debate_id).select_related("created_by")


def share_link_active(*, token: str) -> ShareLink | None:
    """The active share link this token opens, with its debate, or None."""
    if not token or len(token) > SHARE_TOKEN_MAX_CHARS:
        return None
    links = ShareLink.objects.select_related("debate").filter(revoked_at__isnull=True)
    return links.filter(token_hash=ShareLink.hash_token(token)).first()


def share_links_by_hash(*, token_hashes) -> dict:
    """``{token_hash: (debate_id, link_id)}`` of the active share links among these hashes, in
    one query."""
    links = ShareLink.objects.filter(token_hash__in=list(token_hashes), revoked_at__isnull=True)
    rows = links.values_list("token_hash", "debate_id", "pk")
    return {token_hash: (debate_id, pk) for token_hash, debate_id, pk in rows}


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
        .values("status", "runner_id", "paused_at", "conclusion_reason", "concluding_at")
        .first()
    )


def debate_questions(*, debate_id) -> QuerySet[Question]:
    """A debate's questions, oldest first."""
    return Question.objects.filter(debate_id=debate_id).select_related("asked_by")


def open_questions(*, debate_id) -> list[QuestionItem]:
    """The questions no saved argument has answered yet, oldest first."""
    rows = debate_questions(debate_id=debate_id).filter(answered_in_turn__isnull=True)
    return [QuestionItem(id=q.pk, text=q.text) for q in rows]


# --- Audience votes ---------------------------------------------------------------------------


@dataclass
class VoteTallies:
    """A debate's votes per phase and side; ``version`` grows with every vote written."""

    counts: dict = field(default_factory=dict)  # (phase, side) -> votes
    version: int = 0

    def of(self, phase: str) -> dict:
        """{bull, bear} of one phase."""
        return {side: self.counts.get((phase, side), 0) for side in VoteSide.values}


def _has_arguments(debate: Debate) -> bool:
    prefetched = getattr(debate, "_prefetched_objects_cache", {}).get("arguments")
    if prefetched is not None:
        return len(prefetched) > 0
    return Argument.objects.filter(debate_id=debate.pk).exists()


def vote_after_closes_at(*, debate: Debate) -> datetime | None:
    """When the after-verdict vote closes (None: not open yet, or never closes)."""
    window = float(settings.VOTE_AFTER_WINDOW_S)
    if debate.finished_at is None or window <= 0:
        return None
    return debate.finished_at + timedelta(seconds=window)


def vote_open_phase(*, debate: Debate, now: datetime | None = None) -> str | None:
    """The phase a vote counts in now: ``before`` while the debate is pending or running until
    its first argument is saved; ``after`` once it completed with a verdict, for
    VOTE_AFTER_WINDOW_S (0: no end); otherwise None (closed)."""
    if debate.status == DebateStatus.PENDING:
        return VotePhase.BEFORE
    if debate.status == DebateStatus.RUNNING:
        return None if _has_arguments(debate) else VotePhase.BEFORE
    if debate.status == DebateStatus.COMPLETED and debate.verdict_recommendation:
        closes_at = vote_after_closes_at(debate=debate)
        if closes_at is None or (now or timezone.now()) < closes_at:
            return VotePhase.AFTER
    return None


def _count_name(phase: str, side: str) -> str:
    return f"{phase}_{side}"


def vote_tallies(*, debate_id) -> VoteTallies:
    """The debate's tallies and their version, in one query (one consistent snapshot)."""
    counts = {
        _count_name(phase, side): Count("pk", filter=Q(phase=phase, side=side))
        for phase in VotePhase.values
        for side in VoteSide.values
    }
    row = Vote.objects.filter(debate_id=debate_id).aggregate(
        **counts, votes=Count("pk"), changes=Sum("changes")
    )
    return VoteTallies(
        counts={
            (phase, side): row[_count_name(phase, side)]
            for phase in VotePhase.values
            for side in VoteSide.values
        },
        version=row["votes"] + (row["changes"] or 0),
    )


def vote_tallies_many(*, debate_ids) -> dict:
    """Tallies of several debates in one query, keyed by debate id."""
    tallies = {debate_id: VoteTallies() for debate_id in debate_ids}
    rows = (
        Vote.objects.filter(debate_id__in=list(tallies))
        .values_list("debate_id", "phase", "side")
        .annotate(n=Count("pk"), changed=Sum("changes"))
        .order_by()
    )
    for debate_id, phase, side, n, changed in rows:
        tallies[debate_id].counts[(phase, side)] = n
        tallies[debate_id].version += n + (changed or 0)
    return tallies


def votes_of_user(*, user, debate_ids) -> dict:
    """The user's votes on these debates: debate id -> {phase: side}."""
    mine: dict = {debate_id: {} for debate_id in debate_ids}
    if user is None or not user.is_authenticated:
        return mine
    rows = Vote.objects.filter(user=user, debate_id__in=list(mine)).values_list(
        "debate_id", "phase", "side"
    )
    for debate_id, phase, side in rows:
        mine[debate_id][phase] = side
    return mine


def vote_swing(tallies: VoteTallies) -> dict:
    """The result: each phase's {bull, bear}, the swing (after share minus before share of
    each side, in percentage points; null until both phases have votes) and the side that
    moved the room (``movedTo``: null when nobody moved or the swing is not known yet)."""
    before, after = tallies.of(VotePhase.BEFORE), tallies.of(VotePhase.AFTER)
    before_total, after_total = sum(before.values()), sum(after.values())
    swing, moved_to = None, None
    if before_total and after_total:
        swing = {
            side: round(100.0 * (after[side] / after_total - before[side] / before_total), 1)
            for side in VoteSide.values
        }
        best = max(swing, key=swing.get)
        moved_to = best if swing[best] > 0 else None
    return {"before": before, "after": after, "swing": swing, "moved_to": moved_to}


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
