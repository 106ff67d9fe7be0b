"""Django admin for debates and their arguments."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum

from debates import controls, lifecycle
from debates.models import Argument, Debate, Question
from debates.services import DebateStateError, QuotaExceeded
from streaming import presence


class ArgumentInline(admin.TabularInline):
    """The transcript, read-only."""

    model = Argument
    extra = 0
    can_delete = False
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
    readonly_fields = fields
    ordering = ["turn"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class QuestionInline(admin.TabularInline):
    """The moderator's questions, read-only (asked from the watch page or the API)."""

    model = Question
    extra = 0
    can_delete = False
    fields = ["turn", "text", "asked_by", "asked_at", "answered_in_turn"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Debate)
class DebateAdmin(admin.ModelAdmin):
    """Every debate with its status, turns, verdict and live viewers."""

    list_display = [
        "short_id",
        "asset",
        "status",
        "turns",
        "verdict_recommendation",
        "tokens",
        "cost",
        "live_viewers",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "verdict_recommendation", "created_at"]
    search_fields = ["asset", "id", "created_by__username"]
    date_hierarchy = "created_at"
    inlines = [ArgumentInline, QuestionInline]
    actions = [
        "start_debates",
        "cancel_debates",
        "pause_debates",
        "resume_debates",
        "conclude_debates",
    ]
    readonly_fields = [
        "id",
        "status",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "runner_id",
        "heartbeat_at",
        "market_context",
        "verdict_recommendation",
        "verdict_confidence",
        "verdict_rationale",
        "paused_at",
        "conclusion_reason",
    ]
    fields = ["asset", "max_turns", "budget_tokens", "budget_cost", *readonly_fields]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                argument_count=Count("arguments", distinct=True),
                prompt_total=Sum("arguments__prompt_tokens"),
                completion_total=Sum("arguments__completion_tokens"),
                cost_total=Sum("arguments__cost"),
                unpriced=Count(
                    "arguments",
                    filter=Q(arguments__cost__isnull=True, arguments__prompt_tokens__isnull=False),
                ),
            )
        )

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        counts = presence.audience_counts([debate.pk for debate in changelist.result_list])
        for debate in changelist.result_list:
            debate.live_viewer_count = counts.get(debate.pk, 0)
        return changelist

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["asset", "max_turns", "budget_tokens", "budget_cost", *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="id")
    def short_id(self, obj: Debate) -> str:
        return str(obj.id)[:8]

    @admin.display(description="turns", ordering="argument_count")
    def turns(self, obj: Debate) -> str:
        return f"{obj.argument_count}/{obj.max_turns}"

    @admin.display(description="tokens")
    def tokens(self, obj: Debate) -> int:
        return (obj.prompt_total or 0) + (obj.completion_total or 0)

    @admin.display(description="cost (USD)", ordering="cost_total")
    def cost(self, obj: Debate) -> str:
        if obj.unpriced:
            return "unknown"  # a model without a price: never shown as free
        return f"{obj.cost_total or 0:.6f}"

    @admin.display(description="live viewers")
    def live_viewers(self, obj: Debate) -> int:
        return getattr(obj, "live_viewer_count", 0)

    def _control(self, request, queryset, service, verb: str) -> None:
        """Apply a start/cancel to each selected debate and report what happened."""
        done, skipped = 0, []
        for debate in queryset:
            try:
                service(debate=debate, user=request.user)
                done += 1
            except (DebateStateError, PermissionDenied, QuotaExceeded) as exc:
                skipped.append(f"{str(debate.id)[:8]}: {exc}")
        self.message_user(request, f"{verb} {done} debate(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Skipped " + "; ".join(skipped), messages.WARNING)

    @admin.action(description="Start selected debates")
    def start_debates(self, request, queryset) -> None:
        self._control(request, queryset, lifecycle.start, "Started")

    @admin.action(description="Cancel selected debates")
    def cancel_debates(self, request, queryset) -> None:
        self._control(request, queryset, lifecycle.cancel, "Cancelled")

    @admin.action(description="Pause selected debates")
    def pause_debates(self, request, queryset) -> None:
        self._control(request, queryset, controls.pause, "Paused")

    @admin.action(description="Resume selected debates")
    def resume_debates(self, request, queryset) -> None:
        self._control(request, queryset, controls.resume, "Resumed")

    @admin.action(description="Conclude selected debates now (verdict after the current argument)")
    def conclude_debates(self, request, queryset) -> None:
        self._control(request, queryset, controls.conclude, "Concluding")
