"""Usage and cost: the price table (LLM_PRICES), what a model call cost, and a debate's totals.

The one place a cost is computed. Prices are US dollars per million tokens, prompt and
completion apart; a model is priced under its exact name, else under the longest name in the
table it starts with followed by "-" (a dated release, "gpt-4o-mini-2024-07-18", takes
"gpt-4o-mini"'s price). A model the table does not know has an unknown cost (None, null on the
wire), never zero, and so has any total that includes it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from debates.models import COST_PLACES, Agent

PER_TOKENS = Decimal(1_000_000)
QUANTUM = Decimal(1).scaleb(-COST_PLACES)
AGENTS = (Agent.BULL.value, Agent.BEAR.value, Agent.MODERATOR.value)


def price_of(model: str) -> tuple[Decimal, Decimal] | None:
    """(prompt, completion) US dollars per million tokens of a model, or None when unknown."""
    table = settings.LLM_PRICES
    entry = table.get(model)
    if entry is None:
        prefixes = [name for name in table if model.startswith(f"{name}-")]
        entry = table[max(prefixes, key=len)] if prefixes else None
    if entry is None:
        return None
    return Decimal(str(entry["prompt"])), Decimal(str(entry["completion"]))


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    """US dollars of one call (to 1e-8), or None when the model has no price."""
    price = price_of(model)
    if price is None:
        return None
    total = (price[0] * prompt_tokens + price[1] * completion_tokens) / PER_TOKENS
    return total.quantize(QUANTUM)


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass
class Tally:
    """Tokens and cost of one agent, or of a whole debate."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal | None = field(default_factory=Decimal)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt_tokens: int, completion_tokens: int, cost: Decimal | None) -> None:
        """Count one call (an unknown cost makes the tally's cost unknown)."""
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost = None if self.cost is None or cost is None else self.cost + cost

    def as_dict(self) -> dict:
        """snake_case, for the REST serializers."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": _money(self.cost),
        }

    def wire(self) -> dict:
        """camelCase, for DEBATE/USAGE."""
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "cost": _money(self.cost),
        }


@dataclass
class DebateUsage:
    """A debate's usage per agent and in total; `estimated` when any count is ours."""

    per_agent: dict[str, Tally] = field(default_factory=lambda: {a: Tally() for a in AGENTS})
    total: Tally = field(default_factory=Tally)
    estimated: bool = False

    @classmethod
    def of_arguments(cls, arguments: Iterable) -> "DebateUsage":
        """The totals of saved Argument rows (those saved before usage was recorded count 0)."""
        usage = cls()
        for argument in arguments:
            if argument.prompt_tokens is None and argument.completion_tokens is None:
                continue
            usage.add(
                argument.agent,
                argument.prompt_tokens or 0,
                argument.completion_tokens or 0,
                argument.cost,
                estimated=argument.usage_estimated,
            )
        return usage

    def add(
        self,
        agent: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: Decimal | None,
        *,
        estimated: bool,
    ) -> None:
        """Count one call of an agent."""
        self.per_agent.setdefault(agent, Tally()).add(prompt_tokens, completion_tokens, cost)
        self.total.add(prompt_tokens, completion_tokens, cost)
        self.estimated = self.estimated or estimated

    def copy(self) -> "DebateUsage":
        """An independent copy (to add a call in progress to)."""
        return DebateUsage(
            per_agent={a: Tally(**vars(t)) for a, t in self.per_agent.items()},
            total=Tally(**vars(self.total)),
            estimated=self.estimated,
        )

    def reached(self, budget_tokens: int | None, budget_cost: Decimal | None) -> bool:
        """Whether the usage has reached either limit (a cost budget needs a known cost)."""
        if budget_tokens is not None and self.total.tokens >= budget_tokens:
            return True
        cost = self.total.cost
        return budget_cost is not None and cost is not None and cost >= budget_cost

    def as_dict(self) -> dict:
        """snake_case, for the REST serializers."""
        return {
            "per_agent": {a: t.as_dict() for a, t in self.per_agent.items()},
            "total": self.total.as_dict(),
            "estimated": self.estimated,
        }

    def wire(self) -> dict:
        """The perAgent and total fields of DEBATE/USAGE (camelCase)."""
        return {
            "perAgent": {a: t.wire() for a, t in self.per_agent.items()},
            "total": self.total.wire(),
            "estimated": self.estimated,
        }
