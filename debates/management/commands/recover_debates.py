"""Take over running debates whose runner died (stale heartbeat)."""

import asyncio

from django.core.management.base import BaseCommand, CommandError

from debates import lifecycle, services
from debates.models import DebateStatus
from debates.runs.run import DebateRun


class Command(BaseCommand):
    """manage.py recover_debates [--fail]."""

    help = (
        "Resume every running debate whose heartbeat is older than DEBATE_STALE_AFTER_S, here in "
        "the foreground, from its last saved argument; with --fail, mark them failed instead. "
        "Exits non-zero when a resumed debate does not complete."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--fail", action="store_true", help="Mark stale debates failed instead of resuming."
        )

    def handle(self, *args, fail: bool, **options) -> None:
        if fail:
            ids = services.debates_fail_stale()
            self.stdout.write(f"Marked {len(ids)} stale debate(s) failed.")
            return
        ids = lifecycle.recover(launch_runs=False)
        if not ids:
            self.stdout.write("No stale debates.")
            return

        async def resume_all():
            runs = [DebateRun(debate_id) for debate_id in ids]
            # return_exceptions: one crashed run must not cancel the others mid-debate.
            return await asyncio.gather(*(run.run() for run in runs), return_exceptions=True)

        results = asyncio.run(resume_all())
        unfinished = []
        for debate_id, result in zip(ids, results, strict=True):
            if isinstance(result, BaseException):
                result = f"crashed ({type(result).__name__}: {result})"
            self.stdout.write(f"Debate {debate_id}: {result}")
            if result != DebateStatus.COMPLETED:
                unfinished.append(str(debate_id))
        if unfinished:
            raise CommandError(
                f"Recovered {len(ids)} stale debate(s); not completed: {', '.join(unfinished)}."
            )
        self.stdout.write(self.style.SUCCESS(f"Recovered {len(ids)} stale debate(s)."))
