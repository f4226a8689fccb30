"""Chat state stores and the order of a chat's updates, in one process: the real Application polls the loopback
Bot API over HTTP, with its state in the JSON file or in a real Redis (started once per session, conftest.py).

The two-process tests (replicas behind a balancer) are in test_telegram_replicas.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from bot.answering.conversation import Session
from bot.config import Settings
from bot.devtools.loopback_api import LoopbackBotAPI
from bot.errors import ConfigError
from bot.telegram import state
from bot.telegram.app import build_application, check_store, polling
from bot.telegram.format import visible_text
from bot.telegram.state import QUEUE_SECONDS, RedisStore, safe_redis_url, take_turn

from .conftest import make_settings
from .helpers import TOKEN, free_port

STORES = ["json", "redis"]
# The conversation: the follow-up is answered only with the first question's turn behind it.
FIRST, FOLLOW_UP, FOLLOWED = "Who did Putin call first?", "What did he tell him?", "negotiations with the United States"


def bot_settings(
    tmp_path: Path, api: LoopbackBotAPI, store: str, request: pytest.FixtureRequest, **overrides
) -> Settings:
    """Settings for a bot on the loopback API whose state lives in `store` ("json" or "redis")."""
    if store == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    return make_settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.base_url, **overrides)


def stored_chat(settings: Settings, chat_id: int) -> dict:
    """What the store holds for a chat once the bot has stopped: the JSON file's entry or the Redis key's."""
    if settings.redis_url is None:
        return json.loads((settings.data_dir / state.STATE_FILE).read_text())["chat_data"].get(str(chat_id), {})
    bot_id = TOKEN.partition(":")[0]
    with redis.Redis.from_url(settings.redis_url.get_secret_value()) as client:
        raw = client.get(f"storybot:{bot_id}:chat:{chat_id}")
        if raw is None:
            return {}
        assert client.ttl(f"storybot:{bot_id}:chat:{chat_id}") > 0  # every key expires
    value = json.loads(raw)
    assert value["storybot"] == state.STATE_VERSION
    return value["chat"]


@pytest.mark.parametrize("store", STORES)
async def test_two_messages_of_one_chat_sent_together_are_answered_in_order_and_both_kept(
    store, tmp_path, api, seed_service, request, monkeypatch
) -> None:
    # concurrent_updates(True) ran both at once: each loaded the old turns, the last write won.
    settings = bot_settings(tmp_path, api, store, request)
    service = seed_service.with_settings(settings)
    second_began = threading.Event()
    overlapped: list[bool] = []
    real_ask = service.ask
    asking: list[str] = []  # the chat's questions, not the example questions of /start

    def ask(question: str, session: Session | None = None, story: str | None = None):
        if question in asking[:1]:  # the first: had the second begun meanwhile, the chat would not be in order
            overlapped.append(second_began.wait(1.0))
        elif question in asking[1:]:
            second_began.set()
        return real_ask(question, session, story)

    monkeypatch.setattr(service, "ask", ask)
    async with polling(build_application(settings, service)):
        asking += ["What did Biden warn?", "Who did Putin call later on Tuesday?"]
        await api.send_text("What did Biden warn?")
        await api.send_text("Who did Putin call later on Tuesday?")
        first, second = await api.wait_for("sendMessage", 2)
    assert overlapped == [False]
    assert "sanctions like" in first.params["text"] and "Macron" in second.params["text"]
    turns = [turn["question"] for turn in stored_chat(settings, 111)["turns"]]
    assert turns == ["What did Biden warn?", "Who did Putin call later on Tuesday?"]


async def test_other_chats_are_not_held_up_by_one_chats_order(
    tmp_path, api, seed_service, request, monkeypatch
) -> None:
    settings = bot_settings(tmp_path, api, "redis", request)
    service = seed_service.with_settings(settings)
    other_asked = threading.Event()
    waited: list[bool] = []
    real_ask = service.ask
    armed: list[bool] = []  # not for the example questions of /start

    def ask(question: str, session: Session | None = None, story: str | None = None):
        if armed and "Biden" in question:
            waited.append(other_asked.wait(10))  # the other chat's question is asked meanwhile
        elif armed and "Niinisto" in question:
            other_asked.set()
        return real_ask(question, session, story)

    monkeypatch.setattr(service, "ask", ask)
    async with polling(build_application(settings, service)):
        armed.append(True)
        await api.send_text("What did Biden warn?", chat_id=601, user_id=601)
        await api.send_text("Who is Sauli Niinisto?", chat_id=602, user_id=602)
        await api.wait_for("sendMessage", 1, chat_id=601)
    assert waited == [True]


async def test_a_send_that_times_out_after_the_bot_api_accepted_it_is_one_message(
    tmp_path, api, seed_service, caplog
) -> None:
    # with_retries resent a timed-out sendMessage: Telegram had it already, and the user got it twice.
    settings = bot_settings(tmp_path, api, "json", None)  # type: ignore[arg-type]
    application = build_application(settings, seed_service.with_settings(settings), read_timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="bot.telegram.delivery"):
        async with polling(application):
            api.failures["sendMessage"] = ["slow_answer"]  # done at once, answered after the bot gave up
            await api.send_text("What did Biden warn?")
            await api.send_text("Who did Putin call later on Tuesday?")
            # One chat, one order: the second is answered after the first update ended, resends and all.
            replies = await api.wait_for("sendMessage", 2)
            assert len(api.calls_to("sendMessage")) == 2
    assert "sanctions like" in replies[0].params["text"] and "Macron" in replies[1].params["text"]
    assert [r.getMessage() for r in caplog.records if "not sent again" in r.getMessage()]


async def test_a_send_that_never_reached_the_bot_api_is_sent_again(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api, "json", None)  # type: ignore[arg-type]
    async with polling(build_application(settings, seed_service.with_settings(settings))):
        api.failures["sendMessage"] = ["server_error"]  # Telegram answered an error: nothing was sent
        await api.send_text("What did Biden warn?")
        reply = (await api.wait_for("sendMessage", 2))[1]
    assert "sanctions like" in reply.params["text"] and len(api.calls_to("sendMessage")) == 2


async def test_an_example_button_asks_what_its_label_says_after_the_examples_change(
    tmp_path, api, seed_service
) -> None:
    # ask:{i} indexed bot_data["examples"], rebuilt when the corpus changes: the button asked another question.
    settings = bot_settings(tmp_path, api, "json", None)  # type: ignore[arg-type]
    application = build_application(settings, seed_service.with_settings(settings))
    async with polling(application):
        await api.send_text("/start")
        greeting = (await api.wait_for("sendMessage"))[0].params
        greeting_id = max(api.messages)
        label, data = (lambda b: (b["text"], b["callback_data"]))(greeting["reply_markup"]["inline_keyboard"][0][0])
        application.bot_data["examples"] = ["Who is Sauli Niinisto?", "Where was the cover photo taken?"]
        await api.press(greeting_id, data)
        asked = visible_text((await api.wait_for("sendMessage", 2))[1].params["text"])
        assert asked.startswith(f"❓ {label}")
        # A button the greeting never had, and one of no kind this version knows: a notice, no question.
        await api.press(greeting_id, "ask:7")
        await api.press(greeting_id, "zzz-from-an-old-version")
        notices = [c.params.get("text", "") for c in await api.wait_for("answerCallbackQuery", 3)][1:]
    assert "too old" in notices[0] and "no longer works" in notices[1]
    assert len(api.calls_to("sendMessage")) == 2


@pytest.mark.parametrize("store", STORES)
async def test_a_group_that_becomes_a_supergroup_keeps_its_conversation_and_its_place(
    store, tmp_path, api, seed_service, request, caplog
) -> None:
    group, supergroup = -4001, -1004001
    settings = bot_settings(tmp_path, api, store, request, allowed_chat_ids=[group])
    with caplog.at_level(logging.WARNING, logger="bot.telegram.handlers"):
        async with polling(build_application(settings, seed_service.with_settings(settings))):
            await api.send_text(f"/ask {FIRST}", chat_id=group, chat_type="group")
            assert "Sauli Niinisto" in (await api.wait_for("sendMessage", 1, chat_id=group))[0].params["text"]
            await api.migrate_to_supergroup(group, supergroup)
            # "he" is Putin, from the group's conversation; the new id is let in though only the old is listed.
            await api.send_text(f"/ask {FOLLOW_UP}", chat_id=supergroup, chat_type="supergroup")
            follow = (await api.wait_for("sendMessage", 1, chat_id=supergroup))[0].params["text"]
    assert FOLLOWED in visible_text(follow)  # as the user reads it: the question's words are in bold
    assert stored_chat(settings, group) == {}
    assert stored_chat(settings, supergroup)["migrated_from"] == group
    assert any(f"add {supergroup} to STORYBOT_ALLOWED_CHAT_IDS" in r.getMessage() for r in caplog.records)


def test_the_follow_up_needs_the_conversation(seed_service) -> None:
    # So that the tests of a moved or shared conversation can fail: without its turns "he" is nobody.
    alone = seed_service.ask(FOLLOW_UP)
    assert not alone.answered and "Who do you mean by 'he'?" in (alone.shown.reason or "")


# -- Redis itself ------------------------------------------------------------------------------------


async def test_the_redis_token_bucket_is_take_turn(redis_url) -> None:
    store = RedisStore(redis_url, "42")
    user: dict = {}
    try:
        for now in (100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 104.5, 1000.0):
            expected = take_turn(user, per_minute=6, burst=3, now=now)
            admitted, wait = await store.bucket("storybot:42:user:9:bucket", 0.1, 3, QUEUE_SECONDS, 60, now=now)
            assert admitted == expected.admitted
            assert (wait if admitted else int(-(-wait // 1))) == pytest.approx(expected.wait)
        # The server's clock, which every replica shares, when no time is given.
        admitted, wait = await store.bucket("storybot:42:user:10:bucket", 0.1, 3, QUEUE_SECONDS, 60)
        assert admitted and wait == 0
    finally:
        await store.close()


async def test_replicas_keep_telegrams_message_limits_together(redis_url) -> None:
    replicas = [RedisStore(redis_url, "42"), RedisStore(redis_url, "42")]
    try:
        # 90 messages at once, half from each: 30 a second for the bot, so the last waits about 2 s (with a
        # bucket each, 45 at 30 a second would wait 0.5 s).
        waits = sorted(await asyncio.gather(*(replica.send_wait(111) for replica in replicas * 45)))
        assert sum(wait < 0.1 for wait in waits) <= 33 and 1.8 < waits[-1] <= 2.0
        # A group: 20 a minute, so the 21st message to it waits about 3 s (another bot: its own 30 a second).
        replicas += [RedisStore(redis_url, "43"), RedisStore(redis_url, "43")]
        group = sorted(await asyncio.gather(*(replica.send_wait(-100777) for replica in replicas[2:] * 11)))
        assert group[19] < 2.1 and group[20] > 2.5
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_chat_lock_holds_across_replicas_and_frees_itself_when_its_holder_dies(redis_url, monkeypatch) -> None:
    monkeypatch.setattr(state, "CHAT_LOCK_SECONDS", 0.3)
    a, b = RedisStore(redis_url, "42"), RedisStore(redis_url, "42")
    order: list[str] = []

    async def b_enters() -> None:
        async with b.chat_lock(7):
            order.append("b")

    try:
        async with a.chat_lock(7):
            waiting = asyncio.create_task(b_enters())
            await asyncio.sleep(1.0)  # three timeouts long: a living holder keeps extending its lock
            order.append("a")
        await waiting
        assert order == ["a", "b"]
        # A replica killed while holding a chat's lock extends it no more: it times out.
        await a.client.set("storybot:42:lock:chat:7", "a-dead-replica", px=300)
        started = time.monotonic()
        async with b.chat_lock(7):
            waited = time.monotonic() - started
        assert 0.1 < waited < 2.0
    finally:
        await a.close()
        await b.close()


async def test_redis_out_of_reach_is_an_error_line_retries_and_a_message_not_silence(
    tmp_path, api, seed_service, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(state, "REDIS_RETRY_DELAYS", (0.05, 0.05))
    url = f"redis://:hunter2-password@127.0.0.1:{free_port()}/0"  # nobody listens there
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.base_url, redis_url=url)
    with caplog.at_level(logging.ERROR):
        async with polling(build_application(settings, seed_service.with_settings(settings))):
            await api.send_text("What did Biden warn?")
            told = (await api.wait_for("sendMessage"))[0].params["text"]
            await api.send_text("Who did Putin call later on Tuesday?")  # still running, still saying so
            await api.wait_for("sendMessage", 2)
    assert "can't reach my memory" in told and "ask again" in told
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        "cannot take a chat's lock in Redis at redis://:***@127.0.0.1" in line and "retry 1 of 2" in line
        for line in lines
    )
    assert any("gave up" in line for line in lines)
    assert "hunter2" not in caplog.text and "Traceback" not in caplog.text


def test_a_bad_redis_url_is_a_clear_settings_error_and_its_password_stays_out(tmp_path) -> None:
    for bad in ("http://127.0.0.1:6379/0", "redis://", "redis://127.0.0.1:port/0", "redis://127.0.0.1:6379/zero"):
        with pytest.raises(ValidationError, match="redis://127.0.0.1:6379/0"):
            make_settings(tmp_path, redis_url=bad)
    settings = make_settings(tmp_path, redis_url="redis://:s3cret-pw@127.0.0.1:6379/2")
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" in settings.secret_values()
    assert safe_redis_url("redis://user:s3cret-pw@127.0.0.1:6379/2") == "redis://user:***@127.0.0.1:6379/2"
    assert make_settings(tmp_path, redis_url="").redis_url is None  # copied empty from .env.example


async def test_a_replica_that_cannot_reach_redis_at_start_says_so_in_one_line(monkeypatch) -> None:
    monkeypatch.setattr(state, "START_RETRY_DELAYS", (0.05,))
    port = free_port()
    with pytest.raises(ConfigError) as raised:
        await check_store(RedisStore(f"redis://:pw-not-shown@127.0.0.1:{port}/0", "42"))
    assert str(raised.value) == (
        f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (STORYBOT_REDIS_URL); is Redis running?"
    )
