"""REST views for debates: thin wrappers over services and selectors."""

import uuid

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from djangorestframework_camel_case.render import CamelCaseJSONRenderer
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from debates import controls, lifecycle, selectors, services
from debates.controls import ControlThrottle
from debates.export import MarkdownRenderer, debate_export
from debates.filters import DebateFilter
from debates.models import Debate, ShareLink
from debates.serializers import (
    DebateCreateSerializer,
    DebateExportSerializer,
    DebateSerializer,
    DebateStateSerializer,
    ModerationStateSerializer,
    QuestionCreateSerializer,
    QuestionSerializer,
    QuotaExceededSerializer,
    ShareLinkCreatedSerializer,
    ShareLinkSerializer,
    TrackRecordQuerySerializer,
    TrackRecordSerializer,
    VoteCreateSerializer,
    VoteResultSerializer,
    votes_data,
)
from streaming.ratelimit import request_client_ip

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

    def _apply(self, request: Request, pk: str) -> Response:
        debate = _debate_or_404(pk)
        try:
            self.control(debate=debate, user=request.user)
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

    control = staticmethod(controls.pause)

    @extend_schema(request=None, responses=MODERATION_RESPONSES)
    def post(self, request: Request, pk: str) -> Response:
        """Pause the debate (202): no token until it is resumed; 409 if already paused."""
        return self._apply(request, pk)


class DebateResumeApi(_ModerationApi):
    """Resume a paused debate (409 if it is not paused)."""

    control = staticmethod(controls.resume)

    @extend_schema(request=None, responses=MODERATION_RESPONSES)
    def post(self, request: Request, pk: str) -> Response:
        """Resume the paused debate (202); 409 if it is not paused."""
        return self._apply(request, pk)


class DebateConcludeApi(_ModerationApi):
    """Conclude now: the current argument finishes, then the moderator's verdict."""

    control = staticmethod(controls.conclude)

    @extend_schema(request=None, responses=MODERATION_RESPONSES)
    def post(self, request: Request, pk: str) -> Response:
        """Conclude now (202): the current argument finishes, then the moderator's verdict on
        what has been said; 409 if already concluding."""
        return self._apply(request, pk)


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


class DebateVoteApi(APIView):
    """Vote bull or bear: before the debate (pending, or running until its first argument is
    saved) and again after its verdict (until VOTE_AFTER_WINDOW_S past its end)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "votes"

    @extend_schema(
        request=VoteCreateSerializer,
        responses={
            200: VoteResultSerializer,
            400: OpenApiResponse(description="Field errors: `side` is not bull or bear."),
            401: OpenApiResponse(description="No valid access token: sign in to vote."),
            404: OpenApiResponse(description="Unknown debate."),
            409: OpenApiResponse(description="No vote phase of this debate is open now."),
            429: OpenApiResponse(description="Too many votes from this user (VOTE_RATE)."),
        },
    )
    def post(self, request: Request, pk: str) -> Response:
        """Cast or change the signed-in user's vote in the open phase (one per user per
        phase; the same vote again changes nothing)."""
        debate = _debate_or_404(pk)
        serializer = VoteCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            vote, changed = services.vote_cast(
                debate=debate, user=request.user, side=serializer.validated_data["side"]
            )
        except services.VotingClosed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        tallies = selectors.vote_tallies(debate_id=debate.pk)
        mine = selectors.votes_of_user(user=request.user, debate_ids=[debate.pk])[debate.pk]
        data = {
            "phase": vote.phase,
            "side": vote.side,
            "changed": changed,
            "votes": votes_data(debate=debate, tallies=tallies, mine=mine),
        }
        return Response(VoteResultSerializer(data).data)


# --- Export ------------------------------------------------------------------------------------

EXPORT_PARAMETERS = [
    OpenApiParameter(
        "format",
        str,
        enum=["json", "md"],
        required=False,
        description="json (default) or md (Markdown); `Accept: text/markdown` works too.",
    )
]
EXPORT_RESPONSES = {
    (200, "application/json"): DebateExportSerializer,
    (200, "text/markdown"): OpenApiTypes.STR,
    409: OpenApiResponse(description="The debate has not finished yet."),
}


class _ExportView(APIView):
    """Answers with an export document, as JSON or Markdown."""

    renderer_classes = [CamelCaseJSONRenderer, MarkdownRenderer]

    def perform_content_negotiation(self, request, force=False):
        """An unknown ``?format=`` is a 400 with a field error, not DRF's 404."""
        try:
            return super().perform_content_negotiation(request, force)
        except (Http404, NotFound):
            if force:
                raise
            raise ValidationError({"format": ["Use json or md."]}) from None

    def export(self, debate: Debate) -> Response:
        """200 with the document, or 409 while the debate is not finished."""
        if not debate.is_finished:
            return Response(
                {"detail": "The debate has not finished yet."}, status=status.HTTP_409_CONFLICT
            )
        data = debate_export(debate=debate, context={"request": self.request})
        response = Response(data)
        extension = "md" if self.request.accepted_renderer.format == "md" else "json"
        name = f"debate-{debate.asset.lower()}-{debate.pk}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class DebateExportApi(_ExportView):
    """A finished debate as one document: record, arguments, verdict and every event."""

    @extend_schema(parameters=EXPORT_PARAMETERS, responses=EXPORT_RESPONSES)
    def get(self, request: Request, pk: str) -> Response:
        """Export the debate (JSON or Markdown)."""
        return self.export(_listed_debate_or_404(pk))


