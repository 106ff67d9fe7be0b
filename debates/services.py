"""Debate business logic: every write to the debates tables, and every status announcement.

Each function here is one short transaction. A function that changes a debate's status also
announces it to viewers (a STATUS_UPDATE through streaming.publisher), on commit: nothing else
publishes a status. Two announcements follow a run rather than a row change: a run announces
``running`` when it begins (``run_begin``; held for its opening, and again after a takeover), and
a cancel of a debate whose run is alive leaves the announcement to that run once it has stopped
(``run_stopped``), so the final status is always the debate's last event.

The run's own writes (heartbeat, market context, argument, verdict, finish) only take effect
while the row is still ``running`` under the caller's runner id, so a run that was cancelled or
taken over can never write into a debate it no longer owns.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from debates import costs
from debates.engine.market import get_provider
from debates.models import (
    DEFAULT_TURNS,
    Agent,
    Argument,
    ConclusionReason,
    Debate,
    DebateStatus,
    Question,
)
from debates.selectors import debate_status, user_oldest_usage_since, user_usage_since
from debates.validators import normalise_asset
from streaming import protocol
from streaming.publisher import publish_events

logger = logging.getLogger(__name__)

# How long the announcement of `running` waits to go out together with the run's first token.
OPENING_HOLD_S = 0.05


QUOTA_WINDOW = timedelta(days=1)


class DebateStateError(Exception):
    """The debate is not in a state that allows the operation (HTTP 409)."""


class QuotaExceeded(Exception):
    """A user's debate quota is used up (HTTP 429); says which, its limit and window."""

    def __init__(self, detail: str, *, quota: str, limit: int, window: str, retry_after_s=None):
        super().__init__(detail)
        self.detail = detail
        self.quota = quota
        self.limit = limit
        self.window = window
        self.retry_after_s = retry_after_s


def market_provider():
    """The configured market data provider (MARKET_DATA_PROVIDER)."""
    return get_provider(settings.MARKET_DATA_PROVIDER, settings.MARKET_DATA_URL)


def validate_supported_asset(asset: str) -> str:
    """Normalise the asset and check the market data provider knows it; raise ValidationError."""
    asset = normalise_asset(asset)
    provider = market_provider()
    if not provider.supports(asset):
        raise ValidationError(
            {"asset": [f"No {provider.name} market data for {asset!r}."]}, code="unsupported"
        )
    return asset


def stale_cutoff():
    """Heartbeats older than this belong to dead runners."""
    return timezone.now() - timedelta(seconds=float(settings.DEBATE_STALE_AFTER_S))


# --- Announcing statuses ----------------------------------------------------------------------


def _announce(debate_id, status: str, *, hold_s: float = 0.0) -> None:
    """Publish the debate's STATUS_UPDATE once the current transaction commits."""

    def publish_status() -> None:
        events = [(protocol.STATUS_UPDATE, {"status": status})]
        async_to_sync(publish_events)(debate_id, events, hold_s=hold_s)

    # robust: the status is in the database either way; a failed publish is logged, and viewers
    # get the status from the database when they reconnect.
    transaction.on_commit(publish_status, robust=True)


# --- Quotas (what costs money: each run is up to 2 * maxTurns + 1 model calls) ----------------


def _quota_applies(user: AbstractBaseUser | None, limit: int) -> bool:
    return limit > 0 and user is not None and user.is_authenticated and not user.is_staff


