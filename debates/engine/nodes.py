"""Graph nodes (bull, bear, moderator), the router, and the verdict parser."""

import json
import logging
import re

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from debates.engine import prompts
from debates.engine.llm import estimate_tokens, message_text, prompt_text
from debates.engine.state import (
    BEAR,
    BULL,
    MODERATOR,
    ArgumentItem,
    DebateState,
    QuestionItem,
    Speaker,
    Usage,
    Verdict,
)

logger = logging.getLogger(__name__)

SYSTEM_PROMPTS = {BULL: prompts.BULL_SYSTEM, BEAR: prompts.BEAR_SYSTEM}
OPPONENT = {BULL: BEAR, BEAR: BULL}
MAX_RATIONALE_CHARS = 1000


class IncompleteResponseError(RuntimeError):
    """The model's stream ended before the model said it had finished."""


def opponent_last_argument(state: DebateState, agent: Speaker) -> ArgumentItem | None:
    """The opponent's most recent argument, or None on the opening turn."""
    for item in reversed(state.get("arguments", [])):
        if item["agent"] == OPPONENT[agent]:
            return item
    return None


def _with_questions(human: str, questions: list[QuestionItem] | None) -> str:
    block = prompts.questions_block([q["text"] for q in questions or []])
    return f"{human}\n{block}" if block else human


async def pending_questions(config: RunnableConfig) -> list[QuestionItem]:
    """The moderator's open questions, from the callable the runner puts in the config
    (``configurable.questions``); none without one."""
    source = (config or {}).get("configurable", {}).get("questions")
    return list(await source()) if source is not None else []


def speaker_messages(
    state: DebateState, agent: Speaker, turn: int, questions: list[QuestionItem] | None = None
) -> list[BaseMessage]:
    """The prompt of one bull or bear turn; after the opening it quotes the opponent verbatim,
    and it ends with the moderator's open questions, to be addressed first."""
    market = state["market"]
    values = {
        "agent": agent,
        "turn": turn,
        "max_turns": state["max_turns"],
        "asset": state["asset"],
        **prompts.market_values(market),
    }
    system = prompts.render(SYSTEM_PROMPTS[agent], **values)
    previous = opponent_last_argument(state, agent)
    if previous is None:
        human = prompts.render(prompts.OPENING_PROMPT, **values)
    else:
        human = prompts.render(
            prompts.REBUTTAL_PROMPT,
            opponent=OPPONENT[agent],
            opponent_argument=prompts.quoted(previous["content"]),
            **values,
        )
    return [SystemMessage(content=system), HumanMessage(content=_with_questions(human, questions))]


def moderator_messages(
    state: DebateState, questions: list[QuestionItem] | None = None
) -> list[BaseMessage]:
    """The moderator's prompt: the market data, the whole transcript and any open questions."""
    values = {
        "turn": state["max_turns"] + 1,
        "max_turns": state["max_turns"],
        "asset": state["asset"],
        **prompts.market_values(state["market"]),
    }
    transcript = "\n\n".join(
        prompts.render(
            prompts.TRANSCRIPT_ITEM,
            turn=item["turn"],
            agent=item["agent"],
            content=prompts.quoted(item["content"]),
        )
        for item in state.get("arguments", [])
        if item["agent"] != MODERATOR
    )
    return [
        SystemMessage(content=prompts.render(prompts.MODERATOR_SYSTEM, **values)),
        HumanMessage(
            content=_with_questions(
                prompts.render(prompts.MODERATOR_PROMPT, transcript=transcript, **values),
                questions,
            )
        ),
    ]


def model_name(llm: BaseChatModel) -> str:
    """The name a chat model is priced under: its model name, else its LangChain type."""
    for attribute in ("model_name", "model"):
        name = getattr(llm, attribute, None)
        if isinstance(name, str) and name:
            return name
    return llm._llm_type


def reply_usage(reply: AIMessage, messages: list[BaseMessage], llm: BaseChatModel) -> Usage:
    """The call's usage: the endpoint's own counts when it sent them, else our estimate."""
    model = str(reply.response_metadata.get("model_name") or model_name(llm))
    counted = reply.usage_metadata
    if counted and (counted.get("input_tokens") or counted.get("output_tokens")):
        return Usage(
            prompt_tokens=int(counted.get("input_tokens") or 0),
            completion_tokens=int(counted.get("output_tokens") or 0),
            estimated=False,
            model=model,
        )
    # No usage chunk (an endpoint that does not send one, or a stream that lost it).
    return Usage(
        prompt_tokens=estimate_tokens(prompt_text(messages)),
        completion_tokens=estimate_tokens(message_text(reply)),
        estimated=True,
        model=model,
    )


