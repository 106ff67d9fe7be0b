"""App config for streaming."""

from django.apps import AppConfig


class StreamingConfig(AppConfig):
    """Streaming app: registers its control commands (streaming.control)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "streaming"

    def ready(self) -> None:
        from streaming import control, fanout

        control.handle("viewers.disconnect", fanout.on_disconnect_command)