def _lock_user(user: AbstractBaseUser) -> None:
    """Serialise one user's quota checks (two requests at once cannot both take the last one)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).exists()


def check_create_quota(*, user: AbstractBaseUser | None) -> None:
    """Raise QuotaExceeded when the user created DEBATES_PER_USER_PER_DAY debates within the
    last 24 hours (staff, and trusted callers passing None, are exempt)."""
    limit = int(settings.DEBATES_PER_USER_PER_DAY)
    if not _quota_applies(user, limit):
        return
    _lock_user(user)
    since = timezone.now() - QUOTA_WINDOW
    recent = Debate.objects.filter(created_by=user, created_at__gte=since)
    created = list(recent.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(created) >= limit:
        retry_after = (created[-1] + QUOTA_WINDOW - timezone.now()).total_seconds()
        raise QuotaExceeded(
            f"You may create {limit} debates in 24 hours; try again later.",
            quota="debates_per_day",
            limit=limit,
            window="24h",
            retry_after_s=max(1, int(retry_after) + 1),
        )


def check_running_quota(*, user: AbstractBaseUser | None, starting: Debate) -> None:
    """Raise QuotaExceeded when DEBATES_RUNNING_PER_USER of the user's debates other than
    ``starting`` are running (staff, and debates without a creator, are exempt)."""
    limit = int(settings.DEBATES_RUNNING_PER_USER)
    if not _quota_applies(user, limit):
        return
    _lock_user(user)
    running = Debate.objects.filter(created_by=user, status=DebateStatus.RUNNING)
    if running.exclude(pk=starting.pk).count() >= limit:
        raise QuotaExceeded(
            f"You may have {limit} debates running at once; wait for one to finish.",
            quota="running_debates",
            limit=limit,
            window="running",
        )


def _daily_budgets(user: AbstractBaseUser | None) -> tuple[int, Decimal]:
    """The user's daily token and cost budgets (0: none; staff and trusted callers: none)."""
    tokens = int(settings.USER_DAILY_TOKEN_BUDGET)
    cost = Decimal(str(settings.USER_DAILY_COST_BUDGET))
    if user is None or not user.is_authenticated or user.is_staff:
        return 0, Decimal(0)
    return max(tokens, 0), max(cost, Decimal(0))


def daily_budget_left(*, user: AbstractBaseUser | None) -> tuple[int | None, Decimal | None]:
    """What is left of the user's daily budgets, in tokens and US dollars (None: no limit)."""
    token_budget, cost_budget = _daily_budgets(user)
    if not token_budget and not cost_budget:
        return None, None
    used_tokens, used_cost = user_usage_since(user=user, since=timezone.now() - QUOTA_WINDOW)
    return (
        max(token_budget - used_tokens, 0) if token_budget else None,
        max(cost_budget - used_cost, Decimal(0)) if cost_budget else None,
    )


def check_usage_budget(*, user: AbstractBaseUser | None) -> None:
    """Raise QuotaExceeded when the user's debates used USER_DAILY_TOKEN_BUDGET tokens or
    USER_DAILY_COST_BUDGET US dollars within the last 24 hours (staff are exempt)."""
    tokens_left, cost_left = daily_budget_left(user=user)
    token_budget, cost_budget = _daily_budgets(user)
    if tokens_left == 0:
        detail = f"You may use {token_budget} tokens in 24 hours; try again later."
        quota, limit = "daily_tokens", token_budget
    elif cost_left == 0:
        detail = f"You may spend {cost_budget} US dollars in 24 hours; try again later."
        quota, limit = "daily_cost", float(cost_budget)
    else:
        return
    oldest = user_oldest_usage_since(user=user, since=timezone.now() - QUOTA_WINDOW)
    retry_after = (oldest + QUOTA_WINDOW - timezone.now()).total_seconds() if oldest else 0
    raise QuotaExceeded(
        detail, quota=quota, limit=limit, window="24h", retry_after_s=max(1, int(retry_after) + 1)
    )


def run_budget(*, debate: Debate) -> tuple[int | None, Decimal | None]:
    """The limits a run of the debate stops at: its own budget, or what is left of its
    creator's daily budget, whichever is lower (None: no limit)."""
    tokens_left, cost_left = daily_budget_left(user=debate.created_by)
    used = costs.DebateUsage.of_arguments(debate.arguments.all())
    if tokens_left is not None:
        tokens_left += used.total.tokens  # the debate's own usage so far is in the daily sum
    if cost_left is not None and used.total.cost is not None:
        cost_left += used.total.cost
    tokens = [b for b in (debate.budget_tokens, tokens_left) if b is not None]
    money = [b for b in (debate.budget_cost, cost_left) if b is not None]
    return (min(tokens) if tokens else None), (min(money) if money else None)


# --- Debates, as users and operators change them --------------------------------------------


