"""Webhook mode end to end: the loopback Bot API POSTs updates to the bot's listener, as Telegram does.

One Application (in webhook mode) and one service for the whole module; each test uses its own chat.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from bot.config import Settings
from bot.devtools.loopback_api import LoopbackBotAPI
from bot.service import StorybotService
from bot.telegram.app import build_application, webhook
from bot.telegram.webhook import (
    REFUSED,
    REFUSED_NOT_JSON,
    WebhookLogFilter,
    new_secret_token,
    webhook_path,
    webhook_secret,
)

from .conftest import ROOT, make_settings
from .helpers import TOKEN, bot_process_env

# The async tests share the module's event loop, where the one bot runs.
on_the_bots_loop = pytest.mark.asyncio(loop_scope="module")


@dataclass
class WebhookBot:
    api: LoopbackBotAPI
    settings: Settings
    url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory, seed_service: StorybotService) -> AsyncIterator[WebhookBot]:
    """The bot in webhook mode on a free port, its webhook set on the loopback Bot API."""
    api = LoopbackBotAPI(TOKEN)
    await api.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/storybot-hook"
    settings = make_settings(
        tmp_path_factory.mktemp("webhook"), telegram_bot_token=TOKEN, telegram_api_url=api.base_url, webhook_url=url
    )
    application = build_application(settings, seed_service.with_settings(settings))
    try:
        async with webhook(application, url, "127.0.0.1", port, new_secret_token()):
            yield WebhookBot(api, settings, url)
    finally:
        await api.stop()


@on_the_bots_loop
async def test_set_webhook_gives_the_url_and_a_random_secret(bot: WebhookBot) -> None:
    calls = bot.api.calls_to("setWebhook")
    assert len(calls) == 1 and calls[0].params["url"] == bot.url
    secret = calls[0].params["secret_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,256}", secret)  # what Telegram accepts
    assert secret != new_secret_token()  # made per start, not a constant
    assert not bot.api.calls_to("getUpdates") and not bot.api.calls_to("deleteWebhook")


@on_the_bots_loop
async def test_an_update_posted_with_the_secret_is_answered(bot: WebhookBot) -> None:
    chat = 701
    question_id = await bot.api.send_text("What did Biden warn?", chat_id=chat, user_id=chat)
    assert bot.api.webhook_statuses[-1] == 200
    reply = (await bot.api.wait_for("sendMessage", 1, chat_id=chat))[0].params
    assert reply["reply_parameters"]["message_id"] == question_id
    assert "sanctions like" in reply["text"]
    # Buttons work over the webhook too (a callback query is just another update).
    await bot.api.press(max(bot.api.messages), "context", user_id=chat)
    assert "In context" in (await bot.api.wait_for("editMessageText", 1, chat_id=chat))[0].params["text"]


@on_the_bots_loop
async def test_a_post_without_the_right_secret_gets_403_and_no_reply(bot: WebhookBot, caplog) -> None:
    chat = 702
    forged = "a-wrong-secret-token-that-must-not-be-logged"
    with caplog.at_level(logging.DEBUG):  # as a developer chasing a problem would run it
        missing = await bot.api.post_to_webhook(bot.api.text_update("Who wrote body-one?", chat, chat), None)
        wrong = await bot.api.post_to_webhook(bot.api.text_update("Who wrote body-two?", chat, chat), forged)
        assert (missing, wrong) == (403, 403)
        async with httpx.AsyncClient() as client:  # a stray form post, not a Telegram update
            stray = await client.post(bot.url, data={"text": "body-three"})
        assert stray.status_code == 403
        # The same chat's next genuine update is answered, and it is the only reply the chat gets.
        await bot.api.send_text("Who did Putin call later on Tuesday?", chat_id=chat, user_id=chat)
        replies = await bot.api.wait_for("sendMessage", 1, chat_id=chat)
    assert len(replies) == 1 and "Macron" in replies[0].params["text"]
    refusals = [r for r in caplog.records if r.getMessage() == REFUSED]
    assert len(refusals) == 2 and all(r.levelno == logging.WARNING for r in refusals)
    assert [r.levelno for r in caplog.records if r.getMessage() == REFUSED_NOT_JSON] == [logging.WARNING]
    logged = caplog.text
    secret = bot.api.calls_to("setWebhook")[0].params["secret_token"]
    assert forged not in logged and secret not in logged
    assert (
        "body-one" not in logged and "body-two" not in logged and "body-three" not in logged
    )  # the refused bodies were never read
    # PTB's "Processing update ..." (DEBUG) shows an accepted update; its webhook lines never show the body.
    received = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Webhook received")]
    assert received and all("Putin" not in line for line in received)


@on_the_bots_loop
async def test_storybot_telegram_webhook_as_a_process(tmp_path) -> None:
    # `storybot telegram --webhook URL` itself, as one of several replicas sharing a secret: setWebhook
    # with that secret, an answer, a 403, and Ctrl-C exits 130.
    shared_secret = "replicas-share-this-secret_0123456789"
    api = LoopbackBotAPI(TOKEN)
    await api.start()
    settings = make_settings(tmp_path)
    port = free_port()
    env = bot_process_env(
        settings,
        api.base_url,
        STORYBOT_WEBHOOK_PORT=str(port),
        STORYBOT_WEBHOOK_SECRET=shared_secret,
        STORYBOT_LOG_LEVEL="DEBUG",  # PTB logs setWebhook's parameters, the secret among them, at DEBUG
    )
    url = f"http://127.0.0.1:{port}/storybot"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "telegram", "--webhook", url, env=env, cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert (await api.wait_for("setWebhook", timeout=180))[0].params["secret_token"] == shared_secret
        await api.send_text("What did Biden warn?")  # delivered once the listener is up
        assert "sanctions like" in (await api.wait_for("sendMessage", timeout=60))[0].params["text"]
        assert await api.post_to_webhook(api.text_update("Who wrote body-three?"), "wrong") == 403
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
        await api.stop()
    log = stderr.decode()
    assert process.returncode == 130, log
    assert f"updates by webhook at {url}" in log and REFUSED in log
    assert shared_secret not in log and "body-three" not in log and TOKEN.split(":")[1] not in log
    assert "Traceback" not in log and "never awaited" not in log  # a refusal is no error
    assert "'secret_token': '[REDACTED]'" in log  # PTB's DEBUG line of the setWebhook call, scrubbed


def test_the_secret_is_random_per_start_unless_replicas_share_one(tmp_path) -> None:
    assert webhook_secret(make_settings(tmp_path)) != webhook_secret(make_settings(tmp_path))
    shared = make_settings(tmp_path, webhook_secret="shared-by-replicas")
    assert webhook_secret(shared) == webhook_secret(shared) == "shared-by-replicas"
    assert "shared-by-replicas" not in repr(shared)


@pytest.mark.parametrize("secret", ["has spaces", "ünïcode", "x" * 257])
def test_a_secret_telegram_would_refuse_is_a_clear_settings_error(tmp_path, secret: str) -> None:
    with pytest.raises(ValidationError, match="A-Z, a-z, 0-9, _ and -"):
        make_settings(tmp_path, webhook_secret=secret)


def test_the_log_filter_drops_secrets_and_bodies_and_keeps_the_level() -> None:
    def record(level: int, message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("telegram.ext.Updater", level, __file__, 1, message, args, None)

    log_filter = WebhookLogFilter()
    refused = record(logging.DEBUG, "Request had the wrong secret token: %s", "s3cr3t")
    assert log_filter.filter(refused) and refused.levelno == logging.WARNING and "s3cr3t" not in refused.getMessage()
    body = record(
        logging.CRITICAL,
        "Something went wrong processing the data received from Telegram. Received data was: %r",
        {"text": "private"},
    )
    assert log_filter.filter(body) and "private" not in body.getMessage()
    received = record(logging.DEBUG, "Webhook received data: %s", '{"text": "private"}')
    log_filter.filter(received)
    assert received.getMessage() == "Webhook received data (the body is not logged)"
    # Below the configured level (set here: an earlier test of this worker may have logged at DEBUG).
    ptb_logger = logging.getLogger("telegram.ext")
    level = ptb_logger.level
    ptb_logger.setLevel(logging.INFO)
    try:
        assert not log_filter.filter(record(logging.DEBUG, "Webhook triggered"))
    finally:
        ptb_logger.setLevel(level)


def test_the_listener_serves_the_public_url_path() -> None:
    assert webhook_path("https://news.example/bots/storybot/") == "/bots/storybot"
    assert webhook_path("https://bot.example") == "/"


def test_webhook_url_must_be_https_except_on_this_machine(tmp_path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="https"):
        make_settings(tmp_path, webhook_url="http://bot.example/hook")
    assert make_settings(tmp_path, webhook_url="").webhook_url is None
    assert make_settings(tmp_path, webhook_url="https://bot.example/hook").webhook_port == 8443


def test_a_webhook_url_telegram_cannot_reach_is_one_line_and_exit_code_2(tmp_path, cli) -> None:
    result = cli(["telegram", "--webhook", "http://bot.example/hook"], make_settings(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "storybot: --webhook http://bot.example/hook: must be an https:// URL (http:// only for 127.0.0.1 or localhost)"
    )
