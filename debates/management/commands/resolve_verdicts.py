"""Resolve every verdict that has come due against the market."""

import asyncio

from django.core.management.base import BaseCommand, CommandError

from debates import track


class Command(BaseCommand):
    """manage.py resolve_verdicts [--limit N]."""

    help = (
        "Score every verdict whose horizon has passed against the asset's price at its due time "
        "(return, direction hit within VERDICT_HOLD_BAND_PCT, Brier score); each is resolved "
        "once, even with serving processes doing the same. Exits non-zero when a price could "
        "not be fetched (those are retried on the next run)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--limit", type=int, default=0, help="Resolve at most this many (0: all due)."
        )

    def handle(self, *args, limit: int, **options) -> None:
        if limit < 0:
            raise CommandError("--limit must be 0 or more.")
        done = asyncio.run(track.resolve_due(limit=limit or None))
        self.stdout.write(
            f"Resolved {len(done.resolved)} verdict(s); "
            f"{len(done.not_yet)} not priced yet; {len(done.failed)} failed."
        )
        if done.failed:
            reasons = "; ".join(f"{pk}: {why}" for pk, why in done.failed.items())
            raise CommandError(f"Could not price {len(done.failed)} verdict(s): {reasons}")
