"""Django admin for debates, their arguments and their viewers."""

from django.contrib import admin, messages
from django.db.models import Count, Q

from debates.models import Argument, Debate, Viewer


class ArgumentInline(admin.TabularInline):
    """The transcript, read-only."""

    model = Argument
    extra = 0
    can_delete = False
    fields = ["turn", "agent", "content", "created_at"]
    readonly_fields = fields
    ordering = ["turn"]

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
        "live_viewers",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "verdict_recommendation", "created_at"]
    search_fields = ["asset", "id", "created_by__username"]
    date_hierarchy = "created_at"
    inlines = [ArgumentInline]
    actions = ["start_debates", "cancel_debates"]
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
    ]
    fields = ["asset", "max_turns", *readonly_fields]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                argument_count=Count("arguments", distinct=True),
                live_viewer_count=Count(
                    "viewers",
                    filter=Q(viewers__disconnected_at__isnull=True),
                    distinct=True,
                ),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["asset", "max_turns", *self.readonly_fields]
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

    @admin.display(description="live viewers", ordering="live_viewer_count")
    def live_viewers(self, obj: Debate) -> int:
        return obj.live_viewer_count

    def _control(self, request, queryset, service, verb: str) -> None:
        """Apply a start/cancel service to each selected debate and report what happened."""
        from django.core.exceptions import PermissionDenied

        from debates.services import DebateStateError

        done, skipped = 0, []
        for debate in queryset:
            try:
                service(debate=debate, user=request.user)
                done += 1
            except (DebateStateError, PermissionDenied) as exc:
                skipped.append(f"{str(debate.id)[:8]}: {exc}")
        self.message_user(request, f"{verb} {done} debate(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Skipped " + "; ".join(skipped), messages.WARNING)

    @admin.action(description="Start selected debates")
    def start_debates(self, request, queryset) -> None:
        from debates.services import debate_start

        self._control(request, queryset, debate_start, "Started")

    @admin.action(description="Cancel selected debates")
    def cancel_debates(self, request, queryset) -> None:
        from debates.services import debate_cancel

        self._control(request, queryset, debate_cancel, "Cancelled")


class LiveOnlyFilter(admin.SimpleListFilter):
    """Show only viewers whose socket is open."""

    title = "connection"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live only"), ("no", "Disconnected")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(disconnected_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(disconnected_at__isnull=False)
        return queryset


@admin.register(Viewer)
class ViewerAdmin(admin.ModelAdmin):
    """Who is watching, and who watched."""

    list_display = ["id", "debate", "user", "client_ip", "connected_at", "disconnected_at"]
    list_filter = [LiveOnlyFilter, "connected_at"]
    search_fields = ["debate__id", "debate__asset", "user__username", "client_ip", "process"]
    list_select_related = ["debate", "user"]
    readonly_fields = [
        "debate",
        "user",
        "channel_name",
        "process",
        "client_ip",
        "connected_at",
        "disconnected_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    actions = ["disconnect_viewers"]

    @admin.action(description="Disconnect selected viewers")
    def disconnect_viewers(self, request, queryset) -> None:
        """Close the selected live sockets, whichever daphne process holds them."""
        from streaming.control import disconnect_viewers

        count = disconnect_viewers(queryset.filter(disconnected_at__isnull=True))
        self.message_user(request, f"Asked {count} live viewer(s) to disconnect.")