async def _ask(
    llm: BaseChatModel, messages: list[BaseMessage], config: RunnableConfig
) -> tuple[str, Usage]:
    """Call the model (streaming through the graph's callbacks); its finished text and usage."""
    reply = await llm.ainvoke(messages, config)
    if not reply.response_metadata.get("finish_reason"):
        # A stream cut short (closed connection, missing [DONE]) must not pass as an argument.
        raise IncompleteResponseError("The model's stream ended before the answer was finished.")
    text = message_text(reply)
    if not text.strip():
        raise IncompleteResponseError("The model returned an empty answer.")
    return text, reply_usage(reply, messages, llm)


def make_speaker(agent: Speaker, llm: BaseChatModel):
    """A bull or bear node bound to a chat model."""

    async def speak(state: DebateState, config: RunnableConfig) -> dict:
        turn = state["turn"] + 1
        questions = await pending_questions(config)
        content, usage = await _ask(llm, speaker_messages(state, agent, turn, questions), config)
        item = ArgumentItem(turn=turn, agent=agent, content=content)
        return {
            "arguments": [item],
            "turn": turn,
            "next_agent": OPPONENT[agent],
            "answered": [q["id"] for q in questions],
            "usage": usage,
        }

    speak.__name__ = agent
    return speak


def make_moderator(llm: BaseChatModel):
    """The verdict node bound to a chat model."""

    async def moderate(state: DebateState, config: RunnableConfig) -> dict:
        questions = await pending_questions(config)
        content, usage = await _ask(llm, moderator_messages(state, questions), config)
        item = ArgumentItem(turn=state["max_turns"] + 1, agent=MODERATOR, content=content)
        return {
            "arguments": [item],
            "verdict": parse_verdict(content),
            "answered": [q["id"] for q in questions],
            "usage": usage,
        }

    return moderate


def route(state: DebateState) -> str:
    """Next node from the turn counters: the speakers alternate, then the moderator, then end."""
    if any(item["agent"] == MODERATOR for item in state.get("arguments", [])):
        return "__end__"
    if state["turn"] >= state["max_turns"]:
        return MODERATOR
    return state["next_agent"]


# --- Verdict parsing ------------------------------------------------------------------------------

_REC = re.compile(r"recommendation\W*\s*(buy|hold|sell)\b", re.IGNORECASE)
_CONF = re.compile(r"confidence\W*\s*([0-9]*\.?[0-9]+)\s*(%?)", re.IGNORECASE)
_RAT = re.compile(r"rationale\W*\s*(.+)", re.IGNORECASE | re.DOTALL)
FALLBACK_RATIONALE = (
    "The moderator's answer could not be read as a verdict, so the conservative default (hold, "
    "confidence 0) applies."
)


def _from_json(text: str) -> dict | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    return {str(k).lower(): v for k, v in data.items()} if isinstance(data, dict) else None


def parse_verdict(text: str) -> Verdict:
    """Read the moderator's verdict; anything unusable gives a conservative hold at confidence 0.

    Accepts the `RECOMMENDATION: / CONFIDENCE: / RATIONALE:` lines the prompt asks for (any case,
    markdown emphasis, a percentage) or a JSON object with those keys. A missing or invalid
    recommendation or confidence is not guessed: the verdict falls back to hold, 0.0 and says so.
    """
    data = _from_json(text)
    if data is not None:
        rec = str(data.get("recommendation", "")).strip().lower()
        raw_conf, pct = data.get("confidence"), ""
        rationale = str(data.get("rationale", "")).strip()
    else:
        rec_m, conf_m, rat_m = _REC.search(text), _CONF.search(text), _RAT.search(text)
        rec = rec_m.group(1).lower() if rec_m else ""
        raw_conf, pct = (conf_m.group(1), conf_m.group(2)) if conf_m else (None, "")
        rationale = rat_m.group(1).strip().strip("*").strip() if rat_m else ""
    try:
        confidence = float(raw_conf)
        if pct or confidence > 1:
            confidence /= 100.0
    except (TypeError, ValueError):
        confidence = -1.0
    if rec not in ("buy", "hold", "sell") or not 0.0 <= confidence <= 1.0:
        logger.warning("unparseable moderator verdict: %.200r", text)
        return Verdict(
            recommendation="hold", confidence=0.0, rationale=FALLBACK_RATIONALE, parsed=False
        )
    if not rationale:
        rationale = "No rationale given."
    return Verdict(
        recommendation=rec,
        confidence=round(confidence, 4),
        rationale=rationale[:MAX_RATIONALE_CHARS],
        parsed=True,
    )
