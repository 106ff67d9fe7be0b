"""DRF serializers for the debates API (snake_case here, camelCase on the wire)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from debates.models import DEFAULT_TURNS, MAX_TURNS, MIN_TURNS, Argument, Debate, Recommendation
from debates.validators import ASSET_HELP


class ArgumentSerializer(serializers.ModelSerializer):
    """One saved turn."""

    class Meta:
        model = Argument
        fields = ["turn", "agent", "content", "created_at"]
        read_only_fields = fields


class VerdictSerializer(serializers.Serializer):
    """The moderator's structured verdict."""

    recommendation = serializers.ChoiceField(choices=Recommendation.choices)
    confidence = serializers.FloatField(min_value=0, max_value=1)
    rationale = serializers.CharField()


class DebateSerializer(serializers.ModelSerializer):
    """A debate with its transcript and verdict."""

    arguments = ArgumentSerializer(many=True, read_only=True)
    verdict = VerdictSerializer(read_only=True, allow_null=True)
    viewer_count = serializers.IntegerField(read_only=True, default=0)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Debate
        fields = [
            "id",
            "asset",
            "status",
            "max_turns",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "viewer_count",
            "arguments",
            "verdict",
        ]
        read_only_fields = fields


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and other non-strings instead of coercing them."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DebateCreateSerializer(serializers.Serializer):
    """Input for creating a debate."""

    asset = StrictCharField(max_length=64, help_text=ASSET_HELP)
    max_turns = serializers.IntegerField(
        min_value=MIN_TURNS, max_value=MAX_TURNS, default=DEFAULT_TURNS, required=False
    )

    def validate_asset(self, value: str) -> str:
        """Normalise to an upper-case ticker the market data provider supports."""
        from debates.services import validate_supported_asset

        try:
            return validate_supported_asset(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class DebateStateSerializer(serializers.Serializer):
    """The answer to start and cancel: id and new status."""

    id = serializers.UUIDField()
    status = serializers.CharField()
