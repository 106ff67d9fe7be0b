"""The graph's state: structured, so routing never reads text."""

import operator
from typing import Annotated, Literal, TypedDict

Speaker = Literal["bull", "bear"]
AgentName = Literal["bull", "bear", "moderator"]

BULL: Speaker = "bull"
BEAR: Speaker = "bear"
MODERATOR: AgentName = "moderator"


class ArgumentItem(TypedDict):
    """One finished turn: who spoke, which turn, and the exact text."""

    turn: int
    agent: AgentName
    content: str


class QuestionItem(TypedDict):
    """A moderator's question the next speaker must address first."""

    id: int
    text: str


class Verdict(TypedDict):
    """The moderator's structured verdict."""

    recommendation: Literal["buy", "hold", "sell"]
    confidence: float
    rationale: str
    parsed: bool  # False when the moderator's text was unusable and we fell back to hold


class Usage(TypedDict):
    """What one model call cost in tokens: the endpoint's own counts, or our estimate."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool  # True when the endpoint sent no usage and the counts are ours
    model: str


class DebateState(TypedDict, total=False):
    """Everything the nodes need; `arguments` accumulates one item per node run."""

    asset: str
    market: dict  # MarketSnapshot.to_dict()
    arguments: Annotated[list[ArgumentItem], operator.add]
    turn: int  # completed bull/bear turns so far
    max_turns: int
    next_agent: Speaker
    verdict: Verdict | None
    answered: Annotated[list[int], operator.add]  # ids of the questions a turn addressed
    usage: Usage | None  # the last node's model call


def speaker_for_turn(turn: int) -> Speaker:
    """Who speaks at 1-based turn `turn` (the bull opens)."""
    return BULL if turn % 2 == 1 else BEAR


def initial_state(
    *, asset: str, market: dict, max_turns: int, arguments: list[ArgumentItem] | None = None
) -> DebateState:
    """A fresh state, or one rebuilt from saved arguments to resume a debate."""
    saved = sorted(arguments or [], key=lambda a: a["turn"])
    spoken = [a for a in saved if a["agent"] != MODERATOR]
    return DebateState(
        asset=asset,
        market=market,
        arguments=saved,
        turn=len(spoken),
        max_turns=max_turns,
        next_agent=speaker_for_turn(len(spoken) + 1),
        verdict=None,
    )
