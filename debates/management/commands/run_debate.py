"""Create a debate and run it in the foreground, printing its tokens live."""

import asyncio
import sys
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from debates import services
from debates.models import MAX_TURNS, MIN_TURNS, DebateStatus
from debates.runs.run import DebateRun
from streaming import protocol
from tradeapp.instance import process_id

COLOURS = {"bull": "\033[32m", "bear": "\033[31m", "moderator": "\033[36m"}
BOLD, RESET = "\033[1m", "\033[0m"


class Printer:
    """Writes the debate's events to a terminal as they are published."""

    def __init__(self, out, colour: bool) -> None:
        self.out = out
        self.colour = colour
        self.started = time.monotonic()
        self.first_token_s: float | None = None
        self.tokens = 0
        self.turns = 0  # bull and bear arguments finished (the verdict is not a turn)
        self.usage: dict | None = None  # the latest DEBATE/USAGE total

    def paint(self, text: str, agent: str, bold: bool = False) -> str:
        """The text in the agent's colour (when colour is on)."""
        if not self.colour:
            return text
        return f"{BOLD if bold else ''}{COLOURS.get(agent, '')}{text}{RESET}"

    def __call__(self, action_type: str, payload: dict) -> None:
        if action_type == protocol.TURN_CHANGE:
            agent = payload["currentAgent"]
            self.out.write(self.paint(f"\n[turn {payload['turn']}] {agent.upper()}", agent, True))
        elif action_type == protocol.TOKEN_RECEIVED:
            if self.first_token_s is None:
                self.first_token_s = time.monotonic() - self.started
            self.tokens += 1
            self.out.write(self.paint(payload["token"], payload["agent"]), ending="")
            self.out.flush()
        elif action_type == protocol.ARGUMENT_COMPLETE:
            if payload["agent"] != "moderator":
                self.turns += 1
            self.out.write("")
        elif action_type == protocol.CONCLUDING:
            self.out.write(f"\n[concluding early: {payload['reason']}]")
        elif action_type == protocol.USAGE:
            self.usage = payload["total"]


class Command(BaseCommand):
    """manage.py run_debate ASSET [--turns N] [--llm offline|openai] [--rate TOKENS_PER_S]."""

    help = (
        "Create a debate about ASSET and run it here, printing each agent's tokens live. Events "
        "are published as usual, so browsers watching a server that shares this database and "
        "REDIS_URL see the debate live too."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("asset", help="Ticker or pair, e.g. BTC, AAPL, BTC/USD.")
        parser.add_argument(
            "--turns", type=int, default=4, help=f"Bull/bear turns ({MIN_TURNS}-{MAX_TURNS})."
        )
        parser.add_argument("--llm", choices=["offline", "openai"], help="Overrides DEBATE_LLM.")
        parser.add_argument(
            "--rate", type=float, help="Offline tokens per second (0: as fast as possible)."
        )
        parser.add_argument("--user", help="Username recorded as the debate's creator.")
        parser.add_argument(
            "--budget-tokens",
            type=int,
            help="Conclude early once the debate's prompt + completion tokens reach this.",
        )

    def handle(self, *args, asset, turns, llm, rate, user, budget_tokens, **options) -> None:
        colour = options.get("force_color") or (
            not options.get("no_color") and self.stdout.isatty()
        )
        if rate is not None and rate < 0:
            raise CommandError("--rate must be 0 (as fast as possible) or more tokens a second.")
        creator = None
        if user:
            creator = get_user_model().objects.filter(username=user).first()
            if creator is None:
                raise CommandError(f"No user {user!r}.")
        runner_id = process_id()
        try:
            debate = services.debate_create(
                asset=asset, max_turns=turns, created_by=creator, budget_tokens=budget_tokens
            )
            services.debate_claim(debate=debate, runner_id=runner_id)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except services.QuotaExceeded as exc:
            raise CommandError(exc.detail) from None
        printer = Printer(self.stdout, colour)
        self.stdout.write(f"Debate {debate.id} about {debate.asset}, {turns} turns")
        run = DebateRun(
            debate.id, runner_id=runner_id, llm_kind=llm, tokens_per_s=rate, observer=printer
        )
        try:
            status = asyncio.run(run.run())
        except KeyboardInterrupt:
            # This process was the run: it ends the debate itself (and tells the watchers).
            services.run_finish(
                debate_id=debate.id,
                runner_id=runner_id,
                status=DebateStatus.CANCELLED,
                error="Interrupted.",
            )
            raise CommandError(f"Debate {debate.id} cancelled (interrupted).") from None
        total = time.monotonic() - printer.started
        debate.refresh_from_db()
        ttft = f"{printer.first_token_s:.2f} s" if printer.first_token_s is not None else "-"
        verdict_note = " and a verdict" if debate.verdict else ""
        self.stdout.write(
            f"\nDebate {debate.id} {status}: {printer.turns} of {debate.max_turns} turns"
            f"{verdict_note}, {printer.tokens} tokens, first token after {ttft}, "
            f"total {total:.2f} s"
        )
        if printer.usage is not None:
            cost = printer.usage["cost"]
            self.stdout.write(
                f"Usage: {printer.usage['promptTokens']} prompt + "
                f"{printer.usage['completionTokens']} completion tokens, "
                + ("cost unknown" if cost is None else f"${cost:.6f}")
            )
        if status != DebateStatus.COMPLETED:
            raise CommandError(f"Debate {debate.id} {status}: {debate.error or 'no error given'}")
        verdict = debate.verdict
        self.stdout.write(
            self.style.SUCCESS(
                f"Verdict: {verdict['recommendation'].upper()} "
                f"(confidence {verdict['confidence']:.2f}) - {verdict['rationale']}"
            )
        )
        sys.stdout.flush()
