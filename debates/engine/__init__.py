"""The debate engine: a pure LangGraph + LangChain bull-vs-bear graph (no ORM imports)."""
