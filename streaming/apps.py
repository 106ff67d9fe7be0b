"""App config for streaming."""

from django.apps import AppConfig

from streaming import control


class StreamingConfig(AppConfig):
    """Streaming app: registers its control commands (streaming.control)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "streaming"

    def ready(self) -> None:
        control.handle("viewers.disconnect", "streaming.fanout.on_disconnect_command")
