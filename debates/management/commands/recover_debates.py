"""Take over running debates whose runner died (stale heartbeat)."""

import asyncio

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand

from debates import services
from debates.runner import PROCESS_RUNNER_ID, DebateRun


class Command(BaseCommand):
    """manage.py recover_debates [--fail]."""

    help = (
        "Resume every running debate whose heartbeat is older than DEBATE_STALE_AFTER_S, here in "
        "the foreground, from its last saved argument; with --fail, mark them failed instead."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--fail", action="store_true", help="Mark stale debates failed instead of resuming."
        )

    def handle(self, *args, fail: bool, **options) -> None:
        if fail:
            ids = services.fail_stale_debates()
            for debate_id in ids:
                async_to_sync(services.publish_status)(debate_id, "failed")
            self.stdout.write(f"Marked {len(ids)} stale debate(s) failed.")
            return
        runner_id = f"recover:{PROCESS_RUNNER_ID}"
        ids = services.recover_stale_debates(runner_id=runner_id)
        if not ids:
            self.stdout.write("No stale debates.")
            return

        async def resume_all():
            runs = [DebateRun(debate_id, runner_id=runner_id) for debate_id in ids]
            return await asyncio.gather(*(run.run() for run in runs))

        statuses = asyncio.run(resume_all())
        for debate_id, status in zip(ids, statuses, strict=True):
            self.stdout.write(f"Debate {debate_id}: {status}")
        self.stdout.write(self.style.SUCCESS(f"Recovered {len(ids)} stale debate(s)."))
