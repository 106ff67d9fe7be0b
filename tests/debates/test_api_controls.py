"""REST moderator controls: who may use them, which states allow them, input, throttle, admin."""

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from debates import services
from debates.models import Argument, Debate, Question

pytestmark = pytest.mark.django_db

CONTROLS = ["pause", "resume", "conclude"]


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def running(user):
    """A running debate of `user` (no run launched: the controls only write the row here)."""
    debate = services.debate_create(asset="BTC", max_turns=4, created_by=user)
    return services.debate_claim(debate=debate, runner_id="elsewhere")


def test_pause_then_resume(auth_client, running):
    resp = auth_client.post(f"/api/debates/{running.id}/pause/")
    assert resp.status_code == 202
    body = resp.json()
    assert body["status"] == "running"
    assert body["pausedAt"] is not None
    assert body["conclusionReason"] == ""
    running.refresh_from_db()
    assert running.paused_at is not None
    detail = auth_client.get(f"/api/debates/{running.id}/").json()
    assert detail["pausedAt"] is not None

    resp = auth_client.post(f"/api/debates/{running.id}/resume/")
    assert resp.status_code == 202
    assert resp.json()["pausedAt"] is None
    running.refresh_from_db()
    assert running.paused_at is None


def test_pause_when_paused_and_resume_when_not_paused_are_409(auth_client, running):
    assert auth_client.post(f"/api/debates/{running.id}/resume/").status_code == 409
    assert auth_client.post(f"/api/debates/{running.id}/pause/").status_code == 202
    resp = auth_client.post(f"/api/debates/{running.id}/pause/")
    assert resp.status_code == 409
    assert "already paused" in resp.json()["detail"]


def test_conclude_records_the_reason_ends_a_pause_and_only_once(auth_client, running):
    assert auth_client.post(f"/api/debates/{running.id}/pause/").status_code == 202
    resp = auth_client.post(f"/api/debates/{running.id}/conclude/")
    assert resp.status_code == 202
    assert resp.json()["conclusionReason"] == "moderator"
    assert resp.json()["pausedAt"] is None
    assert auth_client.post(f"/api/debates/{running.id}/conclude/").status_code == 409
    assert auth_client.post(f"/api/debates/{running.id}/pause/").status_code == 409


@pytest.mark.parametrize("control", CONTROLS)
def test_controls_by_anyone_else_are_403(other_user, running, control):
    resp = client_for(other_user).post(f"/api/debates/{running.id}/{control}/")
    assert resp.status_code == 403
    running.refresh_from_db()
    assert (running.paused_at, running.conclusion_reason) == (None, "")


def test_questions_by_anyone_else_are_403(other_user, running):
    resp = client_for(other_user).post(
        f"/api/debates/{running.id}/ask/", {"text": "Why?"}, format="json"
    )
    assert resp.status_code == 403
    assert not Question.objects.exists()


@pytest.mark.parametrize("control", CONTROLS)
def test_staff_may_moderate_any_debate(staff_user, running, control):
    if control == "resume":
        services.debate_pause(debate=running)
    assert client_for(staff_user).post(f"/api/debates/{running.id}/{control}/").status_code == 202


@pytest.mark.parametrize("control", [*CONTROLS, "ask"])
def test_controls_need_a_signed_in_user(api_client, running, control):
    resp = api_client.post(f"/api/debates/{running.id}/{control}/", {"text": "Why?"}, format="json")
    assert resp.status_code == 401


@pytest.mark.parametrize("control", [*CONTROLS, "ask"])
def test_controls_on_unknown_debates_are_404(auth_client, control):
    for pk in ["6f1c1d3e-0000-4000-8000-000000000001", "not-a-uuid"]:
        resp = auth_client.post(f"/api/debates/{pk}/{control}/", {"text": "Why?"}, format="json")
        assert resp.status_code == 404


@pytest.mark.parametrize("control", [*CONTROLS, "ask"])
@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_controls_on_finished_debates_are_409(auth_client, running, control, final):
    Debate.objects.filter(pk=running.pk).update(status=final, finished_at=timezone.now())
    resp = auth_client.post(
        f"/api/debates/{running.id}/{control}/", {"text": "Why?"}, format="json"
    )
    assert resp.status_code == 409


