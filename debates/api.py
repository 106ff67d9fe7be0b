"""REST views for debates: thin wrappers over services and selectors."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from debates import selectors, services
from debates.filters import DebateFilter
from debates.serializers import DebateCreateSerializer, DebateSerializer


class DebateListCreateApi(generics.ListAPIView):
    """List debates (filter by status, asset) or create one."""

    serializer_class = DebateSerializer
    filterset_class = DebateFilter

    def get_queryset(self):
        return selectors.debate_list()

    @extend_schema(request=DebateCreateSerializer, responses={201: DebateSerializer})
    def post(self, request: Request) -> Response:
        """Create a pending debate."""
        serializer = DebateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        debate = services.debate_create(created_by=request.user, **serializer.validated_data)
        debate = selectors.debate_list().get(pk=debate.pk)
        return Response(DebateSerializer(debate).data, status=status.HTTP_201_CREATED)


class DebateDetailApi(generics.RetrieveAPIView):
    """One debate with its arguments in order and its verdict."""

    serializer_class = DebateSerializer

    def get_queryset(self):
        return selectors.debate_list()
