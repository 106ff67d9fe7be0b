"""The LangGraph debate graph: turn order, prompts, routing, verdict, streaming, resume."""

from datetime import UTC, datetime

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from debates.engine import graph as graph_module
from debates.engine import prompts
from debates.engine.graph import build_graph
from debates.engine.llm import OfflineAnalystModel, read_brief
from debates.engine.market import SampleMarketData
from debates.engine.nodes import route
from debates.engine.state import ArgumentItem, initial_state


class ScriptedModel(BaseChatModel):
    """Answers each call with the next scripted text, streaming it word by word; records prompts."""

    script: list[str]
    calls: list = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages) -> str:
        self.calls.append(messages)
        return self.script[len(self.calls) - 1]

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        msg = AIMessage(content=self._next(messages), response_metadata={"finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        words = self._next(messages).split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=word if last else word + " "),
                generation_info={"finish_reason": "stop"} if last else None,
            )


@pytest.fixture
async def market() -> dict:
    return (await SampleMarketData(now=datetime(2026, 1, 5, tzinfo=UTC)).snapshot("ETH")).to_dict()


async def run(graph, state):
    tokens, updates = [], []
    async for mode, data in graph.astream(state, stream_mode=["messages", "updates"]):
        if mode == "messages":
            tokens.append((data[1]["langgraph_node"], data[0].content))
        else:
            updates.append(data)
    return tokens, updates


async def test_turn_order_count_and_verdict(market):
    graph = build_graph(OfflineAnalystModel(seed="g", tokens_per_s=0))
    tokens, updates = await run(graph, initial_state(asset="ETH", market=market, max_turns=4))
    items = [u[node]["arguments"][0] for u in updates for node in u]
    assert [(i["turn"], i["agent"]) for i in items] == [
        (1, "bull"),
        (2, "bear"),
        (3, "bull"),
        (4, "bear"),
        (5, "moderator"),
    ]
    verdict = updates[-1]["moderator"]["verdict"]
    assert verdict["recommendation"] in {"buy", "hold", "sell"}
    assert 0 <= verdict["confidence"] <= 1
    assert verdict["rationale"]
    assert verdict["parsed"] is True
    # Every argument is exactly the concatenation of its node's streamed tokens.
    for item in items:
        streamed = "".join(t for node, t in tokens if node == item["agent"])
        assert item["content"] in streamed
    assert "".join(t for _, t in tokens) == "".join(i["content"] for i in items)


async def test_prompts_quote_the_opponents_last_argument_verbatim(market):
    script = [
        "Bull one {braces} stay literal.",
        "Bear two.",
        "Bull three.",
        "RECOMMENDATION: HOLD\nCONFIDENCE: 0.5\nRATIONALE: even.",
    ]
    model = ScriptedModel(script=script, calls=[])
    _, updates = await run(
        build_graph(model), initial_state(asset="ETH", market=market, max_turns=3)
    )
    prompts_by_turn = ["\n".join(m.content for m in call) for call in model.calls]
    assert prompts.QUOTE_BEGIN not in prompts_by_turn[0]
    assert f"{prompts.QUOTE_BEGIN}\n{script[0]}\n{prompts.QUOTE_END}" in prompts_by_turn[1]
    assert f"{prompts.QUOTE_BEGIN}\n{script[1]}\n{prompts.QUOTE_END}" in prompts_by_turn[2]
    assert script[2] not in prompts_by_turn[2]  # nobody sees what has not been said yet
    # The moderator sees the whole transcript and the market data.
    for text in script[:3]:
        assert text in prompts_by_turn[3]
    brief = read_brief(model.calls[1])
    assert (brief["role"], brief["turn"], brief["max_turns"]) == ("bear", 2, 3)
    assert brief["market"]["rsi_14"] == market["rsi_14"]
    assert updates[-1]["moderator"]["verdict"]["recommendation"] == "hold"


def test_routing_reads_only_the_counters(market):
    state = initial_state(asset="ETH", market=market, max_turns=2)
    assert route(state) == "bull"
    assert route({**state, "turn": 1, "next_agent": "bear"}) == "bear"
    assert route({**state, "turn": 2, "next_agent": "bull"}) == "moderator"
    done = ArgumentItem(turn=3, agent="moderator", content="x")
    assert route({**state, "turn": 2, "arguments": [done]}) == "__end__"


async def test_resume_from_saved_arguments(market):
    saved = [
        ArgumentItem(turn=1, agent="bull", content="Saved bull."),
        ArgumentItem(turn=2, agent="bear", content="Saved bear."),
    ]
    state = initial_state(asset="ETH", market=market, max_turns=3, arguments=saved)
    assert (state["turn"], state["next_agent"]) == (2, "bull")
    model = ScriptedModel(
        script=["Bull three.", "RECOMMENDATION: BUY\nCONFIDENCE: 0.7\nRATIONALE: r"], calls=[]
    )
    _, updates = await run(build_graph(model), state)
    assert [list(u) for u in updates] == [["bull"], ["moderator"]]
    assert "Saved bear." in "\n".join(m.content for m in model.calls[0])


def test_module_graph_is_compiled():
    assert set(graph_module.graph.get_graph().nodes) >= {"bull", "bear", "moderator"}
