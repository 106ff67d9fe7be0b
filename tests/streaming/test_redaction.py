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


@pytest.mark.parametrize(
    "line",
    [
        f"GET /api/debates/?jwt={SECRET}&page=2",
        f"GET /no-such-page/{SECRET}/ 404",
        f"Not Found: /api/x/{SECRET}",
        f'{{"refresh": "{SECRET}"}}',
        f"Bearer {SECRET}",
        f"/ws/debate/1/?access_token={SECRET}",
        f"refresh={SECRET}",
        f"token: {SECRET}",
    ],
)
def test_jwts_and_credential_parameters_are_redacted_anywhere(line):
    redacted = redact(line)
    assert SECRET not in redacted
    assert SECRET.split(".")[2] not in redacted
    assert "[REDACTED]" in redacted


def test_a_non_jwt_credential_parameter_is_redacted_by_name():
    assert redact("?jwt=opaque-value&page=2") == "?jwt=[REDACTED]&page=2"
    assert redact("password=hunter22&next=/x") == "password=[REDACTED]&next=/x"


def test_ordinary_lines_are_left_alone():
    for line in ["GET /api/debates/?page=2 200", "WSCONNECT /ws/debate/1/?lastSeq=3", "a.b.c"]:
        assert redact(line) == line


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
