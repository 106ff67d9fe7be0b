"""Debates: models, REST API, admin, the LangGraph engine and its runner."""