def _listed_debate_or_404(pk: str) -> Debate:
    """The debate with its arguments (as the API lists it); 404 for an unknown or bad id."""
    try:
        return selectors.debate_list().get(pk=uuid.UUID(str(pk)))
    except (ValueError, Debate.DoesNotExist):
        raise Http404("No such debate.") from None


# --- Share links -------------------------------------------------------------------------------

SHARE_FORBIDDEN = OpenApiResponse(description="Only the debate's creator or staff may share it.")


class DebateShareLinksApi(APIView):
    """A debate's share links: list them, or create one (creator or staff)."""

    @extend_schema(responses={200: ShareLinkSerializer(many=True), 403: SHARE_FORBIDDEN})
    def get(self, request: Request, pk: str) -> Response:
        """The debate's share links, newest first, revoked ones too (never their tokens)."""
        debate = _debate_or_404(pk)
        if not services.can_control(debate=debate, user=request.user):
            raise PermissionDenied("Only the debate's creator or staff may see its share links.")
        links = selectors.share_links_of(debate_id=debate.pk)
        return Response(ShareLinkSerializer(links, many=True).data)

    @extend_schema(request=None, responses={201: ShareLinkCreatedSerializer, 403: SHARE_FORBIDDEN})
    def post(self, request: Request, pk: str) -> Response:
        """Create a read-only share link; its token is in this answer only."""
        link, token = services.share_link_create(debate=_debate_or_404(pk), user=request.user)
        link.token, link.path = token, f"/shared/#{token}"
        return Response(ShareLinkCreatedSerializer(link).data, status=status.HTTP_201_CREATED)


