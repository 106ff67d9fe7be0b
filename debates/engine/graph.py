"""The bull-vs-bear debate graph: bull -> bear -> ... for max_turns, then the moderator."""

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph

from debates.engine.llm import OfflineAnalystModel
from debates.engine.nodes import make_moderator, make_speaker, route
from debates.engine.state import BEAR, BULL, MODERATOR, DebateState

NODES = [BULL, BEAR, MODERATOR, END]


def make_builder(llm: BaseChatModel) -> StateGraph:
    """The uncompiled graph with every node bound to `llm`."""
    builder = StateGraph(DebateState)
    builder.add_node(BULL, make_speaker(BULL, llm))
    builder.add_node(BEAR, make_speaker(BEAR, llm))
    builder.add_node(MODERATOR, make_moderator(llm))
    # Routing reads only the turn counters, so resuming from saved arguments just works.
    builder.add_conditional_edges(START, route, NODES)
    builder.add_conditional_edges(BULL, route, NODES)
    builder.add_conditional_edges(BEAR, route, NODES)
    builder.add_edge(MODERATOR, END)
    return builder


def build_graph(llm: BaseChatModel):
    """A compiled graph for one chat model (the runner builds one per debate)."""
    return make_builder(llm).compile()


builder = make_builder(OfflineAnalystModel(tokens_per_s=0))
graph = builder.compile()
