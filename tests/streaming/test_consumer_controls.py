"""Moderator controls over the debate's socket: the same answers as REST, then the events."""

import pytest
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from debates.models import Debate, DebateStatus, Question
from streaming import protocol
from tests.streaming.conftest import connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def token_for(user) -> str:
    return str(AccessToken.for_user(user))


@pytest.fixture
def owned(db, user):
    """A running debate created by `user`."""
    return Debate.objects.create(
        asset="BTC",
        status=DebateStatus.RUNNING,
        runner_id="elsewhere",
        heartbeat_at=timezone.now(),
        created_by=user,
    )


async def control(comm, action: str, **fields) -> dict:
    """Send a control; return its result (the messages before it are kept in comm.seen)."""
    await comm.send_json_to({"type": protocol.CONTROL, "action": action, **fields})
    messages = await receive_until(comm, lambda m: m["type"] == protocol.CONTROL_RESULT)
    comm.seen = getattr(comm, "seen", []) + messages[:-1]
    return messages[-1]["payload"]


async def test_the_creator_pauses_resumes_asks_and_concludes_over_the_socket(owned, user):
    comm, first = await connect(owned.id, token=token_for(user))
    assert first["type"] == protocol.CONNECTED
    result = await control(comm, "pause", requestId="a1")
    assert result == {"action": "pause", "status": 202, "detail": "", "requestId": "a1"}
    assert (await control(comm, "pause"))["status"] == 409
    await owned.arefresh_from_db()
    assert owned.paused_at is not None

    assert (await control(comm, "ask", text="<b>Why?</b>"))["status"] == 201
    # Published on commit, before or after the answer: every viewer sees it as it is asked.
    seen = comm.seen
    if not any(m["type"] == protocol.QUESTION for m in seen):
        seen = seen + await receive_until(comm, lambda m: m["type"] == protocol.QUESTION)
    [question] = [m["payload"] for m in seen if m["type"] == protocol.QUESTION]
    assert (question["text"], question["askedBy"]) == ("<b>Why?</b>", user.username)
    assert (await control(comm, "ask", text="   "))["status"] == 400
    assert (await control(comm, "ask", text="x" * 501))["status"] == 400

    assert (await control(comm, "resume"))["status"] == 202
    assert (await control(comm, "conclude"))["status"] == 202
    await owned.arefresh_from_db()
    assert (owned.paused_at, owned.conclusion_reason) == (None, "moderator")
    assert await Question.objects.acount() == 1
    await comm.disconnect()


async def test_anyone_else_gets_403_and_a_finished_debate_409(owned, user, other_user):
    for token in [token_for(other_user), None]:
        kwargs = {"token": token} if token else {}  # None: the QA token, which is no user
        comm, _ = await connect(owned.id, **kwargs)
        assert (await control(comm, "pause"))["status"] == 403
        await comm.disconnect()
    await owned.arefresh_from_db()
    assert owned.paused_at is None
    await Debate.objects.filter(pk=owned.pk).aupdate(status=DebateStatus.COMPLETED)
    comm, _ = await connect(owned.id, token=token_for(user))
    assert (await control(comm, "conclude"))["status"] == 409
    await comm.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "DEBATE/CONTROL"},
        {"type": "DEBATE/CONTROL", "action": "start"},
        {"type": "DEBATE/CONTROL", "action": "ask"},
        {"type": "DEBATE/CONTROL", "action": "ask", "text": 5},
        {"type": "DEBATE/CONTROL", "action": "pause", "requestId": "x" * 65},
    ],
)
async def test_malformed_controls_get_a_typed_error_and_change_nothing(owned, user, frame):
    comm, _ = await connect(owned.id, token=token_for(user))
    await comm.send_json_to(frame)
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == protocol.ERROR
    assert (error["payload"]["code"], error["payload"]["reason"]) == (4400, "invalid_control")
    await owned.arefresh_from_db()
    assert owned.paused_at is None
    await comm.disconnect()


async def test_socket_controls_share_the_users_control_rate(owned, user, settings):
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "debate_control": "2/minute"}
    settings.REST_FRAMEWORK = {**api_settings.user_settings, "DEFAULT_THROTTLE_RATES": rates}
    comm, _ = await connect(owned.id, token=token_for(user))
    statuses = [(await control(comm, a))["status"] for a in ["pause", "resume", "pause"]]
    assert statuses == [202, 202, 429]
    await owned.arefresh_from_db()
    assert owned.paused_at is None  # the throttled pause did nothing
    await comm.disconnect()