@transaction.atomic
def debate_create(
    *,
    asset: str,
    max_turns: int = DEFAULT_TURNS,
    created_by: AbstractBaseUser | None,
    budget_tokens: int | None = None,
    budget_cost: Decimal | None = None,
) -> Debate:
    """Create a pending debate after validating its fields, the creator's daily quota and
    daily usage budget."""
    debate = Debate(
        asset=validate_supported_asset(asset),
        max_turns=max_turns,
        created_by=created_by,
        budget_tokens=budget_tokens,
        budget_cost=budget_cost,
    )
    debate.full_clean(exclude=["created_by"])
    check_create_quota(user=created_by)
    check_usage_budget(user=created_by)
    debate.save()
    return debate


def can_control(*, debate: Debate, user: AbstractBaseUser | None) -> bool:
    """True if the user may start or cancel the debate: its creator or staff."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff or (debate.created_by_id is not None and debate.created_by_id == user.pk)


def check_can_control(*, debate: Debate, user: AbstractBaseUser | None) -> None:
    """Raise PermissionDenied unless the user may control the debate (None: a trusted caller)."""
    if user is not None and not can_control(debate=debate, user=user):
        raise PermissionDenied("Only the debate's creator or staff may start or cancel it.")


@transaction.atomic
def debate_claim(*, debate: Debate, runner_id: str) -> Debate:
    """Claim a pending debate for a runner exactly once (atomic pending -> running), within
    its creator's running quota (over it, nothing changes)."""
    now = timezone.now()
    claimed = Debate.objects.filter(pk=debate.pk, status=DebateStatus.PENDING).update(
        status=DebateStatus.RUNNING, runner_id=runner_id, heartbeat_at=now, started_at=now, error=""
    )
    debate.refresh_from_db()
    if claimed != 1:
        raise DebateStateError(f"Debate is {debate.status}, not pending.")
    if debate.created_by_id is not None:
        # Raising rolls the claim back with the transaction.
        check_running_quota(user=debate.created_by, starting=debate)
        check_usage_budget(user=debate.created_by)
    return debate


@transaction.atomic
def debate_cancel(*, debate: Debate) -> str | None:
    """Cancel a pending or running debate; return the runner id of its live run, which must
    now stop and then announce the status (``run_stopped``), or None when announced here."""
    current = Debate.objects.select_for_update().filter(pk=debate.pk).first()
    if current is None or current.status not in (DebateStatus.PENDING, DebateStatus.RUNNING):
        debate.refresh_from_db()
        raise DebateStateError(f"Debate is already {debate.status}.")
    live_runner = current.status == DebateStatus.RUNNING and (
        current.heartbeat_at is not None and current.heartbeat_at >= stale_cutoff()
    )
    Debate.objects.filter(pk=debate.pk).update(
        status=DebateStatus.CANCELLED, finished_at=timezone.now()
    )
    debate.refresh_from_db()
    if live_runner:
        return current.runner_id
    _announce(debate.pk, DebateStatus.CANCELLED)
    return None


def debates_take_over_stale(*, runner_id: str) -> list:
    """Re-claim running debates whose runner stopped heartbeating; return their ids."""
    stale = Debate.objects.filter(status=DebateStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale_cutoff()) | Q(heartbeat_at__isnull=True)
    )
    claimed = []
    for debate_id, old_runner, old_beat in stale.values_list("pk", "runner_id", "heartbeat_at"):
        won = Debate.objects.filter(
            pk=debate_id, status=DebateStatus.RUNNING, runner_id=old_runner, heartbeat_at=old_beat
        ).update(runner_id=runner_id, heartbeat_at=timezone.now())
        if won == 1:
            logger.info("taking over debate %s from dead runner %s", debate_id, old_runner)
            claimed.append(debate_id)
    return claimed


def debates_release(*, runner_id: str, debate_ids: list) -> list:
    """Give up the caller's running debates (a graceful shutdown): no runner and no heartbeat,
    so the next sweep of any process takes them over at once; return the ids released."""
    released = []
    for debate_id in debate_ids:
        if _owned(debate_id, runner_id).update(runner_id="", heartbeat_at=None) == 1:
            released.append(debate_id)
    return released


def debates_fail_stale() -> list:
    """Mark running debates with a stale heartbeat failed (instead of resuming them)."""
    stale = Debate.objects.filter(status=DebateStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale_cutoff()) | Q(heartbeat_at__isnull=True)
    )
    failed = []
    for debate_id, old_runner, old_beat in stale.values_list("pk", "runner_id", "heartbeat_at"):
        with transaction.atomic():
            if Debate.objects.filter(
                pk=debate_id,
                status=DebateStatus.RUNNING,
                runner_id=old_runner,
                heartbeat_at=old_beat,
            ).update(
                status=DebateStatus.FAILED,
                error="The runner stopped (stale heartbeat).",
                finished_at=timezone.now(),
            ):
                _announce(debate_id, DebateStatus.FAILED)
                failed.append(debate_id)
    return failed


