"""DRF serializers for the debates API (snake_case here, camelCase on the wire)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from debates import costs, services
from debates.models import (
    COST_DIGITS,
    COST_PLACES,
    DEFAULT_TURNS,
    MAX_BUDGET_COST,
    MAX_BUDGET_TOKENS,
    MAX_TURNS,
    MIN_BUDGET_COST,
    MIN_BUDGET_TOKENS,
    MIN_TURNS,
    QUESTION_MAX_CHARS,
    Argument,
    ConclusionReason,
    Debate,
    Question,
    Recommendation,
)
from debates.validators import ASSET_HELP
from streaming import presence


class ArgumentSerializer(serializers.ModelSerializer):
    """One saved turn, with what its model call cost."""

    prompt_tokens = serializers.IntegerField(allow_null=True, read_only=True)
    completion_tokens = serializers.IntegerField(allow_null=True, read_only=True)
    usage_estimated = serializers.BooleanField(
        read_only=True, help_text="The endpoint sent no usage: the counts are our estimate."
    )
    cost = serializers.FloatField(
        allow_null=True,
        read_only=True,
        help_text="US dollars from the price table (LLM_PRICES); null: the model has no price.",
    )

    class Meta:
        model = Argument
        fields = [
            "turn",
            "agent",
            "content",
            "created_at",
            "prompt_tokens",
            "completion_tokens",
            "usage_estimated",
            "model",
            "cost",
        ]
        read_only_fields = fields


class TallySerializer(serializers.Serializer):
    """Tokens and US dollars (null when a model has no price)."""

    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.FloatField(allow_null=True)


class PerAgentUsageSerializer(serializers.Serializer):
    """Usage of each agent."""

    bull = TallySerializer()
    bear = TallySerializer()
    moderator = TallySerializer()


class UsageSerializer(serializers.Serializer):
    """A debate's usage so far (saved arguments and verdict), per agent and in total."""

    per_agent = PerAgentUsageSerializer()
    total = TallySerializer()
    estimated = serializers.BooleanField(help_text="Some counts are our estimate.")


class QuestionSerializer(serializers.ModelSerializer):
    """A moderator's question: who asked it, during which turn, and which turn answered it."""

    asked_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Question
        fields = ["id", "text", "asked_by", "turn", "asked_at", "answered_in_turn"]
        read_only_fields = fields


class VerdictSerializer(serializers.Serializer):
    """The moderator's structured verdict."""

    recommendation = serializers.ChoiceField(choices=Recommendation.choices)
    confidence = serializers.FloatField(min_value=0, max_value=1)
    rationale = serializers.CharField()


class MarketSerializer(serializers.Serializer):
    """The market snapshot a debate is grounded in: a stable, read-only subset of market_context.

    Prices are in the asset's quote currency; `*_pct` fields are percentages (2.5 means +2.5 %);
    `recent_closes` are the closes of the last hourly candles, oldest first. A key missing from an
    older stored snapshot comes out as null.
    """

    asset = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_null=True)
    is_sample = serializers.BooleanField(allow_null=True)
    as_of = serializers.CharField(allow_null=True, help_text="Open time of the last candle (UTC).")
    last_price = serializers.FloatField(allow_null=True)
    change_24h_pct = serializers.FloatField(allow_null=True)
    change_7d_pct = serializers.FloatField(allow_null=True)
    volatility_24h_pct = serializers.FloatField(allow_null=True)
    rsi_14 = serializers.FloatField(allow_null=True)
    sma_20 = serializers.FloatField(allow_null=True)
    sma_50 = serializers.FloatField(allow_null=True)
    price_vs_sma_20_pct = serializers.FloatField(allow_null=True)
    price_vs_sma_50_pct = serializers.FloatField(allow_null=True)
    volume_change_24h_pct = serializers.FloatField(allow_null=True)
    recent_closes = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.FloatField()))
    def get_recent_closes(self, obj: dict) -> list[float]:
        """Closes of the stored recent candles, oldest first."""
        candles = obj.get("recent_candles") or []
        return [c["c"] for c in candles if isinstance(c, dict) and c.get("c") is not None]


