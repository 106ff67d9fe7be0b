"""Starting, cancelling and recovering debates: the services' writes, then their runs, on commit.

Views, admin actions and commands call these; each one changes the database through
debates.services and, once that commits, launches or stops the debate's run (debates.runs).

Takeover: ``recover`` claims the debates whose runner went stale (the janitor calls it every
DEBATE_SWEEP_S in every serving process); ``tell_recovering`` sends their viewers
DEBATE/RECOVERING while a runner is silent; ``release_local`` is a graceful shutdown's half: this
process's runs stop (a turn being saved finishes first) and their debates are released, so the
next sweep anywhere takes them over without waiting for staleness.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from debates import selectors, services
from debates.models import Debate, DebateStatus
from debates.runs import launch
from debates.runs.run import active_runs, stop_local
from streaming import protocol, publisher
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


async def tell_recovering(debate_ids, reason: str) -> None:
    """Send DEBATE/RECOVERING to the viewers of these debates, in every process."""
    for debate_id in debate_ids:
        await publisher.publish_notice(debate_id, protocol.recovering(debate_id, reason))


async def tell_silent() -> list:
    """Tell the viewers of every debate whose runner stopped heartbeating (not yet stale) that it
    is being recovered; return their ids."""
    ids = await sync_to_async(selectors.debates_silent)()
    await tell_recovering(ids, "runner_silent")
    return ids


# How long a shutdown waits for its runs to stop (a turn being saved finishes) before releasing.
RELEASE_TIMEOUT_S = 1.0


async def release_local(timeout_s: float = RELEASE_TIMEOUT_S) -> list:
    """Graceful shutdown: stop this process's runs, release their debates for another process
    to take over at once, and tell their viewers; return the ids released."""
    runs = active_runs()
    for run in runs:
        stop_local(run.debate_id, "released")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while any(run.is_active() for run in runs) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    late = [run.debate_id for run in runs if run.is_active()]
    if late:
        # Released all the same: their writes are conditional on the runner id, so a run that
        # has not stopped yet can no longer save into a debate another process took over.
        logger.warning("runs still stopping at release: %s", ", ".join(late))
    ids = await sync_to_async(services.debates_release)(
        runner_id=process_id(), debate_ids=[run.debate_id for run in runs]
    )
    if ids:
        logger.info("released %d debates for takeover: %s", len(ids), ", ".join(map(str, ids)))
    await tell_recovering(ids, "runner_stopped")
    return ids
