"""The offline analyst model, the LLM factory and the verdict parser."""

import asyncio
from datetime import UTC, datetime

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from debates.engine import llm as llm_module
from debates.engine.llm import OfflineAnalystModel, build_llm, last_point, tokenize
from debates.engine.market import SampleMarketData
from debates.engine.nodes import parse_verdict, speaker_messages
from debates.engine.state import ArgumentItem, initial_state


@pytest.fixture
async def market() -> dict:
    snap = await SampleMarketData(now=datetime(2026, 1, 5, tzinfo=UTC)).snapshot("NVDA")
    return snap.to_dict()


def indicator_strings(m: dict) -> list[str]:
    return [
        f"{m['rsi_14']:.1f}",
        f"{m['change_7d_pct']:+.2f}%",
        f"{m['price_vs_sma_50_pct']:+.2f}%",
        f"{m['volume_change_24h_pct']:+.1f}%",
        f"{m['volatility_24h_pct']:.3f}%",
        f"{m['price_vs_sma_20_pct']:+.2f}%",
    ]


def test_tokenize_is_lossless_and_wordish():
    text = "Hello  world,\nnext line. "
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[0] == "Hello  "


async def test_offline_model_is_deterministic_and_grounded(market):
    state = initial_state(asset="NVDA", market=market, max_turns=4)
    messages = speaker_messages(state, "bull", 1)
    a = OfflineAnalystModel(seed="debate-1", tokens_per_s=0)
    first = (await a.ainvoke(messages)).content
    assert first == (await OfflineAnalystModel(seed="debate-1").ainvoke(messages)).content
    cited = [s for s in indicator_strings(market) if s in first]
    assert len(cited) >= 2, first
    assert "NVDA" in first


async def test_offline_rebuttal_quotes_the_opponent_verbatim(market):
    bull_text = "Buy now. RSI-14 reads 61.0, so there is room to run. Trust me."
    state = initial_state(
        asset="NVDA",
        market=market,
        max_turns=4,
        arguments=[ArgumentItem(turn=1, agent="bull", content=bull_text)],
    )
    reply = (
        await OfflineAnalystModel(seed="s").ainvoke(speaker_messages(state, "bear", 2))
    ).content
    assert '"RSI-14 reads 61.0, so there is room to run."' in reply
    assert last_point(bull_text) == "RSI-14 reads 61.0, so there is room to run."


def fake_clock(monkeypatch, busy_s: float = 0.0) -> list[float]:
    """Replace the loop's clock and asyncio.sleep: each sleep advances the clock by its delay,
    then by `busy_s` (time the loop spends on other work, such as fan-out, before resuming)."""
    clock = [0.0]
    delays: list[float] = []

    async def fake_sleep(delay):
        delays.append(delay)
        clock[0] += delay + busy_s

    monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: clock[0])
    monkeypatch.setattr(llm_module.asyncio, "sleep", fake_sleep)
    return delays


async def test_offline_model_streams_tokens_at_the_configured_rate(market, monkeypatch):
    delays = fake_clock(monkeypatch)
    state = initial_state(asset="NVDA", market=market, max_turns=2)
    model = OfflineAnalystModel(seed="x", tokens_per_s=40)
    chunks = [c async for c in model.astream(speaker_messages(state, "bull", 1))]
    text = "".join(c.content for c in chunks)
    assert text == model.answer(speaker_messages(state, "bull", 1))
    assert len([c for c in chunks if c.content]) > 20
    assert delays == pytest.approx([1 / 40] * (len(tokenize(text)) - 1))
    # Rate 0: still yields to the loop, without waiting.
    delays.clear()
    _ = [
        c
        async for c in OfflineAnalystModel(seed="x", tokens_per_s=0).astream(
            speaker_messages(state, "bull", 1)
        )
    ]
    assert set(delays) == {0.0}


async def test_time_spent_elsewhere_on_the_loop_does_not_slow_the_debate(market, monkeypatch):
    # Each token's consumer keeps the loop busy 10 ms; the model waits only the rest of 25 ms.
    delays = fake_clock(monkeypatch, busy_s=0.010)
    state = initial_state(asset="NVDA", market=market, max_turns=2)
    model = OfflineAnalystModel(seed="x", tokens_per_s=40)
    chunks = [c async for c in model.astream(speaker_messages(state, "bull", 1))]
    tokens = tokenize("".join(c.content for c in chunks))
    assert len(tokens) > 20
    assert len(delays) == len(tokens) - 1
    assert delays == pytest.approx([0.025] + [0.015] * (len(tokens) - 2))
    # When the loop falls behind by more than a token, the model catches up without waiting.
    delays = fake_clock(monkeypatch, busy_s=0.050)
    chunks = [c async for c in model.astream(speaker_messages(state, "bull", 1))]
    assert delays[0] == pytest.approx(0.025)
    assert set(delays[1:]) == {0.0}


def test_offline_model_refuses_a_prompt_it_cannot_read():
    with pytest.raises(ValueError, match="did not understand"):
        OfflineAnalystModel().invoke([SystemMessage("hi"), HumanMessage("what now?")])


def test_build_llm():
    assert isinstance(build_llm("offline", seed="s", tokens_per_s=3), OfflineAnalystModel)
    model = build_llm(
        "openai", api_key="k", base_url="http://127.0.0.1:1/v1", model="m", timeout=2, max_retries=0
    )
    assert isinstance(model, ChatOpenAI)
    assert (model.streaming, model.model_name, model.max_retries) == (True, "m", 0)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_llm("openai")
    with pytest.raises(ValueError, match="DEBATE_LLM"):
        build_llm("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RECOMMENDATION: BUY\nCONFIDENCE: 0.72\nRATIONALE: Strong trend.", ("buy", 0.72)),
        ("**Recommendation:** sell\n**Confidence:** 65%\n**Rationale:** Weak.", ("sell", 0.65)),
        ("recommendation - hold\nconfidence = 0.5\nrationale: meh", ("hold", 0.5)),
        ('{"recommendation": "Buy", "confidence": 0.9, "rationale": "x"}', ("buy", 0.9)),
        ("RECOMMENDATION: BUY\nCONFIDENCE: 80\nRATIONALE: r", ("buy", 0.8)),
    ],
)
def test_parse_verdict_accepts_common_shapes(text, expected):
    verdict = parse_verdict(text)
    assert (verdict["recommendation"], verdict["confidence"]) == expected
    assert verdict["parsed"] is True
    assert verdict["rationale"]


@pytest.mark.parametrize(
    "text",
    [
        "I think it will go up, maybe.",
        "RECOMMENDATION: STRONG BUY\nCONFIDENCE: 0.9",
        "RECOMMENDATION: BUY\nCONFIDENCE: 250",
        "RECOMMENDATION: BUY",
        "",
    ],
)
def test_parse_verdict_falls_back_to_a_conservative_hold(text):
    verdict = parse_verdict(text)
    assert verdict["recommendation"] == "hold"
    assert verdict["confidence"] == 0.0
    assert verdict["parsed"] is False
    assert "could not be read" in verdict["rationale"]
