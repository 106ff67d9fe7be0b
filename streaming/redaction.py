"""Keep tokens out of logs: redact() and RedactTokenFilter (the access log: streaming.server).

Two rules: the value of any credential-named parameter (``token``, ``access_token``,
``refresh``, ``jwt``, a share link's ``share``, ``share_token``, ``X-Share-Token``, ...:
``name=VALUE`` in a query string, a form or a message), and any
JWT-shaped string wherever it stands (three base64url segments, the first starting ``eyJ``:
a path, a JSON body, an exception message).
"""

import logging
import re

_PARAM_RE = re.compile(
    r"((?:^|[?&;\s\"',{(])(?:access_?token|refresh_?token|id_?token|token|jwt|access|refresh|"
    r"password|api_?key|secret|share|share_?token|x-share-token)\"?\s*[=:]\s*\"?)"
    r"[^&\s\"',;})]+",
    re.IGNORECASE,
)
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HINTS = ("token", "jwt", "access", "refresh", "password", "api", "secret", "eyj", "share")
# A share token mistakenly put in the share page's path (/shared/TOKEN instead of /shared/#TOKEN).
_SHARED_PATH_RE = re.compile(r"((?:^|[\s\"'])/shared/)[^/?#\s\"']+")
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """The text with credential parameters' values and JWT-shaped strings replaced."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    text = _JWT_RE.sub(REDACTED, text)
    text = _SHARED_PATH_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return _PARAM_RE.sub(lambda m: m.group(1) + REDACTED, text)


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
