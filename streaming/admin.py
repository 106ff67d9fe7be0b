"""Django admin for viewers: who is watching, who watched, and disconnecting them."""

from django.contrib import admin

from streaming import services
from streaming.models import Viewer


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
        count = services.viewers_disconnect(viewers=queryset)
        self.message_user(request, f"Asked {count} live viewer(s) to disconnect.")
