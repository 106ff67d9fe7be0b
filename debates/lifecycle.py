"""Starting, cancelling and recovering debates: the services' writes, then their runs, on commit.

Views, admin actions and commands call these; each one changes the database through
debates.services and, once that commits, launches or stops the debate's run (debates.runs).
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from debates import services
from debates.models import Debate, DebateStatus
from debates.runs import launch
from tradeapp.instance import process_id

logger = logging.getLogger(__name__)


def start(*, debate: Debate, user: AbstractBaseUser | None) -> Debate:
    """Claim a pending debate exactly once and launch its run in this process (on commit)."""
    services.check_can_control(debate=debate, user=user)
    runner_id = process_id()
    with transaction.atomic():
        debate = services.debate_claim(debate=debate, runner_id=runner_id)
        transaction.on_commit(lambda: _launch_or_fail(debate.pk, runner_id))
    debate.refresh_from_db(fields=["status", "error", "finished_at"])  # a launch that failed
    return debate


def _launch_or_fail(debate_id, runner_id: str) -> None:
    """Launch the claimed debate's run; if that fails, the debate fails (never left running)."""
    try:
        launch.launch(debate_id, runner_id=runner_id)
    except Exception:
        logger.exception("could not launch the runner of debate %s", debate_id)
        if not services.run_finish(
            debate_id=debate_id,
            runner_id=runner_id,
            status=DebateStatus.FAILED,
            error="The runner could not be started.",
        ):
            services.run_stopped(debate_id=debate_id)  # cancelled meanwhile: announce it


def cancel(*, debate: Debate, user: AbstractBaseUser | None) -> Debate:
    """Cancel a pending or running debate; its run, in any process, stops within a token and
    then announces the cancel (services.run_stopped)."""
    services.check_can_control(debate=debate, user=user)
    with transaction.atomic():
        runner_id = services.debate_cancel(debate=debate)
        if runner_id is not None:
            transaction.on_commit(lambda: launch.stop(debate.pk, runner_id))
    return debate


def recover(*, launch_runs: bool = True) -> list:
    """Take over every running debate whose runner died; launch their runs here unless told
    not to (a command that runs them in the foreground); return their ids."""
    ids = services.debates_take_over_stale(runner_id=process_id())
    if launch_runs:
        for debate_id in ids:
            _launch_or_fail(debate_id, process_id())
    return ids
