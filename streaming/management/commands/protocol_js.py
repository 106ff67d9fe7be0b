"""Write static/js/protocol.js from streaming/protocol.py, or check that it is current."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from streaming.protocol_js import COMMAND, default_path, render


class Command(BaseCommand):
    """manage.py protocol_js [--check] [--output PATH]."""

    help = "Generate the browser's protocol constants (static/js/protocol.js) from protocol.py."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit non-zero when the file differs from what would be written.",
        )
        parser.add_argument("--output", default=None, help="Defaults to static/js/protocol.js.")

    def handle(self, *args, check: bool, output: str | None, **options) -> None:
        path = Path(output) if output else default_path()
        text = render()
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if check:
            if current != text:
                raise CommandError(f"{path} is stale: run `{COMMAND}`")
            self.stdout.write(f"{path} is up to date")
        elif current == text:
            self.stdout.write(f"{path} is unchanged")
        else:
            path.write_text(text, encoding="utf-8", newline="\n")
            self.stdout.write(self.style.SUCCESS(f"Wrote {path}"))
