"""App config for debates."""

from django.apps import AppConfig

from streaming import control


class DebatesConfig(AppConfig):
    """Debates app: registers its control commands (streaming.control)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "debates"

    def ready(self) -> None:
        control.handle("debate.stop", "debates.runs.run.on_stop_command")
        control.handle("debate.controls", "debates.runs.run.on_controls_command")
