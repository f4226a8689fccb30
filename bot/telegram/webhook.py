"""Webhook mode: Telegram POSTs each update to our listener, which checks a secret token made per start.

python-telegram-bot's Updater runs the listener (tornado) and answers 403 to a request without the right
`X-Telegram-Bot-Api-Secret-Token` header, before reading its body. Its own log lines about webhook
requests are made safe here: a refused request is one warning with neither the token it sent nor its
body, and the bodies of accepted updates (users' messages) are never logged either. Replicas behind one URL
share a configured secret instead (STORYBOT_WEBHOOK_SECRET), since each start's setWebhook replaces the last.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from bot.config import Settings
from bot.logs import redact

# python-telegram-bot logs webhook requests as "telegram.ext.Updater" (its webhook module says so).
PTB_WEBHOOK_LOGGER = "telegram.ext.Updater"
_REFUSALS = ("Request did not include the secret token", "Request had the wrong secret token")
_BODIES = ("Webhook received data", "Something went wrong processing the data received from Telegram")
REFUSED = "refused a webhook request without the right secret token (403); its body was not read"
REFUSED_NOT_JSON = (
    "refused a webhook request that is not JSON, as every Telegram update is (403); its body was not read"
)


def new_secret_token() -> str:
    """A fresh random secret for setWebhook (43 characters of A-Za-z0-9_-, as Telegram allows), never logged."""
    secret = secrets.token_urlsafe(32)
    redact(secret)
    return secret


def webhook_secret(settings: Settings) -> str:
    """The configured shared secret (replicas), or else a fresh random one; either way kept out of logs."""
    if settings.webhook_secret is None:
        return new_secret_token()
    secret = settings.webhook_secret.get_secret_value()
    redact(secret)
    return secret


def webhook_path(url: str) -> str:
    """The path the listener serves: the public URL's, so a reverse proxy can pass requests on unchanged."""
    return urlsplit(url).path.rstrip("/") or "/"


class WebhookLogFilter(logging.Filter):
    """PTB's webhook log lines without secrets or bodies; a refused request becomes a warning.

    PTB logs a refusal at DEBUG, with the wrong token it was sent. A refusal is worth a warning (someone
    is posting to the bot's URL), so the logger is opened to DEBUG and this filter keeps what the level
    configured above it ("telegram.ext", usually the root's) lets through, plus the refusals.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.msg if isinstance(record.msg, str) else ""
        if text.startswith(_REFUSALS):
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.msg, record.args = REFUSED, None
        elif text.startswith(_BODIES):
            record.msg, record.args = text.split(".")[0].split(":")[0] + " (the body is not logged)", None
        elif record.exc_info and getattr(record.exc_info[1], "status_code", None) == 403:
            if getattr(record.exc_info[1], "reason", None) is None:
                # PTB refuses a request that is not JSON before it looks for the secret, and says nothing.
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
                record.msg, record.args = REFUSED_NOT_JSON, None
            # The refusal's traceback (tornado's HTTPError) says no more than its warning.
            record.exc_info, record.exc_text = None, None
        return record.levelno >= logging.getLogger(PTB_WEBHOOK_LOGGER.rpartition(".")[0]).getEffectiveLevel()


def guard_webhook_logs() -> None:
    """Install the filter on PTB's webhook logger, once per process."""
    logger = logging.getLogger(PTB_WEBHOOK_LOGGER)
    if not any(isinstance(f, WebhookLogFilter) for f in logger.filters):
        logger.addFilter(WebhookLogFilter())
    logger.setLevel(logging.DEBUG)
