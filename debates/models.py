"""Debate and Argument models."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

MIN_TURNS = 1
MAX_TURNS = 20
DEFAULT_TURNS = 6
MIN_BUDGET_TOKENS = 1
MAX_BUDGET_TOKENS = 100_000_000
COST_DIGITS, COST_PLACES = 14, 8  # US dollars, to a hundred-millionth (per-token prices)
MIN_BUDGET_COST = Decimal("0.00000001")
MAX_BUDGET_COST = Decimal("100000")


class DebateStatus(models.TextChoices):
    """Lifecycle of a debate."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (DebateStatus.COMPLETED, DebateStatus.FAILED, DebateStatus.CANCELLED)


class Agent(models.TextChoices):
    """Who wrote an argument."""

    BULL = "bull", "Bull"
    BEAR = "bear", "Bear"
    MODERATOR = "moderator", "Moderator"


class Recommendation(models.TextChoices):
    """The moderator's verdict."""

    BUY = "buy", "Buy"
    HOLD = "hold", "Hold"
    SELL = "sell", "Sell"


class ConclusionReason(models.TextChoices):
    """Why a debate was concluded before its last turn (DebateRun.conclude)."""

    MODERATOR = "moderator", "Moderator"
    PAUSE_TIMEOUT = "pause_timeout", "Paused too long"
    BUDGET = "budget", "Budget reached"


class Debate(models.Model):
    """One bull-vs-bear debate about an asset."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.CharField(max_length=15)
    status = models.CharField(
        max_length=10, choices=DebateStatus.choices, default=DebateStatus.PENDING
    )
    max_turns = models.PositiveSmallIntegerField(
        default=DEFAULT_TURNS,
        validators=[MinValueValidator(MIN_TURNS), MaxValueValidator(MAX_TURNS)],
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="debates",
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    # The runner that claimed the debate, and its last sign of life.
    runner_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # The market snapshot the debate is grounded in (typed in debates.engine.market).
    market_context = models.JSONField(null=True, blank=True)

    # Moderator controls (debates.controls): set by services, acted on by the debate's run.
    paused_at = models.DateTimeField(null=True, blank=True)
    conclusion_reason = models.CharField(
        max_length=20, choices=ConclusionReason.choices, blank=True
    )
    # When the run announced DEBATE/CONCLUDING (once, whichever run it was).
    concluding_at = models.DateTimeField(null=True, blank=True)

    verdict_recommendation = models.CharField(
        max_length=4, choices=Recommendation.choices, blank=True
    )
    verdict_confidence = models.FloatField(null=True, blank=True)
    verdict_rationale = models.TextField(blank=True)

    # Budget: the debate concludes early once its usage reaches either (null: no limit).
    budget_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(MIN_BUDGET_TOKENS), MaxValueValidator(MAX_BUDGET_TOKENS)],
    )
    budget_cost = models.DecimalField(
        max_digits=COST_DIGITS,
        decimal_places=COST_PLACES,
        null=True,
        blank=True,
        validators=[MinValueValidator(MIN_BUDGET_COST), MaxValueValidator(MAX_BUDGET_COST)],
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="debate_created_idx"),
            models.Index(fields=["status", "-created_at"], name="debate_status_created_idx"),
            models.Index(fields=["asset", "-created_at"], name="debate_asset_created_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="debate_status_heartbeat_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_turns__gte=MIN_TURNS, max_turns__lte=MAX_TURNS),
                name="debate_max_turns_range",
            ),
            models.CheckConstraint(
                condition=models.Q(verdict_confidence__isnull=True)
                | models.Q(verdict_confidence__gte=0, verdict_confidence__lte=1),
                name="debate_verdict_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset} debate {str(self.id)[:8]} ({self.status})"

    @property
    def is_finished(self) -> bool:
        """True once the debate can no longer change."""
        return self.status in FINISHED_STATUSES

    @property
    def verdict(self) -> dict | None:
        """The moderator's structured verdict, or None until given."""
        if not self.verdict_recommendation:
            return None
        return {
            "recommendation": self.verdict_recommendation,
            "confidence": self.verdict_confidence,
            "rationale": self.verdict_rationale,
        }


class Argument(models.Model):
    """One completed turn of a debate, in order."""

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="arguments")
    turn = models.PositiveSmallIntegerField()
    agent = models.CharField(max_length=10, choices=Agent.choices)
    content = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    # What the model call cost: the endpoint's own counts, or ours when usage_estimated.
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(default=False)
    model = models.CharField(max_length=100, blank=True)
    # US dollars from the price table when saved; null when the model has no price.
    cost = models.DecimalField(
        max_digits=COST_DIGITS, decimal_places=COST_PLACES, null=True, blank=True
    )

    class Meta:
        ordering = ["debate", "turn"]
        constraints = [
            models.UniqueConstraint(fields=["debate", "turn"], name="argument_unique_turn"),
        ]

    def __str__(self) -> str:
        return f"turn {self.turn} ({self.agent})"


QUESTION_MAX_CHARS = 500


class Question(models.Model):
    """A moderator's question, which the next speaker addresses first."""

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="questions")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="debate_questions",
    )
    text = models.CharField(max_length=QUESTION_MAX_CHARS)
    # The turn in progress (or about to start) when it was asked.
    turn = models.PositiveSmallIntegerField()
    asked_at = models.DateTimeField(default=timezone.now)
    # The turn whose argument addressed it; saved with that argument, in one transaction.
    answered_in_turn = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["debate", "asked_at", "id"]
        indexes = [
            models.Index(fields=["debate", "answered_in_turn"], name="question_open_idx"),
        ]

    def __str__(self) -> str:
        return f"question {self.pk} (turn {self.turn})"
