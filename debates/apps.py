"""App config for debates."""

from django.apps import AppConfig


class DebatesConfig(AppConfig):
    """Debates app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "debates"
