"""Debate business logic: every write to debates goes through here."""

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from debates.models import DEFAULT_TURNS, Debate, DebateStatus
from debates.validators import normalise_asset

logger = logging.getLogger(__name__)


class DebateStateError(Exception):
    """The debate is not in a state that allows the operation (HTTP 409)."""


def market_provider():
    """The configured market data provider (MARKET_DATA_PROVIDER)."""
    from debates.engine.market import get_provider

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


@transaction.atomic
def debate_create(
    *, asset: str, max_turns: int = DEFAULT_TURNS, created_by: AbstractBaseUser | None
) -> Debate:
    """Create a pending debate after validating its fields."""
    debate = Debate(
        asset=validate_supported_asset(asset), max_turns=max_turns, created_by=created_by
    )
    debate.full_clean(exclude=["created_by"])
    debate.save()
    return debate


def can_control(*, debate: Debate, user: AbstractBaseUser | None) -> bool:
    """True if the user may start or cancel the debate: its creator or staff."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff or (debate.created_by_id is not None and debate.created_by_id == user.pk)


def _check_can_control(debate: Debate, user: AbstractBaseUser | None) -> None:
    if user is None:
        return  # trusted callers: management commands
    if not can_control(debate=debate, user=user):
        raise PermissionDenied("Only the debate's creator or staff may start or cancel it.")


def debate_start(
    *,
    debate: Debate,
    user: AbstractBaseUser | None,
    runner_id: str | None = None,
    launch: bool = True,
) -> Debate:
    """Claim a pending debate exactly once (atomic update) and launch its runner."""
    from debates import runner

    _check_can_control(debate, user)
    now = timezone.now()
    runner_id = runner_id or runner.PROCESS_RUNNER_ID
    claimed = Debate.objects.filter(pk=debate.pk, status=DebateStatus.PENDING).update(
        status=DebateStatus.RUNNING,
        runner_id=runner_id,
        heartbeat_at=now,
        started_at=now,
        error="",
    )
    debate.refresh_from_db()
    if claimed != 1:
        raise DebateStateError(f"Debate is {debate.status}, not pending.")
    if launch:
        transaction.on_commit(lambda: _launch_or_fail(debate, runner_id))
    return debate


def _launch_or_fail(debate: Debate, runner_id: str) -> None:
    """Launch the claimed debate's runner; if that fails, the debate fails (never left running)."""
    from debates import runner

    try:
        runner.launch(debate.pk, runner_id=runner_id)
    except Exception:
        logger.exception("could not launch the runner of debate %s", debate.pk)
        failed = Debate.objects.filter(
            pk=debate.pk, status=DebateStatus.RUNNING, runner_id=runner_id
        ).update(
            status=DebateStatus.FAILED,
            error="The runner could not be started.",
            finished_at=timezone.now(),
        )
        if failed:
            _publish_status(debate.pk, DebateStatus.FAILED)
        debate.refresh_from_db()


def debate_cancel(*, debate: Debate, user: AbstractBaseUser | None) -> Debate:
    """Cancel a pending or running debate; its runner, in any process, stops within a token."""
    from debates import runner

    _check_can_control(debate, user)
    now = timezone.now()
    with transaction.atomic():
        current = Debate.objects.select_for_update().filter(pk=debate.pk).first()
        if current is None or current.status not in (DebateStatus.PENDING, DebateStatus.RUNNING):
            debate.refresh_from_db()
            raise DebateStateError(f"Debate is already {debate.status}.")
        stale = current.status == DebateStatus.RUNNING and (
            current.heartbeat_at is None or current.heartbeat_at < runner.stale_cutoff()
        )
        # Nobody will publish the final status of a pending or orphaned debate but us.
        publish_here = current.status == DebateStatus.PENDING or stale
        Debate.objects.filter(pk=debate.pk, status=current.status).update(
            status=DebateStatus.CANCELLED, finished_at=now
        )
        if publish_here:
            transaction.on_commit(lambda: _publish_status(debate.pk, DebateStatus.CANCELLED))
        else:
            transaction.on_commit(lambda: runner.signal_cancel(debate.pk))
    debate.refresh_from_db()
    return debate


async def publish_status(debate_id, status: str) -> None:
    """Publish a debate's STATUS_UPDATE (for changes made without a runner)."""
    from streaming import protocol
    from streaming.publisher import publish_event

    await publish_event(debate_id, protocol.STATUS_UPDATE, {"status": status})


def _publish_status(debate_id, status: str) -> None:
    """Publish a STATUS_UPDATE from sync code (onto the server loop when there is one)."""
    from asgiref.sync import async_to_sync

    try:
        async_to_sync(publish_status)(debate_id, status)
    except Exception:
        logger.exception("could not publish the status of debate %s", debate_id)


def recover_stale_debates(*, runner_id: str) -> list:
    """Re-claim running debates whose runner stopped heartbeating; return their ids."""
    from debates import runner

    cutoff = runner.stale_cutoff()
    stale = Debate.objects.filter(status=DebateStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    claimed = []
    for debate_id, old_runner, old_beat in stale.values_list("pk", "runner_id", "heartbeat_at"):
        won = Debate.objects.filter(
            pk=debate_id,
            status=DebateStatus.RUNNING,
            runner_id=old_runner,
            heartbeat_at=old_beat,
        ).update(runner_id=runner_id, heartbeat_at=timezone.now())
        if won == 1:
            logger.info("taking over debate %s from dead runner %s", debate_id, old_runner)
            claimed.append(debate_id)
    return claimed


def fail_stale_debates() -> list:
    """Mark running debates with a stale heartbeat failed (instead of resuming them)."""
    from debates import runner

    stale = Debate.objects.filter(status=DebateStatus.RUNNING).filter(
        Q(heartbeat_at__lt=runner.stale_cutoff()) | Q(heartbeat_at__isnull=True)
    )
    failed = []
    for debate_id, old_runner, old_beat in stale.values_list("pk", "runner_id", "heartbeat_at"):
        if Debate.objects.filter(
            pk=debate_id, status=DebateStatus.RUNNING, runner_id=old_runner, heartbeat_at=old_beat
        ).update(
            status=DebateStatus.FAILED,
            error="The runner stopped (stale heartbeat).",
            finished_at=timezone.now(),
        ):
            failed.append(debate_id)
    return failed
