"""Every message shape of the wire protocol (DESIGN §3), one test each."""

import re

import orjson
import pytest

from streaming import protocol
from streaming.protocol import Close

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DEBATE = "6f1c1d3e-0000-4000-8000-000000000001"


def _check_action(message: dict, action_type: str, payload_keys: set[str]) -> None:
    assert set(message) == {"type", "payload", "timestamp"}
    assert message["type"] == action_type
    assert set(message["payload"]) == payload_keys
    assert ISO_Z.match(message["timestamp"])


def test_connected_shape():
    message = protocol.connected(DEBATE, "running", 7, 3)
    _check_action(
        message, "DEBATE/CONNECTED", {"debateId", "status", "lastSeq", "viewers", "reset"}
    )
    assert message["payload"] == {
        "debateId": DEBATE,
        "status": "running",
        "lastSeq": 7,
        "viewers": 3,
        "reset": False,
    }
    assert protocol.connected(DEBATE, "completed", 9, 1, reset=True)["payload"]["reset"] is True


def test_token_received_shape():
    message = protocol.event(protocol.TOKEN_RECEIVED, DEBATE, 1, agent="bull", token="Up", turn=1)
    _check_action(message, "DEBATE/TOKEN_RECEIVED", {"debateId", "agent", "token", "turn", "seq"})
    assert message["payload"]["seq"] == 1


def test_argument_complete_shape():
    message = protocol.event(
        protocol.ARGUMENT_COMPLETE, DEBATE, 2, agent="bear", content="Down.", turn=2
    )
    _check_action(
        message, "DEBATE/ARGUMENT_COMPLETE", {"debateId", "agent", "content", "turn", "seq"}
    )


def test_turn_change_shape():
    message = protocol.event(protocol.TURN_CHANGE, DEBATE, 3, currentAgent="bear", turn=2)
    _check_action(message, "DEBATE/TURN_CHANGE", {"debateId", "currentAgent", "turn", "seq"})


def test_status_update_shape():
    message = protocol.event(protocol.STATUS_UPDATE, DEBATE, 4, status="completed")
    _check_action(message, "DEBATE/STATUS_UPDATE", {"debateId", "status", "seq"})


def test_paused_shape():
    message = protocol.event(protocol.PAUSED, DEBATE, 5, pausedAt="2026-01-01T00:00:00.000Z")
    _check_action(message, "DEBATE/PAUSED", {"debateId", "pausedAt", "seq"})


def test_resumed_shape():
    message = protocol.event(protocol.RESUMED, DEBATE, 6)
    _check_action(message, "DEBATE/RESUMED", {"debateId", "seq"})


def test_question_shape():
    message = protocol.event(
        protocol.QUESTION, DEBATE, 7, questionId=3, text="<b>Why?</b>", askedBy="alice", turn=2
    )
    _check_action(
        message, "DEBATE/QUESTION", {"debateId", "questionId", "text", "askedBy", "turn", "seq"}
    )
    assert message["payload"]["text"] == "<b>Why?</b>"  # markup is data; pages show it as text


def test_concluding_shape():
    message = protocol.event(protocol.CONCLUDING, DEBATE, 8, reason="moderator")
    _check_action(message, "DEBATE/CONCLUDING", {"debateId", "reason", "seq"})


@pytest.mark.parametrize("action_type", [protocol.PAUSED, protocol.QUESTION, protocol.CONCLUDING])
def test_moderator_events_require_their_fields(action_type):
    with pytest.raises(ValueError, match="needs"):
        protocol.event(action_type, DEBATE, 1)


def test_error_shape_defaults_from_close_code():
    message = protocol.error(Close.UNAUTHORIZED)
    _check_action(message, "DEBATE/ERROR", {"code", "message", "reason"})
    assert message["payload"]["code"] == 4001
    assert message["payload"]["reason"] == "unauthorized"


def test_ping_and_pong_shapes():
    _check_action(protocol.ping(), "DEBATE/PING", set())
    _check_action(protocol.pong(), "DEBATE/PONG", set())


def test_close_codes_are_the_documented_ones():
    assert {int(c) for c in Close} == {
        4001,
        4003,
        4004,
        4008,
        4029,
        4400,
        4429,
        4500,
        4503,
        1008,
        1001,
    }
    for code in Close:
        if code != Close.BAD_FRAME:
            assert code in protocol.CLOSE_MESSAGES


