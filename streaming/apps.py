"""App config for streaming."""

from django.apps import AppConfig


class StreamingConfig(AppConfig):
    """Streaming app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "streaming"
