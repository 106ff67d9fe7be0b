"""Tokens never reach a log line."""

import logging

import pytest

from streaming.redaction import RedactTokenFilter, redact
from streaming.server import access_log

SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def test_redact_query_strings():
    assert SECRET not in redact(f"GET /ws/debate/1/?token={SECRET}&lastSeq=3")
    assert "lastSeq=3" in redact(f"/ws/debate/1/?token={SECRET}&lastSeq=3")
    assert SECRET not in redact(f"WSCONNECT /ws/x/?lastSeq=1&TOKEN={SECRET} 200")
    assert redact("nothing here") == "nothing here"


def test_filter_rewrites_messages_args_and_tracebacks():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "path %s", (f"?token={SECRET}",), None
    )
    assert RedactTokenFilter().filter(record)
    assert SECRET not in record.getMessage()
    try:
        raise ValueError(f"bad ?token={SECRET}")
    except ValueError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "boom", None, (ValueError, exc, exc.__traceback__)
        )
    RedactTokenFilter().filter(record)
    assert SECRET not in logging.Formatter().format(record)


def test_settings_logging_redacts(caplog, capsys):
    logger = logging.getLogger("django.request")
    logger.warning("Not Found: /ws/debate/1/?token=%s", SECRET)
    captured = capsys.readouterr()
    assert SECRET not in captured.err + captured.out


@pytest.fixture
def access_log_patched():
    undo = access_log.PATCH.apply()
    yield
    undo()


def test_daphne_access_log_is_redacted(access_log_patched):
    import io

    from daphne.access import AccessLogGenerator

    stream = io.StringIO()
    AccessLogGenerator(stream)(
        "websocket", "connecting", {"client": ["127.0.0.1", 1], "path": f"/ws/?token={SECRET}"}
    )
    AccessLogGenerator(stream)(
        "http",
        "complete",
        {
            "client": ["127.0.0.1", 1],
            "path": f"/x?token={SECRET}",
            "method": "GET",
            "status": 200,
            "size": 1,
        },
    )
    assert SECRET not in stream.getvalue()
    assert "token=[REDACTED]" in stream.getvalue()
