"""Chat models: the offline analyst (a real LangChain chat model that streams) and ChatOpenAI.

The offline model reads the same prompt any model reads (the market data block, the quoted
opponent argument, the transcript) and writes a data-grounded argument: it cites the snapshot's
indicators with their numbers and, after the first turn, quotes the opponent's last data point
verbatim and answers it on the same indicator (its own reading of the same number) before adding
points of its own. It says when the numbers are sample data (the bull's opening, the moderator's
rationale). Its output depends only on the prompt and its `seed` (the debate id), so a
debate is reproducible. It streams word-ish tokens (a word plus its trailing space) through
LangChain's normal streaming path, paced at tokens_per_s on a fixed schedule with asyncio.sleep.
"""

import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from debates.engine import prompts

# The offline model's name in usage records and the price table (it costs nothing).
OFFLINE_MODEL = "offline-analyst"
TOKEN_PATTERN = re.compile(r"\S+\s*|\s+")
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
MAX_QUOTE_CHARS = 220


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens whose concatenation is exactly the text."""
    return TOKEN_PATTERN.findall(text)


def estimate_tokens(text: str) -> int:
    """Our own token count of a text: one per 4 characters, rounded up (OpenAI's rule of thumb)."""
    return -(-len(text) // 4)


def prompt_text(messages: list[BaseMessage]) -> str:
    """Every message's text of a prompt, joined by newlines."""
    return "\n".join(message_text(m) for m in messages)


def message_text(message: BaseMessage) -> str:
    """The plain text of a message or chunk (text blocks joined; other blocks ignored)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


# --- Reading the prompt ---------------------------------------------------------------------------


def _between(text: str, begin: str, end: str) -> str | None:
    start = text.find(begin)
    if start < 0:
        return None
    stop = text.find(end, start + len(begin))
    if stop < 0:
        return None
    return text[start + len(begin) : stop].strip("\n")


def read_brief(messages: list[BaseMessage]) -> dict:
    """Extract role, turn, market data, the quoted opponent argument and transcript."""
    text = "\n".join(message_text(m) for m in messages)
    role = re.search(r"^ROLE: (\w+)$", text, re.MULTILINE)
    turn = re.search(r"^TURN: (\d+) of (\d+)$", text, re.MULTILINE)
    market_raw = _between(text, prompts.MARKET_BEGIN, prompts.MARKET_END)
    if not role or not turn or market_raw is None:
        raise ValueError("The offline analyst did not understand the prompt (no ROLE/TURN/market).")
    asset = re.search(r"debate about (\S+) \(", text)
    source = re.search(r"^Market data for \S+ \(source: (.*)\):$", text, re.MULTILINE)
    return {
        "role": role.group(1),
        "turn": int(turn.group(1)),
        "max_turns": int(turn.group(2)),
        "asset": asset.group(1) if asset else "the asset",
        "market": json.loads(market_raw),
        "is_sample": bool(source and source.group(1).endswith(prompts.SAMPLE_NOTE)),
        "opponent": _between(text, prompts.QUOTE_BEGIN, prompts.QUOTE_END),
        "transcript": _between(text, prompts.TRANSCRIPT_BEGIN, prompts.TRANSCRIPT_END),
        "questions": _questions(_between(text, prompts.QUESTIONS_BEGIN, prompts.QUESTIONS_END)),
    }


def _questions(block: str | None) -> list[str]:
    """The moderator's questions quoted in a prompt's questions block."""
    if not block:
        return []
    return [line[2:].strip() for line in block.splitlines() if line.startswith("- ")]


def answer_questions(brief: dict, role: str) -> str:
    """The opening sentence that addresses the moderator's questions, quoting them ("" if none)."""
    questions = brief.get("questions") or []
    if not questions:
        return ""
    quoted = "; ".join(
        q if len(q) <= MAX_QUOTE_CHARS else q[:MAX_QUOTE_CHARS].rstrip() + "…" for q in questions
    )
    stance = {"bull": "the data says buy", "bear": "the data says sell"}.get(
        role, "the verdict below answers it"
    )
    return f'To the moderator\'s question "{quoted}": as the {role}, {stance}. '


# Words that only link a sentence to the one before it; a quote reads badly starting with one.
LEADING_CONNECTIVE = re.compile(
    r"^(?:(?:also|and|but|so|plus|yet|still|then|moreover|furthermore|besides|however|"
    r"meanwhile|finally|beyond that|on top of that|in addition)\b\s*[,;:]?\s+)+",
    re.IGNORECASE,
)


def strip_connective(sentence: str) -> str:
    """The sentence without leading connectives ("Also, RSI ..." -> "RSI ..."), still verbatim."""
    stripped = LEADING_CONNECTIVE.sub("", sentence)
    return stripped if stripped.strip() else sentence


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def last_point(argument: str) -> str:
    """The opponent's last data point (its last sentence with a number, else its last), verbatim.

    Of a sentence of clauses joined by "; " the last clause with a number is taken, and leading
    connectives are dropped, so the quote is a verbatim substring of the argument that reads as
    one claim of its own.
    """
    sentences = [s.strip() for s in SENTENCE_SPLIT.split(argument.strip()) if s.strip()]
    with_data = [s for s in sentences if _has_digit(s)]
    point = (with_data or sentences or [argument.strip()])[-1]
    # Of "a; b." quote the last clause with a number: one point, answered on its own.
    clauses = [c.strip() for c in point.split("; ") if _has_digit(c)]
    if len(clauses) > 1:
        point = clauses[-1]
    point = strip_connective(point)
    if len(point) > MAX_QUOTE_CHARS:
        point = point[:MAX_QUOTE_CHARS].rstrip() + "…"
    return point


# --- Writing the argument -------------------------------------------------------------------------

CHANGE, SMA_50, SMA_20, RSI, VOLUME, VOLATILITY = (
    "change",
    "sma_50",
    "sma_20",
    "rsi",
    "volume",
    "volatility",
)
# Which indicator a sentence cites, checked in this order ("24-hour volume" is about volume, not
# the 24 h change; a sentence citing several is answered on the first found here).
INDICATOR_PATTERNS = (
    (RSI, re.compile(r"\bRSI\b", re.IGNORECASE)),
    (VOLATILITY, re.compile(r"\bvolatil", re.IGNORECASE)),
    (VOLUME, re.compile(r"\bvolume", re.IGNORECASE)),
    (SMA_50, re.compile(r"\bSMA[- ]?50\b|\b50-(?:hour|day|period) (?:simple )?moving", re.I)),
    (SMA_20, re.compile(r"\bSMA[- ]?20\b|\b20-(?:hour|day|period) (?:simple )?moving", re.I)),
    (
        CHANGE,
        re.compile(r"\b(?:7|seven)[- ]?d(?:ay)?s?\b|\b24[- ]?h(?:our)?s?\b|\bweek", re.I),
    ),
)


class Signal(NamedTuple):
    """One indicator read both ways: score > 0 favours the bull."""

    key: str
    score: int
    bull: str
    bear: str

    def reading(self, role: str) -> str:
        """This side's sentence about the indicator."""
        return self.bull if role == "bull" else self.bear


def cited_indicator(sentence: str) -> str | None:
    """The indicator a sentence cites (one of the Signal keys), or None."""
    for key, pattern in INDICATOR_PATTERNS:
        if pattern.search(sentence):
            return key
    return None


def _fmt_pct(value: float) -> str:
    return f"{value:+.2f}%"


def _fmt_price(value: float) -> str:
    # Four decimals below 10, so an FX rate (1.0834) keeps the digits that move.
    return f"{value:,.2f}" if value >= 10 else f"{value:.4f}"


def market_signals(m: dict) -> list[Signal]:
    """Every indicator of the snapshot, read by the bull and by the bear, with its numbers."""
    signals = []
    c7, c24 = m["change_7d_pct"], m["change_24h_pct"]
    changes = f"the 7-day change is {_fmt_pct(c7)} and the last 24 hours show {_fmt_pct(c24)}, "
    signals.append(
        Signal(
            CHANGE,
            1 if c7 > 0 else -1,
            changes
            + ("a trend buyers are driving" if c7 > 0 else "a pullback that offers a discount"),
            changes
            + ("a rally that looks stretched" if c7 > 0 else "a downtrend sellers still control"),
        )
    )
    p50, s50 = m["price_vs_sma_50_pct"], m["sma_50"]
    vs50 = f"price sits {_fmt_pct(p50)} against the SMA-50 of {_fmt_price(s50)}, "
    signals.append(
        Signal(
            SMA_50,
            1 if p50 > 0 else -1,
            vs50
            + (
                "confirming the medium-term uptrend"
                if p50 > 0
                else "so the upside to the mean is open"
            ),
            vs50
            + (
                "leaving room for a fall back to the mean"
                if p50 > 0
                else "so the medium-term trend is broken"
            ),
        )
    )
    p20, s20 = m["price_vs_sma_20_pct"], m["sma_20"]
    vs20 = (
        f"the last price of {_fmt_price(m['last_price'])} is {_fmt_pct(p20)} from the SMA-20 "
        f"of {_fmt_price(s20)}, "
    )
    signals.append(
        Signal(
            SMA_20,
            1 if p20 > 0 else -1,
            vs20 + ("holding above its short-term average" if p20 > 0 else "a dip buyers can use"),
            vs20
            + (
                "stretched above its short-term average"
                if p20 > 0
                else "slipping below its short-term average"
            ),
        )
    )
    r = m["rsi_14"]
    if r >= 70:
        rsi_score, bull_rsi, bear_rsi = -1, "momentum is strong", "it is overbought"
    elif r <= 30:
        rsi_score, bull_rsi, bear_rsi = 1, "it is oversold and due a bounce", "momentum is weak"
    else:
        rsi_score = 1 if r >= 50 else -1
        bull_rsi = "there is room to run before overbought territory"
        bear_rsi = "momentum is fading" if r < 50 else "the move is already well advanced"
    signals.append(
        Signal(
            RSI,
            rsi_score,
            f"RSI-14 reads {r:.1f}, so {bull_rsi}",
            f"RSI-14 reads {r:.1f}, so {bear_rsi}",
        )
    )
    v, vol = m["volume_change_24h_pct"], m["volatility_24h_pct"]
    volume = f"24-hour volume changed {v:+.1f}% against the day before"
    signals.append(
        Signal(
            VOLUME,
            1 if v > 0 else -1,
            volume + (", real participation" if v > 0 else ", so selling pressure is drying up"),
            volume + (", heavy distribution" if v > 0 else ", so buyers are not showing up"),
        )
    )
    signals.append(
        Signal(
            VOLATILITY,
            0,
            f"hourly volatility of {vol:.3f}% keeps the risk measurable",
            f"hourly volatility of {vol:.3f}% means a sharp move against you is one bad day away",
        )
    )
    return signals


SAMPLE_TAG = " (sample market data)"
OPENERS = {
    "bull": [
        "I am bullish on {asset}{sample}: ",
        "The case for buying {asset}{sample} is in the numbers: ",
    ],
    "bear": [
        "I am bearish on {asset}{sample}: ",
        "The data argues against {asset}{sample} right now: ",
    ],
}
# A rebuttal that answers the quoted indicator with this side's reading of the same number.
COUNTERS = {
    "bull": [
        'My opponent says "{quote}" Read the same number again: {counter}. ',
        'The bear claims "{quote}" That misreads the data: {counter}. ',
    ],
    "bear": [
        'My opponent says "{quote}" Read the same number again: {counter}. ',
        'The bull claims "{quote}" That ignores the risk: {counter}. ',
    ],
}
# A rebuttal of a point that cites no indicator we know: answer it with our own numbers.
REBUTTALS = {
    "bull": [
        'My opponent says "{quote}" The numbers say otherwise: ',
        'The bear claims "{quote}" That misreads the data, because ',
    ],
    "bear": [
        'My opponent says "{quote}" The numbers say otherwise: ',
        'The bull claims "{quote}" That ignores the risk, because ',
    ],
}
CLOSERS = {
    "bull": ["The balance of evidence favours buying.", "That is a setup worth owning."],
    "bear": ["The balance of evidence favours selling.", "That is a risk not worth taking."],
}


def _own_points(signals: list[Signal], role: str, rng: random.Random, count: int) -> list[str]:
    """This side's readings: the indicators that favour it most first, then one at random."""
    ordered = sorted(signals, key=lambda s: -s.score if role == "bull" else s.score)
    picked = ordered[: count - 1] + rng.sample(ordered[count - 1 :], 1)
    return [s.reading(role) for s in picked]


def write_argument(brief: dict, rng: random.Random) -> str:
    """A bull or bear argument grounded in the brief's market data.

    The opening cites three indicators (and says once, in the bull's opening, when the data is
    sample data). A rebuttal quotes the opponent's last data point verbatim; when that point cites
    an indicator, it answers with this side's reading of the same indicator and its number, then
    adds two points of its own on other indicators.
    """
    role = brief["role"]
    signals = market_signals(brief["market"])
    closer = rng.choice(CLOSERS[role])
    answer = answer_questions(brief, role)
    if not brief["opponent"]:
        sample = SAMPLE_TAG if brief.get("is_sample") and brief["turn"] == 1 else ""
        head = rng.choice(OPENERS[role]).format(asset=brief["asset"], sample=sample)
        parts = _own_points(signals, role, rng, 3)
        return f"{answer}{head}{parts[0]}; {parts[1]}. Also, {parts[2]}. {closer}"
    quote = last_point(brief["opponent"])
    key = cited_indicator(quote)
    answered = next((s for s in signals if s.key == key), None)
    if answered is None:
        head = rng.choice(REBUTTALS[role]).format(quote=quote)
        parts = _own_points(signals, role, rng, 3)
        return f"{answer}{head}{parts[0]}; {parts[1]}. Also, {parts[2]}. {closer}"
    head = rng.choice(COUNTERS[role]).format(quote=quote, counter=answered.reading(role))
    parts = _own_points([s for s in signals if s is not answered], role, rng, 2)
    return f"{answer}{head}Also, {parts[0]}; {parts[1]}. {closer}"


def write_verdict(brief: dict, rng: random.Random) -> str:
    """The moderator's verdict in the format MODERATOR_SYSTEM asks for."""
    signals = market_signals(brief["market"])
    score = sum(s.score for s in signals)
    recommendation = "BUY" if score >= 2 else "SELL" if score <= -2 else "HOLD"
    confidence = min(0.9, 0.5 + 0.08 * abs(score) + rng.uniform(0, 0.04))
    strongest = max(signals, key=lambda s: abs(s.score))
    sample = SAMPLE_TAG if brief.get("is_sample") else ""
    return (
        f"RECOMMENDATION: {recommendation}\n"
        f"CONFIDENCE: {confidence:.2f}\n"
        f"RATIONALE: Across {len(signals)} indicators{sample} the net signal is {score:+d}; "
        f"decisively, {strongest.reading('bull' if score >= 0 else 'bear')}. "
        + (
            "The bull's case carries the debate."
            if score >= 2
            else "The bear's case carries the debate."
            if score <= -2
            else "Neither side made a decisive case, so waiting is prudent."
        )
        + (" " + answer_questions(brief, "moderator").strip() if brief.get("questions") else "")
    )


class OfflineAnalystModel(BaseChatModel):
    """A deterministic, data-driven analyst that streams its answer token by token."""

    seed: str = ""
    tokens_per_s: float = 40.0
    model_name: str = OFFLINE_MODEL

    @property
    def _llm_type(self) -> str:
        return "offline-analyst"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "tokens_per_s": self.tokens_per_s}

    def answer(self, messages: list[BaseMessage]) -> str:
        """The full answer to a prompt (deterministic for a seed)."""
        brief = read_brief(messages)
        key = f"{self.seed}|{brief['asset']}|{brief['role']}|{brief['turn']}"
        rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        if brief["role"] == "moderator":
            return write_verdict(brief, rng)
        return write_argument(brief, rng)

    def usage(self, messages: list[BaseMessage], answer: str) -> dict:
        """Its own counts, in its own tokens: the prompt's and the answer's word-ish tokens."""
        prompt, completion = len(tokenize(prompt_text(messages))), len(tokenize(answer))
        return {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        answer = self.answer(messages)
        message = AIMessage(
            content=answer,
            response_metadata={"finish_reason": "stop", "model_name": self.model_name},
            usage_metadata=self.usage(messages, answer),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        answer = self.answer(messages)
        tokens = tokenize(answer)
        for i, token in enumerate(tokens):
            if i < len(tokens) - 1:
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
                continue
            # The last chunk says the answer is finished and carries the usage, as OpenAI's
            # stream does with stream_options.include_usage.
            last = AIMessageChunk(
                content=token,
                response_metadata={"model_name": self.model_name},
                usage_metadata=self.usage(messages, answer),
            )
            yield ChatGenerationChunk(message=last, generation_info={"finish_reason": "stop"})

    def _stream(
        self, messages, stop=None, run_manager=None, **kwargs
    ) -> Iterator[ChatGenerationChunk]:
        delay = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        for i, chunk in enumerate(self._chunks(messages)):
            if i and delay:
                time.sleep(delay)
            yield chunk

    async def _astream(
        self, messages, stop=None, run_manager=None, **kwargs
    ) -> AsyncIterator[ChatGenerationChunk]:
        delay = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        for i, chunk in enumerate(self._chunks(messages)):
            if i:
                # Pace on a fixed schedule, so time the loop spends elsewhere (fan-out to many
                # viewers) does not slow the debate; sleep(0) still yields when behind.
                next_at += delay
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            yield chunk


def build_llm(
    kind: str,
    *,
    seed: str = "",
    tokens_per_s: float = 40.0,
    api_key: str = "",
    base_url: str = "",
    model: str = "gpt-4o-mini",
    timeout: float = 30.0,
    max_retries: int = 2,
) -> BaseChatModel:
    """The chat model for a DEBATE_LLM value ('offline' or 'openai')."""
    if kind == "offline":
        return OfflineAnalystModel(seed=seed, tokens_per_s=tokens_per_s)
    if kind == "openai":
        # Imported here: only DEBATE_LLM=openai needs it, and it costs ~1 s of start-up.
        from langchain_openai import ChatOpenAI

        if not api_key and not base_url:
            raise ValueError("DEBATE_LLM=openai needs OPENAI_API_KEY (or an OPENAI_BASE_URL).")
        return ChatOpenAI(
            streaming=True,
            # The endpoint's own usage in the stream's last chunk (langchain-openai leaves it off
            # when a base URL is set); an endpoint that does not send it gets our estimate.
            stream_usage=True,
            # Local OpenAI-compatible servers (vLLM, Ollama, llama.cpp) accept any key.
            api_key=api_key or "not-needed",
            base_url=base_url or None,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
        )
    raise ValueError(f"Unknown DEBATE_LLM {kind!r} (use 'offline' or 'openai').")