def test_server_types_are_every_message_type_once():
    assert sorted(protocol.SERVER_TYPES) == sorted(
        {
            protocol.CONNECTED,
            protocol.TOKEN_RECEIVED,
            protocol.ARGUMENT_COMPLETE,
            protocol.TURN_CHANGE,
            protocol.STATUS_UPDATE,
            protocol.USAGE,
            protocol.ERROR,
            protocol.PING,
            protocol.PONG,
            protocol.RECOVERING,
            protocol.PAUSED,
            protocol.RESUMED,
            protocol.QUESTION,
            protocol.CONCLUDING,
        }
    )


def test_usage_shape():
    tally = {"promptTokens": 10, "completionTokens": 4, "cost": None}
    message = protocol.event(
        protocol.USAGE,
        DEBATE,
        5,
        perAgent={"bull": tally, "bear": tally, "moderator": tally},
        total=tally,
        estimated=False,
        budget=protocol.usage_budget(100, None),
    )
    _check_action(
        message, "DEBATE/USAGE", {"debateId", "perAgent", "total", "estimated", "budget", "seq"}
    )
    assert message["payload"]["budget"] == {"tokens": 100, "cost": None}
    assert protocol.usage_budget(None, None) is None
    with pytest.raises(ValueError, match="budget"):
        protocol.event_payload(protocol.USAGE, DEBATE, {"perAgent": {}, "total": tally})


def test_final_statuses_are_the_finished_debate_statuses():
    from debates.models import FINISHED_STATUSES

    assert set(protocol.FINAL_STATUSES) == {str(status) for status in FINISHED_STATUSES}


def test_event_requires_its_fields():
    with pytest.raises(ValueError, match="content"):
        protocol.event_payload(protocol.ARGUMENT_COMPLETE, DEBATE, {"agent": "bull", "turn": 1})


def test_normalise_type_accepts_short_names_and_refuses_others():
    assert protocol.normalise_type("TOKEN_RECEIVED") == protocol.TOKEN_RECEIVED
    assert protocol.normalise_type(protocol.TURN_CHANGE) == protocol.TURN_CHANGE
    with pytest.raises(ValueError, match="not a debate event"):
        protocol.normalise_type("DEBATE/CONNECTED")


@pytest.mark.parametrize("payload", [{}, {"status": "running"}, {"agent": "b", "x": '"seq":0}'}])
def test_event_text_parts_spell_the_event_around_its_seq(payload):
    ts = protocol.now_iso()
    head, tail = protocol.event_text_parts("DEBATE/STATUS_UPDATE", payload, ts)
    decoded = orjson.loads(head + "42" + tail)
    assert decoded == {
        "type": "DEBATE/STATUS_UPDATE",
        "payload": {**payload, "seq": 42},
        "timestamp": ts,
    }


@pytest.mark.parametrize(
    ("text", "binary", "reason"),
    [
        (None, b"\x00", "binary_frame"),
        ("x" * (protocol.MAX_CLIENT_FRAME_CHARS + 1), None, "too_large"),
        ("{not json", None, "invalid_json"),
        ("", None, "invalid_json"),
        ("[" * 1100 + "]" * 1100, None, "invalid_json"),  # deeper than orjson's limit
        ("[" * 2048 + "]" * 2048, None, "invalid_json"),  # as deep as the size limit allows
        ('{"a":' * 1100 + "1" + "}" * 1100, None, "too_large"),
        ("[" * 100_000 + "]" * 100_000, None, "too_large"),  # refused before any parsing
        ('{"a":' * 100_000 + "1" + "}" * 100_000, None, "too_large"),
        ("[1, 2]", None, "not_an_object"),
        ('"DEBATE/PING"', None, "not_an_object"),
        ('{"type": "DEBATE/START"}', None, "unknown_type"),
        ('{"type": {"nested": [[[]]]}}', None, "unknown_type"),
    ],
)
def test_bad_client_frames_are_typed(text, binary, reason):
    with pytest.raises(protocol.ClientFrameError) as info:
        protocol.decode_client_frame(text, binary)
    assert info.value.reason == reason


def test_client_ping_and_pong_are_accepted():
    assert protocol.decode_client_frame('{"type": "DEBATE/PING"}')["type"] == protocol.PING
    assert protocol.decode_client_frame('{"type": "DEBATE/PONG", "x": 1}')["type"] == protocol.PONG


def test_recovering_is_a_notice_without_seq_with_a_known_reason():
    message = protocol.recovering("d1", "runner_stopped")
    assert message["type"] == protocol.RECOVERING
    assert message["payload"] == {"debateId": "d1", "reason": "runner_stopped"}
    with pytest.raises(ValueError, match="reason"):
        protocol.recovering("d1", "whatever")
