"""Django admin for debates and their arguments."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum

from debates import controls, lifecycle, selectors, services
from debates.models import Argument, Debate, Forecast, Question, ShareLink, Vote
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


class ForecastInline(admin.StackedInline):
    """The verdict as a call on the market (the track record), read-only."""

    model = Forecast
    extra = 0
    can_delete = False
    fields = [
        "model",
        "recommendation",
        "confidence",
        "parsed",
        "price",
        "priced_at",
        "source",
        "is_sample",
        "due_at",
        "resolved_at",
        "exit_price",
        "return_pct",
        "band_pct",
        "hit",
        "brier",
    ]
    readonly_fields = fields

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


class ShareLinkInline(admin.TabularInline):
    """The debate's share links, read-only (revoke them in Share links)."""

    model = ShareLink
    extra = 0
    can_delete = False
    fields = ["id", "created_by", "created_at", "revoked_at"]
    readonly_fields = fields
    show_change_link = True

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
    inlines = [ArgumentInline, QuestionInline, ForecastInline, ShareLinkInline]
    actions = [
        "start_debates",
        "cancel_debates",
        "pause_debates",
        "resume_debates",
        "conclude_debates",
        "share_debates",
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
        "audience_vote",
    ]
    fields = [
        "asset",
        "max_turns",
        "verdict_horizon_s",
        "budget_tokens",
        "budget_cost",
        *readonly_fields,
    ]

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
            return [
                "asset",
                "max_turns",
                "verdict_horizon_s",
                "budget_tokens",
                "budget_cost",
                *self.readonly_fields,
            ]
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

    @admin.display(description="audience vote")
    def audience_vote(self, obj: Debate) -> str:
        # A summary, not an inline: a debate may have tens of thousands of votes (see Votes).
        if obj._state.adding:
            return "-"
        result = selectors.vote_swing(selectors.vote_tallies(debate_id=obj.pk))
        before, after = result["before"], result["after"]
        text = (
            f"before: bull {before['bull']}, bear {before['bear']}; "
            f"after: bull {after['bull']}, bear {after['bear']}"
        )
        if result["swing"] is not None:
            moved = result["moved_to"] or "nobody"
            text += f"; swing bull {result['swing']['bull']:+} pts, moved to {moved}"
        return text

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

    @admin.action(description="Create a share link for each selected debate")
    def share_debates(self, request, queryset) -> None:
        """Create share links and show them once (only their hashes are stored)."""
        for debate in queryset:
            try:
                _link, token = services.share_link_create(debate=debate, user=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{str(debate.id)[:8]}: {exc}", messages.WARNING)
                continue
            url = request.build_absolute_uri(f"/shared/#{token}")
            self.message_user(
                request, f"Share link of {debate} (shown once): {url}", messages.SUCCESS
            )

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


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    """Audience votes, read-only (they are written by viewers through the API)."""

    list_display = ["debate", "user", "phase", "side", "changes", "updated_at"]
    list_filter = ["phase", "side"]
    search_fields = ["debate__id", "debate__asset", "user__username"]
    list_select_related = ["debate", "user"]
    readonly_fields = ["debate", "user", "phase", "side", "changes", "created_at", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Share links: which debate, who created them, whether revoked; revoke them here."""

    list_display = ["id", "debate", "created_by", "created_at", "revoked_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["debate__id", "debate__asset", "created_by__username"]
    list_select_related = ["debate", "created_by"]
    actions = ["revoke_links"]
    fields = ["debate", "created_by", "created_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # created from a debate (its action, or REST): the token is shown once

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected share links")
    def revoke_links(self, request, queryset) -> None:
        """Revoke each selected link through the service."""
        for link in queryset.select_related("debate"):
            services.share_link_revoke(link=link, user=request.user)
        self.message_user(request, f"Revoked {queryset.count()} share link(s).", messages.SUCCESS)