# --- A run's own writes (each only while the row is running under its runner id) -----------


def _owned(debate_id, runner_id):
    return Debate.objects.filter(pk=debate_id, status=DebateStatus.RUNNING, runner_id=runner_id)


def run_begin(*, debate_id, runner_id: str) -> bool:
    """A run begins: prove it alive and announce ``running`` (held for its opening)."""
    with transaction.atomic():
        if _owned(debate_id, runner_id).update(heartbeat_at=timezone.now()) != 1:
            return False
        _announce(debate_id, DebateStatus.RUNNING, hold_s=OPENING_HOLD_S)
    return True


def run_heartbeat(*, debate_id, runner_id: str) -> bool:
    """Prove the run alive; False when the debate is no longer the caller's."""
    return _owned(debate_id, runner_id).update(heartbeat_at=timezone.now()) == 1


def run_save_market(*, debate_id, runner_id: str, market: dict) -> bool:
    """Store the market snapshot the debate is grounded in."""
    now = timezone.now()
    return _owned(debate_id, runner_id).update(market_context=market, heartbeat_at=now) == 1


def run_save_argument(
    *,
    debate_id,
    runner_id: str,
    turn: int,
    agent: str,
    content: str,
    verdict: dict | None,
    answered: tuple | list = (),
    usage: dict | None = None,
) -> bool:
    """Save one finished turn with its usage and cost (and the moderator's verdict with its
    turn, and the questions it answered); False when the debate is no longer the caller's
    (nothing is saved)."""
    recorded = {}
    if usage is not None:
        prompt, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        recorded = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "usage_estimated": bool(usage["estimated"]),
            "model": str(usage["model"])[:100],
            "cost": costs.cost_of(str(usage["model"]), prompt, completion),
        }
    fields = {"heartbeat_at": timezone.now()}
    if verdict is not None:
        fields.update(
            verdict_recommendation=verdict["recommendation"],
            verdict_confidence=verdict["confidence"],
            verdict_rationale=verdict["rationale"],
        )
    with transaction.atomic():
        # The conditional update locks the row, so a concurrent cancel is either before (no save)
        # or after (the argument is kept) - never a saved argument on a cancelled debate.
        if _owned(debate_id, runner_id).update(**fields) != 1:
            return False
        # get_or_create: a retry after a commit whose reply was lost (a dropped connection)
        # finds the turn saved and saves nothing twice.
        Argument.objects.get_or_create(
            debate_id=debate_id,
            turn=turn,
            defaults={"agent": agent, "content": content, **recorded},
        )
        if answered:
            # In the argument's transaction: a question is answered once, even across takeovers.
            Question.objects.filter(
                debate_id=debate_id, pk__in=list(answered), answered_in_turn__isnull=True
            ).update(answered_in_turn=turn)
    return True


def run_finish(*, debate_id, runner_id: str, status: str, error: str = "") -> bool:
    """End the caller's run with a final status and announce it; False when not the caller's."""
    now = timezone.now()
    with transaction.atomic():
        done = _owned(debate_id, runner_id).update(
            status=status, error=error, finished_at=now, heartbeat_at=now
        )
        if done:
            _announce(debate_id, status)
    return done == 1


def run_stopped(*, debate_id) -> str:
    """A run stopped because its debate was cancelled: announce the cancel (which waited for
    the run to stop); return the debate's status."""
    status = debate_status(debate_id=debate_id)
    if status == DebateStatus.CANCELLED:
        _announce(debate_id, status)
    return status


# --- Moderator controls (debates.controls calls these; the debate's run acts on them) ---------


def _announce_event(debate_id, action_type: str, payload: dict) -> None:
    """Publish one debate event once the current transaction commits."""

    def publish() -> None:
        async_to_sync(publish_events)(debate_id, [(action_type, payload)])

    transaction.on_commit(publish, robust=True)


