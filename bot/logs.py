"""Logging set-up: one format for every front end, and secrets scrubbed from every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")


class RedactingFilter(logging.Filter):
    """Replaces secrets (and anything shaped like a Telegram bot token) in the rendered message.

    httpx logs full request URLs at INFO, and Telegram puts the token in the URL path.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return _BOT_TOKEN.sub("[REDACTED]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.scrub(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


def configure_logging(level: str, secrets: Iterable[str] = ()) -> RedactingFilter:
    """Log to stderr at `level`; every handler scrubs secrets, including third-party loggers' lines."""
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    handler.setLevel(level)  # some libraries set their own loggers to DEBUG
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Below DEBUG these libraries are chatty without helping a user; keep them at WARNING unless asked.
    if level != "DEBUG":
        for noisy in ("httpx", "httpcore", "sentence_transformers", "transformers", "urllib3", "filelock"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return redactor


def redact(secret: str) -> None:
    """Scrub one more secret (one made at run time, like the webhook's secret token) from every log line."""
    for handler in logging.getLogger().handlers:
        for log_filter in handler.filters:
            if isinstance(log_filter, RedactingFilter) and secret and secret not in log_filter.secrets:
                log_filter.secrets.append(secret)
