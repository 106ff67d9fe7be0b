"""REST views for debates: thin wrappers over services and selectors."""

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from debates import controls, lifecycle, selectors, services
from debates.filters import DebateFilter
from debates.models import Debate
from debates.serializers import (
    DebateCreateSerializer,
    DebateSerializer,
    DebateStateSerializer,
    ModerationStateSerializer,
    QuestionCreateSerializer,
    QuestionSerializer,
    QuotaExceededSerializer,
)

QUOTA_RESPONSE = OpenApiResponse(
    QuotaExceededSerializer,
    description="A debate quota is used up (DEBATES_PER_USER_PER_DAY, DEBATES_RUNNING_PER_USER), "
    "or the daily usage budget (USER_DAILY_TOKEN_BUDGET, USER_DAILY_COST_BUDGET); "
    "`Retry-After` when a daily one frees up.",
)


def quota_response(exc: services.QuotaExceeded) -> Response:
    """429 with the quota, its limit and window (and Retry-After when known)."""
    data = {"detail": exc.detail, "quota": exc.quota, "limit": exc.limit, "window": exc.window}
    response = Response(data, status=status.HTTP_429_TOO_MANY_REQUESTS)
    if exc.retry_after_s is not None:
        response["Retry-After"] = str(exc.retry_after_s)
    return response


class DebateListCreateApi(generics.ListAPIView):
    """List debates (filter by status, asset) or create one."""

    serializer_class = DebateSerializer
    filterset_class = DebateFilter

    def get_queryset(self):
        return selectors.debate_list()

    @extend_schema(
        request=DebateCreateSerializer, responses={201: DebateSerializer, 429: QUOTA_RESPONSE}
    )
    def post(self, request: Request) -> Response:
        """Create a pending debate."""
        serializer = DebateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            debate = services.debate_create(created_by=request.user, **serializer.validated_data)
        except DjangoValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            raise ValidationError(detail) from None
        except services.QuotaExceeded as exc:
            return quota_response(exc)
        debate = selectors.debate_list().get(pk=debate.pk)
        data = DebateSerializer(debate, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)


class DebateDetailApi(generics.RetrieveAPIView):
    """One debate with its arguments in order and its verdict."""

    serializer_class = DebateSerializer

    def get_queryset(self):
        return selectors.debate_list()


def _debate_or_404(pk: str) -> Debate:
    """The debate with this id; 404 for an unknown or malformed id."""
    try:
        return Debate.objects.get(pk=uuid.UUID(str(pk)))
    except (ValueError, Debate.DoesNotExist):
        raise Http404("No such debate.") from None


CONTROL_RESPONSES = {
    202: DebateStateSerializer,
    403: OpenApiResponse(description="Only the creator or staff may do this."),
    404: OpenApiResponse(description="Unknown debate."),
    409: OpenApiResponse(description="The debate is not in a state that allows this."),
}
START_RESPONSES = {**CONTROL_RESPONSES, 429: QUOTA_RESPONSE}


def _control(request: Request, pk: str, action) -> Response:
    """Run a start/cancel service on the debate: 202 with its new status, or 409."""
    try:
        debate = action(debate=_debate_or_404(pk), user=request.user)
    except services.DebateStateError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    except services.QuotaExceeded as exc:
        return quota_response(exc)
    data = DebateStateSerializer({"id": debate.id, "status": debate.status}).data
    return Response(data, status=status.HTTP_202_ACCEPTED)


class DebateStartApi(APIView):
    """Start a pending debate: its runner streams it live."""

    @extend_schema(request=None, responses=START_RESPONSES)
    def post(self, request: Request, pk: str) -> Response:
        """Claim the debate and launch its runner (202), or 409 if it is not pending."""
        return _control(request, pk, lifecycle.start)


class DebateCancelApi(APIView):
    """Cancel a pending or running debate."""

    @extend_schema(request=None, responses=CONTROL_RESPONSES)
    def post(self, request: Request, pk: str) -> Response:
        """Cancel the debate (202), or 409 if it has already finished."""
        return _control(request, pk, lifecycle.cancel)


# --- Moderator controls: pause, resume, ask, conclude (debates.controls) -----------------------


class ControlThrottle(UserRateThrottle):
    """Moderator controls per user (DEBATE_CONTROL_RATE), read when each request is checked."""

    scope = "debate_control"

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


THROTTLED = OpenApiResponse(description="Too many controls (DEBATE_CONTROL_RATE); see Retry-After.")
MODERATION_RESPONSES = {
    202: ModerationStateSerializer,
    403: OpenApiResponse(description="Only the creator or staff may moderate the debate."),
    404: OpenApiResponse(description="Unknown debate."),
    409: OpenApiResponse(
        description="Not running, finished, or already in that state (paused, not paused, "
        "concluding)."
    ),
    429: THROTTLED,
}


class _ModerationApi(APIView):
    """A moderator control on one debate: 202 with its moderation state, or 409."""

    throttle_classes = [ControlThrottle]
    control = None

    @extend_schema(request=None, responses=MODERATION_RESPONSES)
    def post(self, request: Request, pk: str) -> Response:
        """Apply the control."""
        debate = _debate_or_404(pk)
        try:
            type(self).control(debate=debate, user=request.user)
        except services.DebateStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        debate.refresh_from_db()
        data = ModerationStateSerializer(
            {
                "id": debate.id,
                "status": debate.status,
                "paused_at": debate.paused_at,
                "conclusion_reason": debate.conclusion_reason,
            }
        ).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class DebatePauseApi(_ModerationApi):
    """Pause a running debate: no token until it is resumed (409 if already paused)."""

    control = controls.pause


class DebateResumeApi(_ModerationApi):
    """Resume a paused debate (409 if it is not paused)."""

    control = controls.resume


class DebateConcludeApi(_ModerationApi):
    """Conclude now: the current argument finishes, then the moderator's verdict."""

    control = controls.conclude


class DebateAskApi(APIView):
    """Ask a question the next speaker must address first; every viewer sees it at once."""

    throttle_classes = [ControlThrottle]

    @extend_schema(
        request=QuestionCreateSerializer,
        responses={
            201: QuestionSerializer,
            403: MODERATION_RESPONSES[403],
            404: MODERATION_RESPONSES[404],
            409: OpenApiResponse(description="The debate has finished or its verdict is given."),
            429: THROTTLED,
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        """Put the question to the debate (201)."""
        debate = _debate_or_404(pk)
        controls.check_moderator(debate=debate, user=request.user)  # 403 before any 400
        serializer = QuestionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            question = controls.ask(
                debate=debate, user=request.user, text=serializer.validated_data["text"]
            )
        except services.DebateStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            raise ValidationError(detail) from None
        return Response(QuestionSerializer(question).data, status=status.HTTP_201_CREATED)
