"""The tradeapp Django project: live AI bull-vs-bear debates over Channels."""
