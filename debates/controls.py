"""Moderator controls: pause, resume, ask, conclude. A service writes the command (the debate's
row or a Question row), then, on commit, the debate's run is woken wherever it runs.

The database holds every command; the control message (``debate.controls``, streaming.control)
only wakes the run, which reads the row and acts, and whose heartbeat reads it too when a message
is lost. So a command is acted on by the one run that owns the debate, once, and a pause or a
conclusion outlives the process that runs the debate (the run that takes over reads them).
"""

import types

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from debates import services
from debates.models import QUESTION_MAX_CHARS, ConclusionReason, Debate, Question
from debates.runs import launch


class ControlThrottle(UserRateThrottle):
    """Moderator controls per user (DEBATE_CONTROL_RATE), over REST and the socket alike; the
    rate is read when each control is checked."""

    scope = "debate_control"

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


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


def socket_command(*, debate_id, user, action: str, text: str | None) -> tuple[int, str]:
    """A control sent over the debate's socket (streaming.moderation): the REST answer's
    status and detail, from the same checks, services and throttle."""
    if user is None or not user.is_authenticated:
        return 403, "Sign in with your own account to moderate."
    debate = Debate.objects.filter(pk=debate_id).first()
    if debate is None:
        return 404, "No such debate."
    try:
        check_moderator(debate=debate, user=user)
    except PermissionDenied as exc:
        return 403, str(exc)
    throttle = ControlThrottle()
    if not throttle.allow_request(types.SimpleNamespace(user=user, META={}), None):
        return 429, "Too many controls; wait a moment."
    text = (text or "").strip()
    if action == "ask" and not 0 < len(text) <= QUESTION_MAX_CHARS:
        return 400, f"A question has 1 to {QUESTION_MAX_CHARS} characters."
    try:
        if action == "ask":
            ask(debate=debate, user=user, text=text)
            return 201, ""
        {"pause": pause, "resume": resume, "conclude": conclude}[action](debate=debate, user=user)
    except services.DebateStateError as exc:
        return 409, str(exc)
    except ValidationError as exc:
        return 400, " ".join(exc.messages)
    return 202, ""
