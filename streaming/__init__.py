"""Streaming: the WebSocket consumer, wire protocol, auth, limits, event log and fan-out."""
