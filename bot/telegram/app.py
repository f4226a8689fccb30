"""The Telegram front end's Application: python-telegram-bot v22, long polling or webhook.

build_application() wires the handlers (handlers.py), the delivery (delivery.py) and the chat state with
its per-chat order (state.py: a JSON file, or Redis for replicas); run_bot() is `storybot telegram`;
polling() and webhook() run the bot inside a running event loop for the tests and the load benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import logging
import signal
from collections.abc import AsyncIterator

from telegram import Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import status
from bot.config import Settings
from bot.errors import ConfigError, StorybotError
from bot.feedback import FeedbackLog
from bot.service import StorybotService
from bot.telegram import handlers
from bot.telegram.delivery import MessageRateLimiter
from bot.telegram.inline import InlineCache
from bot.telegram.state import ChatOrder, ChatStore, StateUnavailable, open_store, retire_old_pickle
from bot.telegram.webhook import guard_webhook_logs, webhook_path, webhook_secret

log = logging.getLogger(__name__)

NO_TOKEN = "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in .env"


async def post_init(application: Application) -> None:
    """Register the commands and start watching the corpus (the examples are worked out at the first /start)."""
    await application.bot.set_my_commands(handlers.COMMANDS)
    service: StorybotService = application.bot_data["service"]
    seconds = service.settings.corpus_check_seconds
    if seconds > 0 and application.job_queue is not None:
        application.job_queue.run_repeating(check_corpus, interval=seconds, first=seconds, name="corpus watcher")


async def check_corpus(context: CallbackContext) -> None:
    """The corpus watcher's job: rebuild when corpus files changed, so answers never come from a stale index.

    A corpus that cannot be built is a log line (the old index keeps answering); anything else goes to the
    error handler, as every job's error does.
    """
    service: StorybotService = context.bot_data["service"]
    try:
        if await asyncio.to_thread(service.refresh_if_stale):
            context.bot_data.pop("examples", None)  # worked out anew at the next /start
            context.bot_data["inline_cache"].clear()  # answers may differ now
    except StorybotError as error:
        log.error("could not rebuild the index, still answering from the old one: %s", error)


def build_application(
    settings: Settings, service: StorybotService, flood_limits: bool = True, read_timeout: float | None = None
) -> Application:
    """The Application with every handler, the chat state (JSON file or Redis), per-chat order and pacing.

    `flood_limits=False` drops the pacing to Telegram's message limits (for measuring the bot alone);
    `read_timeout` overrides PTB's 5 s wait for a Bot API answer (tests of a slow answer).
    """
    if settings.telegram_bot_token is None:
        raise ConfigError(NO_TOKEN)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    retire_old_pickle(settings.data_dir)
    store = open_store(settings)
    order = ChatOrder(store)  # other chats at once, each chat's updates one at a time
    builder = ApplicationBuilder()
    if flood_limits:
        pace = store.send_wait if store.shared else None  # replicas keep Telegram's limits together
        builder = builder.rate_limiter(MessageRateLimiter(pace))  # type: ignore[arg-type]
    if read_timeout is not None:
        builder = builder.read_timeout(read_timeout)
    persistence = store.persistence()
    if persistence is not None:
        builder = builder.persistence(persistence)
    application = (
        builder.token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_api_url.replace("/bot", "/file/bot"))
        .concurrent_updates(order)
        .post_init(post_init)
        .build()
    )
    order.application = application
    application.bot_data["store"] = store
    application.bot_data["service"] = service
    application.bot_data["feedback"] = FeedbackLog(settings.data_dir)
    application.bot_data["inline_cache"] = InlineCache()

    messages, private, groups = filters.UpdateType.MESSAGE, filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    application.add_handler(TypeHandler(Update, handlers.allow_list_gate), group=-1)
    application.add_handler(CommandHandler("start", handlers.start))
    application.add_handler(CommandHandler("help", handlers.help_command))
    application.add_handler(CommandHandler("sources", handlers.sources))
    application.add_handler(CommandHandler("reset", handlers.reset))
    application.add_handler(CommandHandler("story", handlers.story_command))
    application.add_handler(CommandHandler("ask", handlers.ask_command))
    application.add_handler(MessageHandler(messages & filters.COMMAND, handlers.unknown_command))
    application.add_handler(MessageHandler(messages & private & filters.TEXT & ~filters.COMMAND, handlers.private_text))
    application.add_handler(MessageHandler(messages & groups & filters.TEXT & ~filters.COMMAND, handlers.group_text))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, handlers.chat_migrated))
    application.add_handler(MessageHandler(messages & private & ~filters.TEXT & ~filters.COMMAND, handlers.not_text))
    application.add_handler(CallbackQueryHandler(handlers.example_button, pattern=handlers.EXAMPLE_PATTERN))
    application.add_handler(CallbackQueryHandler(handlers.answer_button, pattern=handlers.ANSWER_PATTERN))
    application.add_handler(CallbackQueryHandler(handlers.turn_stories_page, pattern=handlers.PAGE_PATTERN))
    application.add_handler(CallbackQueryHandler(handlers.story_button_pressed, pattern=handlers.STORY_PATTERN))
    application.add_handler(CallbackQueryHandler(handlers.stale_button))  # whatever no pattern above took
    application.add_handler(InlineQueryHandler(handlers.inline_query))
    application.add_error_handler(handlers.error_handler)
    return application


@contextlib.asynccontextmanager
async def polling(application: Application, poll_timeout: int = 1) -> AsyncIterator[Application]:
    """Run long polling inside a running event loop (tests, the load benchmark), and stop it cleanly."""
    async with _running(application):
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout)
        yield application


@contextlib.asynccontextmanager
async def webhook(
    application: Application, url: str, listen: str, port: int, secret_token: str
) -> AsyncIterator[Application]:
    """Receive updates by webhook inside a running event loop (tests): setWebhook, then listen on listen:port."""
    guard_webhook_logs()
    async with _running(application):
        assert application.updater is not None
        await application.updater.start_webhook(
            listen=listen,
            port=port,
            url_path=webhook_path(url),
            webhook_url=url,
            secret_token=secret_token,
            allowed_updates=Update.ALL_TYPES,
        )
        yield application


@contextlib.asynccontextmanager
async def _running(application: Application) -> AsyncIterator[None]:
    """Start the Application as run_polling/run_webhook would; the caller starts the updates; stop it all."""
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    await application.start()
    try:
        yield
    finally:
        assert application.updater is not None
        if application.updater.running:
            await application.updater.stop()
        await application.stop()
        await application.shutdown()


async def check_token(settings: Settings, attempts: int = 4) -> str:
    """Ask the Bot API who we are: a wrong token is a ConfigError, an unreachable server is retried."""
    from telegram import Bot

    assert settings.telegram_bot_token is not None
    bot = Bot(settings.telegram_bot_token.get_secret_value(), base_url=settings.telegram_api_url)
    for attempt in range(1, attempts + 1):
        try:
            async with bot:
                return bot.username
        except InvalidToken:
            raise ConfigError(
                "Telegram rejected TELEGRAM_BOT_TOKEN (invalid or revoked): copy it again from @BotFather"
            ) from None
        except NetworkError as error:
            if attempt == attempts:
                raise ConfigError(
                    f"cannot reach the Telegram Bot API at {_safe_url(settings.telegram_api_url)} ({error})"
                ) from None
            log.warning("cannot reach the Bot API yet (%s); retrying", error)
            await asyncio.sleep(2 ** (attempt - 1))
    raise AssertionError("unreachable")


async def check_store(store: ChatStore) -> None:
    """Reach the chat state store before taking updates: one that cannot be reached is a ConfigError."""
    try:
        await store.start()
    except StateUnavailable:
        raise ConfigError(f"cannot reach {store.describe()} (STORYBOT_REDIS_URL); is Redis running?") from None
    finally:
        await store.close()


def _safe_url(url: str) -> str:
    return html.escape(url.split("?")[0])


def run_bot(settings: Settings) -> None:
    """`storybot telegram`: check the token, load the service, then poll (or take webhooks) until stopped.

    Ctrl-C stops the bot cleanly and is then raised again as KeyboardInterrupt, so the CLI exits 130.
    """
    if settings.telegram_bot_token is None:
        raise ConfigError(NO_TOKEN)
    username = asyncio.run(check_token(settings))
    asyncio.run(check_store(open_store(settings)))  # before the model loads: a wrong URL fails fast
    service = StorybotService.load(settings)
    application = build_application(settings, service)
    url = settings.webhook_url
    where = f"updates by webhook at {url}, listening on {settings.webhook_listen}:{settings.webhook_port}"
    status.show(f"storybot is running as @{username} ({where if url else 'long polling'}); press Ctrl-C to stop")
    interrupted = False

    def on_ctrl_c() -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt  # out of the event loop, where PTB catches it and shuts down cleanly

    # Ctrl-C is a callback of the event loop, run between other callbacks: a KeyboardInterrupt raised
    # wherever the signal lands (inside the webhook server, say) left the shutdown half done ("coroutine
    # 'Updater.stop' was never awaited"). PTB's own stop signals all end the same quiet way, so SIGINT is
    # kept out of them to tell Ctrl-C apart (exit code 130).
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # run_polling/run_webhook run on the current loop
    loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
    stop_signals = (signal.SIGTERM, signal.SIGABRT)
    try:
        if url:
            guard_webhook_logs()
            try:
                application.run_webhook(
                    listen=settings.webhook_listen,
                    port=settings.webhook_port,
                    url_path=webhook_path(url),
                    webhook_url=url,
                    secret_token=webhook_secret(settings),  # random per start unless replicas share one
                    allowed_updates=Update.ALL_TYPES,
                    stop_signals=stop_signals,
                )
            except OSError as error:
                if error.errno not in {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}:
                    raise
                raise ConfigError(
                    f"cannot listen for webhooks on {settings.webhook_listen}:{settings.webhook_port} "
                    f"({error.strerror}); set STORYBOT_WEBHOOK_LISTEN and STORYBOT_WEBHOOK_PORT"
                ) from None
        else:
            application.run_polling(allowed_updates=Update.ALL_TYPES, stop_signals=stop_signals)
    finally:
        asyncio.set_event_loop(None)  # PTB closed it
    if interrupted:
        raise KeyboardInterrupt
