"""Prompt templates, as constants; `render` is the one place they are formatted."""

import json

# Markers the prompt uses around quoted material; the offline model reads the same prompt.
MARKET_BEGIN = "<market_data>"
MARKET_END = "</market_data>"
QUOTE_BEGIN = "<opponent_argument>"
QUOTE_END = "</opponent_argument>"
TRANSCRIPT_BEGIN = "<transcript>"
TRANSCRIPT_END = "</transcript>"
QUESTIONS_BEGIN = "<moderator_questions>"
QUESTIONS_END = "</moderator_questions>"

ROLE_LINE = "ROLE: {agent}"
TURN_LINE = "TURN: {turn} of {max_turns}"

BULL_SYSTEM = """You are the BULL analyst in a structured investment debate about {asset} ({name}).
Argue that {asset} is a good buy now. Ground every claim in the market data you are given and cite
the indicators with their numbers. Never invent data, news or anything your opponent did not say.
Write 3 to 5 sentences of plain text, no headings, no lists."""

BEAR_SYSTEM = """You are the BEAR analyst in a structured investment debate about {asset} ({name}).
Argue that {asset} should be sold or avoided now. Ground every claim in the market data you are
given and cite the indicators with their numbers. Never invent data, news or anything your opponent
did not say. Write 3 to 5 sentences of plain text, no headings, no lists."""

OPENING_PROMPT = """ROLE: {agent}
TURN: {turn} of {max_turns}
Market data for {asset} (source: {source}{sample_note}):
<market_data>
{market_json}
</market_data>
Open the debate with your strongest {agent} case."""

REBUTTAL_PROMPT = """ROLE: {agent}
TURN: {turn} of {max_turns}
Market data for {asset} (source: {source}{sample_note}):
<market_data>
{market_json}
</market_data>
Your opponent ({opponent}) just argued, verbatim:
<opponent_argument>
{opponent_argument}
</opponent_argument>
Answer that argument directly: quote the point you rebut, then make your {agent} case. Refer only
to what is quoted above."""

MODERATOR_SYSTEM = """You are the MODERATOR of an investment debate about {asset} ({name}).
Weigh the bull's and the bear's arguments against the market data and decide.
Answer in exactly this format:
RECOMMENDATION: BUY, HOLD or SELL
CONFIDENCE: a number between 0 and 1
RATIONALE: two or three sentences."""

MODERATOR_PROMPT = """ROLE: moderator
TURN: {turn} of {max_turns}
Market data for {asset} (source: {source}{sample_note}):
<market_data>
{market_json}
</market_data>
The debate, in order:
<transcript>
{transcript}
</transcript>
Give your verdict."""

TRANSCRIPT_ITEM = "[turn {turn}, {agent}]\n{content}"

# Appended to a turn's prompt when the moderator asked something since the last argument: the
# question is quoted as data (markers defused), never as instructions.
QUESTIONS_PROMPT = """The moderator asked, verbatim:
<moderator_questions>
{questions}
</moderator_questions>
Address the moderator's question first, in your opening sentence, then continue."""
QUESTION_ITEM = "- {text}"
SAMPLE_NOTE = ", offline sample data"

# The market fields quoted to the model (recent candles are left out to keep prompts short).
PROMPT_MARKET_FIELDS = (
    "last_price",
    "change_24h_pct",
    "change_7d_pct",
    "volatility_24h_pct",
    "rsi_14",
    "sma_20",
    "sma_50",
    "price_vs_sma_20_pct",
    "price_vs_sma_50_pct",
    "volume_change_24h_pct",
    "as_of",
)


MARKERS = (
    MARKET_BEGIN,
    MARKET_END,
    QUOTE_BEGIN,
    QUOTE_END,
    TRANSCRIPT_BEGIN,
    TRANSCRIPT_END,
    QUESTIONS_BEGIN,
    QUESTIONS_END,
)


def quoted(text: str) -> str:
    """Model output to quote inside a marker block: verbatim, except our own markers are defused.

    An argument that contains "</opponent_argument>" must not close the block it is quoted in.
    """
    for marker in MARKERS:
        if marker in text:
            text = text.replace(marker, marker.replace("<", "&lt;"))
    return text


def render(template: str, **values) -> str:
    """Format a template; values are inserted as plain text (never re-formatted)."""
    return template.format(**values)


def market_json(market: dict) -> str:
    """The market fields the prompts quote, as stable JSON."""
    return json.dumps({k: market[k] for k in PROMPT_MARKET_FIELDS if k in market}, indent=1)


def market_values(market: dict) -> dict:
    """Template values describing the market snapshot."""
    return {
        "name": market.get("name", market.get("asset", "")),
        "source": market.get("source", "unknown"),
        "sample_note": SAMPLE_NOTE if market.get("is_sample") else "",
        "market_json": market_json(market),
    }


def questions_block(texts: list[str]) -> str:
    """The moderator's questions as the block a turn's prompt ends with ("" when none)."""
    if not texts:
        return ""
    items = "\n".join(render(QUESTION_ITEM, text=quoted(" ".join(t.split()))) for t in texts)
    return render(QUESTIONS_PROMPT, questions=items)
