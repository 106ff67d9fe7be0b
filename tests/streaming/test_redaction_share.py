"""Share tokens never reach a log line, wherever they stand."""

import logging
import secrets

import pytest

from streaming.redaction import RedactTokenFilter, redact

SHARE = secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    "line",
    [
        f"WSCONNECT /ws/debate/1/?share={SHARE}&replay=1&speed=10 200",
        f"GET /ws/debate/1/?replay=1&share={SHARE}",
        f"X-Share-Token: {SHARE}",
        f'{{"shareToken": "{SHARE}"}}',
        f"share_token={SHARE}",
        f"Not Found: /shared/{SHARE}",
        f'"GET /shared/{SHARE}/ HTTP/1.1" 404',
    ],
)
def test_share_tokens_are_redacted(line):
    redacted = redact(line)
    assert SHARE not in redacted
    assert "[REDACTED]" in redacted


def test_what_is_not_a_token_stays():
    assert redact("/ws/debate/1/?replay=1&speed=10&lastSeq=4") == (
        "/ws/debate/1/?replay=1&speed=10&lastSeq=4"
    )
    assert redact("GET /shared/ 200") == "GET /shared/ 200"
    assert redact("Unauthorized: /api/shared/debate/") == "Unauthorized: /api/shared/debate/"


def test_the_log_filter_redacts_share_tokens_in_arguments():
    record = logging.LogRecord(
        "daphne", logging.INFO, __file__, 1, "connect %s", (f"?share={SHARE}",), None
    )
    assert RedactTokenFilter().filter(record)
    assert SHARE not in record.getMessage()
