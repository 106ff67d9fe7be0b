"""Debate reads: every query the API, admin, pages and runs share."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from debates.engine.state import ArgumentItem, QuestionItem
from debates.models import (
    Argument,
    Debate,
    DebateStatus,
    Question,
    ShareLink,
    Vote,
    VotePhase,
    VoteSide,
)

# Longer than any token this server issues (secrets.token_urlsafe(32): 43 characters).
SHARE_TOKEN_MAX_CHARS = 128


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
