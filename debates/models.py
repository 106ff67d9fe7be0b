"""Debate and Argument models."""

import hashlib
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

# How long after its verdict a debate's call is checked against the market (REST bounds).
MIN_HORIZON_S = 60
MAX_HORIZON_S = 366 * 24 * 3600


def default_horizon_s() -> int:
    """The verdict horizon of a debate created without one (VERDICT_HORIZON_S)."""
    return int(settings.VERDICT_HORIZON_S)


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
    # When the verdict is checked against the market (a Forecast's due time), after the verdict.
    verdict_horizon_s = models.PositiveIntegerField(
        default=default_horizon_s,
        validators=[MinValueValidator(MIN_HORIZON_S), MaxValueValidator(MAX_HORIZON_S)],
    )

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


class VotePhase(models.TextChoices):
    """When an audience vote was cast: before the debate, or after its verdict."""

    BEFORE = "before", "Before"
    AFTER = "after", "After"


class VoteSide(models.TextChoices):
    """Which side a viewer backs: the two debaters, not the verdict's buy/hold/sell."""

    BULL = "bull", "Bull"
    BEAR = "bear", "Bear"


class Vote(models.Model):
    """One viewer's vote in one phase of a debate (changeable while the phase is open)."""

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="debate_votes"
    )
    phase = models.CharField(max_length=6, choices=VotePhase.choices)
    side = models.CharField(max_length=4, choices=VoteSide.choices)
    # Times the side was changed: count + sum(changes) of a debate only grows (tally versions).
    changes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["debate", "phase", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["debate", "user", "phase"], name="vote_one_per_user_per_phase"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phase} vote {self.side}"


class ShareLink(models.Model):
    """A read-only link to one debate for someone without an account; only the token's hash is
    kept (the token is shown once, when the link is created)."""

    debate = models.ForeignKey(Debate, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="share_links",
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"share link {self.pk} of {str(self.debate_id)[:8]} ({state})"

    @staticmethod
    def hash_token(token: str) -> str:
        """The stored form of a share token (SHA-256, hex): a 256-bit random token needs no
        salt, and the database never holds a token that would open the debate."""
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        """True until revoked."""
        return self.revoked_at is None


class Forecast(models.Model):
    """A debate's verdict as a call on the market: priced when given, resolved once due.

    Resolution (debates.services.forecast_resolve) fills the ``resolved_at`` group once, by a
    conditional update. An unparsed verdict (the moderator's text was unusable) is tracked with
    its realised return but never scored: it is counted apart, not as a hold.
    """

    debate = models.OneToOneField(
        Debate, on_delete=models.CASCADE, primary_key=True, related_name="forecast"
    )
    asset = models.CharField(max_length=15)
    model = models.CharField(max_length=100)
    recommendation = models.CharField(max_length=4, choices=Recommendation.choices)
    confidence = models.FloatField()
    parsed = models.BooleanField()
    made_at = models.DateTimeField()
    horizon_s = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    # The price when the verdict was given, and where it came from.
    price = models.FloatField()
    priced_at = models.DateTimeField()
    source = models.CharField(max_length=40)
    is_sample = models.BooleanField()
    series_end = models.DateTimeField(null=True, blank=True)  # the sample series' last hour

    resolved_at = models.DateTimeField(null=True, blank=True)
    exit_price = models.FloatField(null=True, blank=True)
    return_pct = models.FloatField(null=True, blank=True)
    band_pct = models.FloatField(null=True, blank=True)
    hit = models.BooleanField(null=True, blank=True)
    brier = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-made_at"]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(resolved_at__isnull=True),
                name="forecast_unresolved_due_idx",
            ),
            models.Index(fields=["model", "asset"], name="forecast_model_asset_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1),
                name="forecast_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recommendation} {self.asset} at {self.price} ({self.model})"
