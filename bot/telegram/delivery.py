"""Getting replies to Telegram: pacing, one retry layer, and HTML split to the message limit.

Pacing is python-telegram-bot's AIORateLimiter (Telegram's 30 messages a second, 20 a minute per
group), told never to retry. Retrying is done here, once, for every Bot API call the bot makes: flood
waits (RetryAfter) and network errors (timeouts, 5xx), whether or not the limiter is installed. PTB's
limiter can only retry RetryAfter; keeping its retries as well would make two layers that multiply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

from bot.telegram.format import TELEGRAM_MESSAGE_LIMIT, split_html

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 4
T = TypeVar("T")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class MessageRateLimiter(AIORateLimiter):
    """PTB's pacing for Telegram's message limits, minus chat actions, and without retries of its own.

    Telegram's limits are on messages; a "typing" action is not one, and counting it would halve the
    answers a busy bot can send per second.
    """

    def __init__(self) -> None:
        super().__init__(max_retries=0)  # with_retries() below is the one retry layer
        # With no retries, PTB logs every flood wait as an error with a traceback; with_retries logs it once.
        logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Any,
    ) -> Any:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Run a Bot API call, retrying network errors and flood waits; other errors propagate."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await call()
        except RetryAfter as error:
            if attempt == SEND_ATTEMPTS:
                raise
            delay = error.retry_after
            seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
            log.warning("Telegram asked us to wait %.0fs (flood control); retrying", seconds)
            await asyncio.sleep(seconds)
        except NetworkError as error:
            if isinstance(error, BadRequest) or attempt == SEND_ATTEMPTS:
                raise
            log.warning("network error talking to Telegram (%s); retry %d", error, attempt)
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


async def send_html(
    message: Message, text: str, markup: InlineKeyboardMarkup | None = None, quote: bool = True
) -> list[Message]:
    """Reply with HTML split to Telegram's limit; the buttons go under the last part."""
    parts = split_html(text, TELEGRAM_MESSAGE_LIMIT)
    sent = []
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        sent.append(
            await with_retries(
                lambda part=part, last=last: message.reply_html(  # type: ignore[misc]
                    part, do_quote=quote, reply_markup=markup if last else None, link_preview_options=NO_PREVIEW
                )
            )
        )
    return sent


async def reply_text(message: Message, text: str) -> None:
    """A one-line plain reply (hints, refusals), retried like every other send."""
    await with_retries(lambda: message.reply_text(text))


async def edit_html(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace a message's text and buttons (none: no buttons); "not modified" (a double tap) is not an error."""
    try:
        await with_retries(
            lambda: message.edit_text(
                text, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=NO_PREVIEW
            )
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


async def edit_markup(message: Message, markup: InlineKeyboardMarkup) -> None:
    """Replace only a message's buttons; "not modified" is not an error."""
    try:
        await with_retries(lambda: message.edit_reply_markup(reply_markup=markup))
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise
