"""App config for debates."""

from django.apps import AppConfig


class DebatesConfig(AppConfig):
    """Debates app: registers its control commands (streaming.control)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "debates"

    def ready(self) -> None:
        from debates.runs import run
        from streaming import control

        control.handle("debate.stop", run.on_stop_command)