@pytest.mark.parametrize("control", CONTROLS)
def test_pause_resume_conclude_on_a_pending_debate_are_409(auth_client, user, control):
    debate = services.debate_create(asset="BTC", max_turns=2, created_by=user)
    assert auth_client.post(f"/api/debates/{debate.id}/{control}/").status_code == 409


def test_ask_keeps_markup_as_text_and_says_who_and_when(auth_client, user, running):
    Argument.objects.create(debate=running, turn=1, agent="bull", content="Up.")
    text = '  <img src=x onerror="alert(1)"> & <b>why</b>?  '
    resp = auth_client.post(f"/api/debates/{running.id}/ask/", {"text": text}, format="json")
    assert resp.status_code == 201
    body = resp.json()
    assert body["text"] == text.strip()
    assert body["askedBy"] == user.username
    assert body["turn"] == 2  # asked while turn 2 is the one in progress
    assert body["answeredInTurn"] is None
    question = Question.objects.get()
    assert (question.text, question.asked_by, question.turn) == (text.strip(), user, 2)
    detail = auth_client.get(f"/api/debates/{running.id}/").json()
    assert [q["text"] for q in detail["questions"]] == [text.strip()]


def test_ask_a_pending_debate_is_allowed(auth_client, user):
    debate = services.debate_create(asset="BTC", max_turns=2, created_by=user)
    resp = auth_client.post(
        f"/api/debates/{debate.id}/ask/", {"text": "Start with risk?"}, format="json"
    )
    assert resp.status_code == 201
    assert resp.json()["turn"] == 1


def test_ask_after_the_verdict_is_409(auth_client, running):
    Argument.objects.create(debate=running, turn=5, agent="moderator", content="RECOMMENDATION")
    resp = auth_client.post(f"/api/debates/{running.id}/ask/", {"text": "Too late?"}, format="json")
    assert resp.status_code == 409


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 501}, {"text": 42}, {"text": ["a"]}],
)
def test_bad_questions_are_400_with_field_errors(auth_client, running, body):
    resp = auth_client.post(f"/api/debates/{running.id}/ask/", body, format="json")
    assert resp.status_code == 400
    assert "text" in resp.json()
    assert not Question.objects.exists()


def test_a_question_of_the_longest_length_is_accepted(auth_client, running):
    resp = auth_client.post(f"/api/debates/{running.id}/ask/", {"text": "y" * 500}, format="json")
    assert resp.status_code == 201


def test_controls_are_rate_limited_per_user(auth_client, running, other_user):
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "debate_control": "3/minute"}
    with override_settings(
        REST_FRAMEWORK={**api_settings.user_settings, "DEFAULT_THROTTLE_RATES": rates}
    ):
        codes = [
            auth_client.post(f"/api/debates/{running.id}/{c}/").status_code
            for c in ["pause", "resume", "pause", "resume"]
        ]
        assert codes == [202, 202, 202, 429]
        running.refresh_from_db()
        assert running.paused_at is not None  # the throttled resume did nothing
        # Another user has a budget of their own (and is refused for another reason).
        assert client_for(other_user).post(f"/api/debates/{running.id}/resume/").status_code == 403


@pytest.fixture
def admin_client_logged_in(client, staff_user):
    client.force_login(staff_user)
    return client


def test_admin_actions_pause_resume_and_conclude(admin_client_logged_in, running):
    def act(action):
        return admin_client_logged_in.post(
            "/admin/debates/debate/",
            {"action": action, "_selected_action": [str(running.pk)]},
            follow=True,
        )

    assert "Paused 1 debate(s)." in act("pause_debates").content.decode()
    running.refresh_from_db()
    assert running.paused_at is not None
    html = act("pause_debates").content.decode()
    assert "Paused 0 debate(s)." in html
    assert "already paused" in html
    act("resume_debates")
    running.refresh_from_db()
    assert running.paused_at is None
    assert "Concluding 1 debate(s)." in act("conclude_debates").content.decode()
    running.refresh_from_db()
    assert running.conclusion_reason == "moderator"


def test_admin_change_page_shows_questions(admin_client_logged_in, running, user):
    services.question_ask(debate=running, asked_by=user, text="<b>Margins?</b>")
    html = admin_client_logged_in.get(f"/admin/debates/debate/{running.id}/change/").content
    assert b"&lt;b&gt;Margins?&lt;/b&gt;" in html