def _lock_running(debate: Debate) -> Debate:
    """The debate's row, locked; DebateStateError unless it is running."""
    current = Debate.objects.select_for_update().filter(pk=debate.pk).first()
    if current is None or current.status != DebateStatus.RUNNING:
        debate.refresh_from_db()
        raise DebateStateError(f"Debate is {debate.status}, not running.")
    return current


def _concluding(current: Debate) -> bool:
    return (
        bool(current.conclusion_reason) or current.arguments.filter(agent=Agent.MODERATOR).exists()
    )


@transaction.atomic
def debate_pause(*, debate: Debate) -> str:
    """Pause a running debate (no tokens until resumed); return its runner id.

    Pausing a paused or concluding debate is a DebateStateError (409), not a no-op.
    """
    current = _lock_running(debate)
    if current.paused_at is not None:
        raise DebateStateError("Debate is already paused.")
    if _concluding(current):
        raise DebateStateError("Debate is concluding.")
    Debate.objects.filter(pk=debate.pk).update(paused_at=timezone.now())
    debate.refresh_from_db()
    return current.runner_id


@transaction.atomic
def debate_resume(*, debate: Debate) -> str:
    """Resume a paused debate; return its runner id (DebateStateError unless paused)."""
    current = _lock_running(debate)
    if current.paused_at is None:
        raise DebateStateError("Debate is not paused.")
    Debate.objects.filter(pk=debate.pk).update(paused_at=None)
    debate.refresh_from_db()
    return current.runner_id


@transaction.atomic
def debate_conclude(*, debate: Debate, reason: str = ConclusionReason.MODERATOR) -> str:
    """Ask for the verdict now: the current argument finishes, then the moderator decides on
    what has been said; a paused debate resumes for that. Return the runner id."""
    current = _lock_running(debate)
    if _concluding(current):
        raise DebateStateError("Debate is already concluding.")
    Debate.objects.filter(pk=debate.pk).update(conclusion_reason=reason, paused_at=None)
    debate.refresh_from_db()
    return current.runner_id


@transaction.atomic
def question_ask(*, debate: Debate, asked_by: AbstractBaseUser | None, text: str) -> Question:
    """Put a question to a pending or running debate: the next speaker addresses it first;
    every viewer sees it at once (DEBATE/QUESTION)."""
    current = Debate.objects.select_for_update().filter(pk=debate.pk).first()
    if current is None or current.status not in (DebateStatus.PENDING, DebateStatus.RUNNING):
        debate.refresh_from_db()
        raise DebateStateError(f"Debate is already {debate.status}.")
    if current.arguments.filter(agent=Agent.MODERATOR).exists():
        raise DebateStateError("The verdict has been given.")
    spoken = current.arguments.exclude(agent=Agent.MODERATOR).count()
    question = Question(
        debate=current,
        asked_by=asked_by if asked_by is not None and asked_by.is_authenticated else None,
        text=(text or "").strip(),
        turn=spoken + 1,
    )
    question.full_clean(exclude=["debate", "asked_by"])
    question.save()
    _announce_event(
        debate.pk,
        protocol.QUESTION,
        {
            "questionId": question.pk,
            "text": question.text,
            "askedBy": question.asked_by.get_username() if question.asked_by else "",
            "turn": question.turn,
        },
    )
    return question


def run_pause_expired(*, debate_id, runner_id: str, paused_at) -> bool:
    """A pause that lasted DEBATE_PAUSE_MAX_S concludes the debate; False when it was resumed
    meanwhile or the debate is no longer the caller's."""
    return (
        _owned(debate_id, runner_id)
        .filter(paused_at=paused_at, conclusion_reason="")
        .update(conclusion_reason=ConclusionReason.PAUSE_TIMEOUT)
        == 1
    )


def run_conclude(*, debate_id, runner_id: str, reason: str) -> str | None:
    """The run concludes its debate (any reason; a recorded one wins) and ends any pause;
    return the reason to announce, or None when it was announced before (or not the caller's)."""
    with transaction.atomic():
        row = _owned(debate_id, runner_id).select_for_update().first()
        if row is None or row.concluding_at is not None:
            return None
        reason = row.conclusion_reason or reason
        _owned(debate_id, runner_id).update(
            conclusion_reason=reason, concluding_at=timezone.now(), paused_at=None
        )
    return reason
