"""Keep tokens out of logs: redact() and RedactTokenFilter (the access log: streaming.server)."""

import logging
import re

_TOKEN_RE = re.compile(r"((?:^|[?&\s\"'])(?:access_)?token=)[^&\s\"']+", re.IGNORECASE)
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """The text with every ``token=VALUE`` replaced by ``token=[REDACTED]``."""
    if "token=" not in text.lower():
        return text
    return _TOKEN_RE.sub(lambda m: m.group(1) + REDACTED, text)


class RedactTokenFilter(logging.Filter):
    """Rewrite each record's message (and traceback) with tokens redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logged as is
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