class DebateShareLinkApi(APIView):
    """One share link of a debate."""

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Revoked."), 403: SHARE_FORBIDDEN},
    )
    def delete(self, request: Request, pk: str, link_id: int) -> Response:
        """Revoke the link: it opens nothing from now on (idempotent)."""
        debate = _debate_or_404(pk)
        link = selectors.share_links_of(debate_id=debate.pk).filter(pk=link_id).first()
        if link is None:
            raise Http404("No such share link.")
        services.share_link_revoke(link=link, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- What a share link opens (no account: the X-Share-Token header) -----------------------------


class ShareTokenAuthentication(BaseAuthentication):
    """A share link's token in ``X-Share-Token`` (a header, so it never reaches an access log):
    no user, ``request.auth`` is the link."""

    def authenticate(self, request):
        """The anonymous user and the active link, None without the header; 401 otherwise."""
        token = request.META.get("HTTP_X_SHARE_TOKEN")
        if not token:
            return None
        link = selectors.share_link_active(token=token)
        if link is None:
            raise AuthenticationFailed("This share link is not valid: revoked or unknown.")
        return AnonymousUser(), link

    def authenticate_header(self, request) -> str:
        """What a 401 asks for."""
        return "Share"


class ShareTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ShareTokenAuthentication."""

    target_class = "debates.api.ShareTokenAuthentication"
    name = "shareToken"

    def get_security_definition(self, auto_schema) -> dict:
        """An API key in the X-Share-Token header."""
        return {"type": "apiKey", "in": "header", "name": "X-Share-Token"}


class HasShareLink(BasePermission):
    """Allow requests that came with an active share link."""

    def has_permission(self, request, view) -> bool:
        """True when the request's auth is a share link."""
        return isinstance(request.auth, ShareLink)


class ShareIpThrottle(SimpleRateThrottle):
    """Requests with a share token per client IP (SHARE_RATE_PER_IP), counted before the token
    is checked, so guessing is throttled too."""

    scope = "share"

    def get_rate(self) -> str:
        """The rate as the settings say now."""
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view) -> str:
        """The client IP, as the WebSocket's rate limit resolves it."""
        ident = request_client_ip(request) or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ident}


THROTTLED = OpenApiResponse(description="Too many requests from this client (SHARE_RATE_PER_IP).")


class _SharedView(APIView):
    """Read-only access to the one debate of a share link."""

    authentication_classes = [ShareTokenAuthentication]
    permission_classes = [HasShareLink]
    throttle_classes = [ShareIpThrottle]

    def perform_authentication(self, request) -> None:
        """Throttle first: a wrong token counts too."""
        self.check_throttles(request)
        request._share_throttled = True
        super().perform_authentication(request)

    def check_throttles(self, request) -> None:
        """Once per request (perform_authentication already did)."""
        if not getattr(request, "_share_throttled", False):
            super().check_throttles(request)

    def shared_debate(self) -> Debate:
        """The link's debate with its arguments."""
        return selectors.debate_list().get(pk=self.request.auth.debate_id)


class SharedDebateApi(_SharedView):
    """The debate a share link opens."""

    @extend_schema(responses={200: DebateSerializer, 429: THROTTLED})
    def get(self, request: Request) -> Response:
        """The debate, as GET /api/debates/{id}/ shows it (canControl false)."""
        data = DebateSerializer(self.shared_debate(), context={"request": request}).data
        return Response(data)


class SharedDebateExportApi(_SharedView, _ExportView):
    """The export of the debate a share link opens."""

    @extend_schema(parameters=EXPORT_PARAMETERS, responses={**EXPORT_RESPONSES, 429: THROTTLED})
    def get(self, request: Request) -> Response:
        """Export the shared debate (JSON or Markdown)."""
        return self.export(self.shared_debate())


class TrackRecordApi(APIView):
    """How right the verdicts were: hit rate, Brier score, calibration, per model and asset."""

    @extend_schema(
        parameters=[TrackRecordQuerySerializer],
        responses={200: TrackRecordSerializer},
    )
    def get(self, request: Request) -> Response:
        """The track record of resolved verdicts (filter by model and asset)."""
        query = TrackRecordQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        record = selectors.track_record(**query.validated_data)
        record.update(
            sample_data=record["overall"]["sample"] > 0,
            hold_band_pct=float(settings.VERDICT_HOLD_BAND_PCT),
            default_horizon_s=int(settings.VERDICT_HORIZON_S),
        )
        return Response(TrackRecordSerializer(record).data)
