"""Moderator controls: pause, resume, ask, conclude. A service writes the command (the debate's
row or a Question row), then, on commit, the debate's run is woken wherever it runs.

The database holds every command; the control message (``debate.controls``, streaming.control)
only wakes the run, which reads the row and acts, and whose heartbeat reads it too when a message
is lost. So a command is acted on by the one run that owns the debate, once, and a pause or a
conclusion outlives the process that runs the debate (the run that takes over reads them).
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from debates import services
from debates.models import ConclusionReason, Debate, Question
from debates.runs import launch


def check_moderator(*, debate: Debate, user: AbstractBaseUser | None) -> None:
    """Raise PermissionDenied unless the user may moderate the debate (creator or staff)."""
    if user is not None and not services.can_control(debate=debate, user=user):
        raise PermissionDenied("Only the debate's creator or staff may moderate it.")


def _command(debate: Debate, user: AbstractBaseUser | None, service, **kwargs) -> Debate:
    check_moderator(debate=debate, user=user)
    with transaction.atomic():
        runner_id = service(debate=debate, **kwargs)
        transaction.on_commit(lambda: launch.notify(debate.pk, runner_id))
    return debate


def pause(*, debate: Debate, user: AbstractBaseUser | None) -> Debate:
    """Pause a running debate: no token until it is resumed (409 when already paused)."""
    return _command(debate, user, services.debate_pause)


def resume(*, debate: Debate, user: AbstractBaseUser | None) -> Debate:
    """Resume a paused debate (409 when it is not paused)."""
    return _command(debate, user, services.debate_resume)


def conclude(*, debate: Debate, user: AbstractBaseUser | None) -> Debate:
    """Conclude now: the current argument finishes, then the moderator's verdict."""
    return _command(debate, user, services.debate_conclude, reason=ConclusionReason.MODERATOR)


def ask(*, debate: Debate, user: AbstractBaseUser | None, text: str) -> Question:
    """Ask a question the next speaker addresses first; every viewer sees it at once."""
    check_moderator(debate=debate, user=user)
    # The run reads open questions as it builds each turn's prompt: no wake-up needed.
    return services.question_ask(debate=debate, asked_by=user, text=text)
