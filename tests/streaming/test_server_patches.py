"""streaming.server.install(): version-guarded, idempotent, and undone exactly by uninstall()."""

import logging

import pytest
from autobahn.twisted import websocket as autobahn_twisted_websocket
from autobahn.websocket import protocol as autobahn_protocol
from daphne.access import AccessLogGenerator
from daphne.ws_protocol import WebSocketProtocol
from prometheus_client import REGISTRY
from twisted.internet import tcp

from streaming import server
from streaming.server import fast_path, send_buffer
from streaming.server.patching import installed_version

TESTED = {"daphne": "4.2.3", "Twisted": "26.10.0", "autobahn": "26.11.1"}
TARGETS = [
    (tcp.Connection, "write"),
    (autobahn_protocol, "pformat"),
    (autobahn_protocol, "hltype"),
    (autobahn_twisted_websocket, "hltype"),
    (AccessLogGenerator, "write_entry"),
    (WebSocketProtocol, "handle_reply"),
    (WebSocketProtocol, "check_timeouts"),
    (WebSocketProtocol, "serverClose"),
]
_MISSING = object()


def _snapshot() -> list:
    return [vars(owner).get(name, _MISSING) for owner, name in TARGETS]


def _gauge(patch: str) -> float | None:
    return REGISTRY.get_sample_value("server_patch_active", {"patch": patch})


@pytest.fixture
def clean():
    """Every test leaves the libraries as it found them."""
    before = _snapshot()
    yield
    server.uninstall()
    assert [a is b for a, b in zip(_snapshot(), before, strict=True)] == [True] * len(TARGETS)


def test_the_pinned_versions_are_installed():
    assert {name: installed_version(name) for name in TESTED} == TESTED


def test_every_patch_declares_exact_tested_versions():
    names = [patch.name for patch in server.PATCHES]
    assert len(set(names)) == len(names) == 6
    for patch in server.PATCHES:
        assert patch.requires
        assert dict(patch.requires) == {name: TESTED[name] for name in patch.requires}


def test_install_applies_every_patch_once_and_uninstall_restores_exactly(clean):
    before = _snapshot()
    active = server.install()
    assert active == {patch.name for patch in server.PATCHES} == server.active()
    after = _snapshot()
    assert all(a is not b for a, b in zip(after, before, strict=True))
    assert server.install() == active  # idempotent: nothing applied twice
    assert _snapshot() == after
    assert send_buffer.bound() is not None
    assert fast_path._enabled
    assert all(_gauge(name) == 1 for name in active)

    server.uninstall()
    assert server.active() == frozenset()
    assert all(a is b for a, b in zip(_snapshot(), before, strict=True))
    assert "write" not in vars(tcp.Connection)  # inherited before: inherited again
    assert send_buffer.bound() is None
    assert not fast_path._enabled
    assert all(_gauge(name) == 0 for name in active)


def test_a_patch_for_other_versions_is_left_off_with_a_warning(clean, caplog):
    def version_of(name):
        return "27.1.0" if name == "Twisted" else TESTED[name]

    before = _snapshot()
    with caplog.at_level(logging.WARNING, logger="streaming.server"):
        active = server.install(version_of=version_of)
    assert active == {"access_log_redaction", "autobahn_lazy_config_log", "rfc_close_codes"}
    for name in ("inline_writes", "send_buffer_bound", "fast_path"):
        assert any(
            name in r.getMessage()
            and "Twisted==26.10.0" in r.getMessage()
            and "Twisted==27.1.0" in r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING
        ), name
        assert _gauge(name) == 0
    assert vars(tcp.Connection).get("write", _MISSING) is before[0]  # left as it was
    assert not fast_path._enabled


def test_a_missing_library_leaves_its_patches_off(clean, caplog):
    with caplog.at_level(logging.WARNING, logger="streaming.server"):
        active = server.install(version_of=lambda name: None if name == "daphne" else TESTED[name])
    assert active == {"inline_writes", "autobahn_lazy_config_log"}
    assert "daphne==(missing)" in caplog.text


def test_a_patch_that_fails_to_apply_is_left_off(clean, caplog, monkeypatch):
    def broken():
        raise AttributeError("moved")

    patches = list(server.PATCHES)
    patches[0] = type(patches[0])("broken", {"daphne": "4.2.3"}, broken, "nothing")
    monkeypatch.setattr(server, "PATCHES", tuple(patches))
    active = server.install()
    assert "broken" not in active
    assert len(active) == len(patches) - 1
    assert "server patch broken failed to apply" in caplog.text


class _Closing:
    """Records what serverClose does with a code (a stand-in for daphne's protocol)."""

    def __init__(self) -> None:
        self.frames: list[int | None] = []
        self.refused: list[int] = []

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):
        self.frames.append(code)

    def sendClose(self, code=None, reason=None):
        if code != 1000 and not (3000 <= code <= 4999):
            self.refused.append(code)
            raise Exception(f"invalid close code {code}")
        self.sendCloseFrame(code=code)


def test_rfc_close_codes_lets_daphne_close_with_1008(clean):
    closing = _Closing()
    with pytest.raises(Exception, match="invalid close code 1008"):
        WebSocketProtocol.serverClose(closing, code=1008)  # daphne as released
    server.install()
    WebSocketProtocol.serverClose(closing, code=1008)
    WebSocketProtocol.serverClose(closing, code=4004)
    WebSocketProtocol.serverClose(closing)
    assert closing.frames == [1008, 4004, 1000]
    assert closing.refused == [1008]


def test_autobahns_debug_arguments_are_formatted_only_when_a_line_is(clean):
    from autobahn.util import hltype

    server.install(lambda name: TESTED[name])
    lazy = autobahn_protocol.hltype(
        test_autobahns_debug_arguments_are_formatted_only_when_a_line_is
    )
    assert not isinstance(lazy, str)  # nothing formatted yet
    assert f"{lazy}" == hltype(test_autobahns_debug_arguments_are_formatted_only_when_a_line_is)
    assert autobahn_twisted_websocket.hltype is autobahn_protocol.hltype
    server.uninstall()
    assert autobahn_protocol.hltype is hltype
