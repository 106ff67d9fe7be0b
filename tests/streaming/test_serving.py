"""tradeapp.serving: the janitor on the first scope; patches and GC tuning on daphne's first
scope only; nothing on import."""

import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from asgiref.compatibility import guarantee_single_callable
from daphne.access import AccessLogGenerator

from streaming import server
from tradeapp import serving

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def set_up_calls(monkeypatch):
    """Record tune_gc (instead of freezing this process's collector) and the janitor's start;
    uninstall the patches afterwards."""
    calls = []
    monkeypatch.setattr(serving, "tune_gc", lambda: calls.append("tune_gc"))
    monkeypatch.setattr(serving, "ensure_janitor", lambda: calls.append("janitor"))
    yield calls
    server.uninstall()


@pytest.fixture
def daphne_send(monkeypatch):
    """A send taken for daphne's (the real check needs daphne.server, which installs Twisted's
    reactor when imported; tests/e2e covers it)."""

    async def send(message):
        pass

    monkeypatch.setattr(server, "is_daphne_send", lambda candidate: candidate is send)
    return send


def _app(seen: list):
    async def app(scope, receive, send):
        seen.append(scope["type"])

    return app


async def test_patches_are_in_place_before_the_first_scope_runs(set_up_calls, daphne_send):
    seen = []
    wrapped = serving.ServingProcess(_app(seen))
    original = AccessLogGenerator.write_entry
    pending = wrapped({"type": "websocket"}, None, daphne_send)
    # daphne writes the "connecting" access-log line before the app's coroutine first runs.
    assert "access_log_redaction" in server.active()
    assert AccessLogGenerator.write_entry is not original
    assert set_up_calls == ["tune_gc", "janitor"]
    assert seen == []
    await pending
    assert seen == ["websocket"]
    await wrapped({"type": "http"}, None, daphne_send)
    assert set_up_calls == ["tune_gc", "janitor"]  # once


async def test_other_servers_get_nothing(set_up_calls):
    async def send(message):  # the test communicator, uvicorn
        pass

    seen = []
    wrapped = serving.ServingProcess(_app(seen))
    await wrapped({"type": "http"}, None, send)
    assert seen == ["http"]
    assert server.active() == frozenset()
    assert set_up_calls == ["janitor"]  # every server's process takes over stale debates


async def test_an_unrecognised_daphne_send_is_logged(set_up_calls, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "daphne.server", types.ModuleType("daphne.server"))

    async def send(message):
        pass

    with caplog.at_level(logging.WARNING, logger="tradeapp.serving"):
        await serving.ServingProcess(_app([]))({"type": "http"}, None, send)
    assert "server patches and GC tuning left off" in caplog.text
    assert server.active() == frozenset()
    assert set_up_calls == ["janitor"]


def test_daphne_takes_the_wrapper_for_an_asgi3_app():
    wrapped = serving.ServingProcess(_app([]))
    assert guarantee_single_callable(wrapped) is wrapped


IMPORT_CHECK = """
import gc, json
from autobahn.websocket import protocol as autobahn_protocol
from daphne.access import AccessLogGenerator
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import tcp

targets = [
    (tcp.Connection, "write"), (autobahn_protocol, "pformat"),
    (AccessLogGenerator, "write_entry"), (WebSocketProtocol, "handle_reply"),
    (WebSocketProtocol, "check_timeouts"),
]
before = [vars(owner).get(name) for owner, name in targets]
gc_before = [list(gc.get_threshold()), gc.get_freeze_count()]

import tradeapp.asgi
from streaming import server

print(json.dumps({
    "unchanged": [vars(o).get(n) is b for (o, n), b in zip(targets, before)],
    "gc": [[list(gc.get_threshold()), gc.get_freeze_count()], gc_before],
    "active": sorted(server.active()),
}))
"""


def test_importing_the_asgi_module_patches_nothing_and_leaves_the_gc_alone():
    # A fresh interpreter: this process's earlier tests cannot hide an import side effect.
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tradeapp.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["unchanged"] == [True] * 5
    after, before = report["gc"]
    assert after == before
    assert report["active"] == []