class DebateListSerializer(serializers.ListSerializer):
    """Debates, with the live audience of all of them read at once."""

    def to_representation(self, data):
        debates = list(data.all() if hasattr(data, "all") else data)
        self.context["viewer_counts"] = presence.audience_counts([d.pk for d in debates])
        return super().to_representation(debates)


class DebateSerializer(serializers.ModelSerializer):
    """A debate with its transcript and verdict."""

    arguments = ArgumentSerializer(many=True, read_only=True)
    verdict = VerdictSerializer(read_only=True, allow_null=True)
    viewer_count = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    market = serializers.SerializerMethodField()
    can_control = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    budget_cost = serializers.FloatField(allow_null=True, read_only=True)
    questions = QuestionSerializer(many=True, read_only=True)

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
            "market",
            "can_control",
            "paused_at",
            "conclusion_reason",
            "questions",
            "usage",
            "budget_tokens",
            "budget_cost",
        ]
        read_only_fields = fields
        list_serializer_class = DebateListSerializer

    @extend_schema_field(UsageSerializer)
    def get_usage(self, obj: Debate) -> dict:
        """Tokens and cost per agent and in total, from the saved arguments (prefetched)."""
        return UsageSerializer(costs.DebateUsage.of_arguments(obj.arguments.all()).as_dict()).data

    def get_viewer_count(self, obj: Debate) -> int:
        """Sockets watching the debate now, over every server process (streaming.presence)."""
        counts = self.context.get("viewer_counts")
        if counts is None:
            counts = presence.audience_counts([obj.pk])
        return counts.get(obj.pk, 0)

    @extend_schema_field(MarketSerializer(allow_null=True))
    def get_market(self, obj: Debate) -> dict | None:
        """The market snapshot, or null until the run has fetched it."""
        if not isinstance(obj.market_context, dict):
            return None
        return MarketSerializer(obj.market_context).data

    def get_can_control(self, obj: Debate) -> bool:
        """Whether the requesting user may start or cancel this debate (creator or staff)."""
        request = self.context.get("request")
        return services.can_control(debate=obj, user=getattr(request, "user", None))


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
    budget_tokens = serializers.IntegerField(
        min_value=MIN_BUDGET_TOKENS,
        max_value=MAX_BUDGET_TOKENS,
        required=False,
        allow_null=True,
        help_text="Concludes the debate once its prompt + completion tokens reach this.",
    )
    budget_cost = serializers.DecimalField(
        max_digits=COST_DIGITS,
        decimal_places=COST_PLACES,
        min_value=MIN_BUDGET_COST,
        max_value=MAX_BUDGET_COST,
        required=False,
        allow_null=True,
        help_text="Concludes the debate once its cost in US dollars reaches this (calls of a "
        "model without a price are not counted).",
    )

    def validate_asset(self, value: str) -> str:
        """Normalise to an upper-case ticker the market data provider supports."""
        try:
            return services.validate_supported_asset(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class DebateStateSerializer(serializers.Serializer):
    """The answer to start and cancel: id and new status."""

    id = serializers.UUIDField()
    status = serializers.CharField()


class QuotaExceededSerializer(serializers.Serializer):
    """A 429: which of the user's debate quotas is used up, its limit and window."""

    detail = serializers.CharField()
    quota = serializers.ChoiceField(
        choices=["debates_per_day", "running_debates", "daily_tokens", "daily_cost"]
    )
    limit = serializers.FloatField(
        help_text="Debates, tokens, or US dollars (daily_cost); a whole number but for dollars."
    )
    window = serializers.ChoiceField(
        choices=["24h", "running"],
        help_text="24h: debates created, or tokens or dollars used, in any 24 hours; running: "
        "debates running at once.",
    )


class QuestionCreateSerializer(serializers.Serializer):
    """Input for asking a question: plain text (markup is kept as text and shown as text)."""

    text = StrictCharField(max_length=QUESTION_MAX_CHARS, allow_blank=False, trim_whitespace=True)


class ModerationStateSerializer(serializers.Serializer):
    """The answer to pause, resume and conclude: the debate's moderation state."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    paused_at = serializers.DateTimeField(allow_null=True)
    conclusion_reason = serializers.ChoiceField(
        choices=["", *ConclusionReason.values],
        help_text="Why the debate is concluding early; empty when it is not.",
    )
