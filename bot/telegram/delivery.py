"""Getting replies to Telegram: pacing, flood waits, one retry layer for network errors, HTML split to the limit.

Pacing and flood waits are python-telegram-bot's AIORateLimiter: Telegram's 30 messages a second and 20
a minute per group, and on a flood wait (RetryAfter) a pause of every send before it retries, up to
FLOOD_RETRIES times. With replicas the limits are shared through the chat state store (state.py), so
that two processes together keep them. Network errors are retried here, once per layer: a call that
changes nothing when repeated (an edit, answering a button, typing) always; a new message only when it
cannot have reached Telegram (no connection, or Telegram answered with an error). A send that timed out
may have been accepted, so it is never sent again: one message lost is better than the same one twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import AIORateLimiter

from bot.telegram.format import TELEGRAM_MESSAGE_LIMIT, split_html

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 4
FLOOD_RETRIES = 3  # RetryAfter: PTB's limiter pauses sending for the time Telegram asks, this many times
T = TypeVar("T")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# Errors of a request that never reached the server (httpx's), so that sending it again cannot double it.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Pace = Callable[[int | str], Awaitable[float]]  # seconds a message to this chat must wait (shared limits)


class MessageRateLimiter(AIORateLimiter):
    """PTB's pacing for Telegram's message limits and its flood-wait retries, minus chat actions.

    Telegram's limits are on messages; a "typing" action is not one, and counting it would halve the
    answers a busy bot can send per second. With `pace` (replicas), the limits are the shared ones it
    reserves from, and PTB's own per-process limiters are off.
    """

    def __init__(self, pace: Pace | None = None, max_retries: int = FLOOD_RETRIES) -> None:
        if pace is None:
            super().__init__(max_retries=max_retries)
        else:
            super().__init__(overall_max_rate=0, group_max_rate=0, max_retries=max_retries)
        self.pace = pace

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
        chat_id = data.get("chat_id")
        if self.pace is not None and chat_id is not None:
            pace = self.pace

            async def paced(*call_args: Any, **call_kwargs: Any) -> Any:
                await asyncio.sleep(await pace(chat_id))  # each try, retries too, takes its place
                return await callback(*call_args, **call_kwargs)

            return await super().process_request(paced, args, kwargs, endpoint, data, rate_limit_args)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


def never_reached_telegram(error: NetworkError) -> bool:
    """True when the request cannot have been accepted: no connection was made, or Telegram answered an error.

    PTB raises a response's error (a 5xx) as a NetworkError of its own, and a transport's as one caused by
    httpx's exception: a timeout or a dropped connection after the request went out leaves it unknown.
    """
    cause = error.__cause__
    return cause is None or isinstance(cause, _NEVER_SENT)


async def with_retries(call: Callable[[], Awaitable[T]], resend: bool = True) -> T:
    """Run a Bot API call, retrying network errors; `resend=False` (a new message) only those that never reached it.

    Flood waits (RetryAfter) are retried by the rate limiter; other errors propagate.
    """
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await call()
        except NetworkError as error:
            if isinstance(error, BadRequest) or attempt == SEND_ATTEMPTS:
                raise
            if not resend and not never_reached_telegram(error):
                raise
            log.warning("network error talking to Telegram (%s); retry %d", error, attempt)
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


async def send_action(message: Message, action: str) -> None:
    """Show "typing…": worth a retry, never an error (the answer matters, not the hint)."""
    try:
        await with_retries(lambda: message.chat.send_action(action))
    except TelegramError as error:
        log.info("could not show %s in a chat (%s)", action, error)


async def _send_once(send: Callable[[], Awaitable[Message]]) -> Message | None:
    """A new message, sent at most once: None when it may or may not have reached Telegram."""
    try:
        return await with_retries(send, resend=False)
    except NetworkError as error:
        if isinstance(error, BadRequest):
            raise
        log.warning(
            "a reply may or may not have reached Telegram (%s: %s); not sent again, so that it cannot arrive twice",
            type(error).__name__,
            error,
        )
        return None


async def send_html(
    message: Message, text: str, markup: InlineKeyboardMarkup | None = None, quote: bool = True
) -> list[Message]:
    """Reply with HTML split to Telegram's limit, the buttons under the last part; the messages known sent."""
    parts = split_html(text, TELEGRAM_MESSAGE_LIMIT)
    sent = []
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        reply = await _send_once(
            lambda part=part, last=last: message.reply_html(  # type: ignore[misc]
                part, do_quote=quote, reply_markup=markup if last else None, link_preview_options=NO_PREVIEW
            )
        )
        if reply is None:  # the rest would follow a part that may be missing
            break
        sent.append(reply)
    return sent


async def reply_text(message: Message, text: str) -> None:
    """A one-line plain reply (hints, refusals), sent at most once like every other message."""
    await _send_once(lambda: message.reply_text(text))


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
