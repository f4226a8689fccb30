"""A newsroom's bot end to end over HTTP: inline answers (and, with story keys, deep links and /story).

One Application (long polling against the loopback Bot API) over the seed article and the fixture
stories, with the real model, for the whole module; each test uses its own user and chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from telegram.ext import Application

from bot.devtools.loopback_api import LoopbackBotAPI
from bot.service import StorybotService
from bot.telegram.app import build_application, polling
from bot.telegram.inline import InlineQuestion, cache_key, read_inline_query

from .conftest import make_settings
from .helpers import TOKEN, assert_telegram_html

on_the_bots_loop = pytest.mark.asyncio(loop_scope="module")


@dataclass
class NewsroomBot:
    api: LoopbackBotAPI
    application: Application
    service: StorybotService
    questions_asked: list[str]  # every question that reached the model


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory, fixture_service: StorybotService) -> AsyncIterator[NewsroomBot]:
    api = LoopbackBotAPI(TOKEN)
    await api.start()
    settings = make_settings(
        tmp_path_factory.mktemp("newsroom"),
        telegram_bot_token=TOKEN,
        telegram_api_url=api.base_url,
        rate_limit_burst=3,
        rate_limit_per_minute=1,
    )
    service = fixture_service.with_settings(settings)
    asked: list[str] = []
    real_ask: Callable[..., Any] = service.ask

    def counting_ask(question: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(question)
        return real_ask(question, *args, **kwargs)

    service.ask = counting_ask  # type: ignore[method-assign]  # a spy: the real answer, counted
    application = build_application(settings, service)
    try:
        async with polling(application):
            yield NewsroomBot(api, application, service, asked)
    finally:
        await api.stop()


async def _answer_to(bot: NewsroomBot, query_id: str) -> dict[str, Any]:
    """Wait for the answer to one inline query (others may be answered first)."""
    count = len(bot.api.calls_to("answerInlineQuery"))
    while (call := bot.api.inline_answer(query_id)) is None:
        count += 1
        await bot.api.wait_for("answerInlineQuery", count)
    return call.params


# -- inline mode --------------------------------------------------------------------------------------


@on_the_bots_loop
async def test_an_inline_question_gets_a_cited_answer_titled_with_its_story(bot: NewsroomBot) -> None:
    query_id = await bot.api.inline_query("What did Biden warn?", user_id=801)
    answer = await _answer_to(bot, query_id)
    assert answer["cache_time"] == 60 and not answer.get("is_personal")  # the same for everyone
    results = answer["results"]
    assert 1 <= len(results) <= 3
    first = results[0]
    assert first["type"] == "article" and first["title"].startswith("📰 Putin wants 'immediate' talks with NATO")
    message = first["input_message_content"]
    assert message["parse_mode"] == "HTML" and len(message["message_text"]) <= 4096
    assert_telegram_html(message["message_text"])
    lines = message["message_text"].splitlines()
    assert lines[0] == "📰 <b>Putin wants 'immediate' talks with NATO on Russia's security</b>"
    assert lines[1] == "❓ <i>What did Biden warn?</i>"
    assert "sanctions like he" in message["message_text"] and "<b>[1]</b>" in message["message_text"]
    assert len({r["id"] for r in results}) == len(results) and all(len(r["id"]) <= 64 for r in results)


@on_the_bots_loop
async def test_typing_is_answered_once_and_a_repeat_comes_from_the_cache(bot: NewsroomBot) -> None:
    asked_before = len(bot.questions_asked)
    typed = ["Who did Putin c", "Who did Putin call lat", "Who did Putin call later on Tuesday?"]
    ids = [await bot.api.inline_query(text, user_id=802) for text in typed]
    last = await _answer_to(bot, ids[-1])
    assert "Macron" in last["results"][0]["input_message_content"]["message_text"]
    # The keystrokes before the pause were never asked (their handlers ended before the last one's).
    assert bot.api.inline_answer(ids[0]) is None and bot.api.inline_answer(ids[1]) is None
    assert bot.questions_asked[asked_before:] == [typed[-1]]
    # Another user typing it differently gets the same results without the model running again.
    again = await _answer_to(bot, await bot.api.inline_query("  who did putin call later on tuesday ", user_id=803))
    assert again["results"] == last["results"]
    assert len(bot.questions_asked) == asked_before + 1


@on_the_bots_loop
async def test_an_inline_refusal_is_one_result_saying_the_stories_do_not_say(bot: NewsroomBot) -> None:
    answer = await _answer_to(bot, await bot.api.inline_query("Who won the 2018 World Cup?", user_id=804))
    assert len(answer["results"]) == 1
    refusal = answer["results"][0]
    assert refusal["title"].startswith("🤷")
    text = refusal["input_message_content"]["message_text"]
    assert_telegram_html(text)
    assert "🤷" in text and "World Cup" in text and "[1]" not in text  # no closest passage to share


@on_the_bots_loop
async def test_inline_text_that_is_no_question_gets_no_results_and_no_model_run(bot: NewsroomBot) -> None:
    asked_before = len(bot.questions_asked)
    for text in ("", "   ", "clear", "x" * 300):
        answer = await _answer_to(bot, await bot.api.inline_query(text, user_id=805))
        assert answer["results"] == []
    assert len(bot.questions_asked) == asked_before


@on_the_bots_loop
async def test_inline_questions_take_rate_limit_tokens_without_queueing(bot: NewsroomBot) -> None:
    # The module's bucket holds 3 and refills one a minute.
    questions = ["Who is Sauli Niinisto?", "Who is Amira Haddad?", "Who is Tomas Varga?", "Who is Marta Quintero?"]
    answers = [await _answer_to(bot, await bot.api.inline_query(q, user_id=806)) for q in questions]
    assert all(a["results"] for a in answers[:3])
    limited = answers[3]
    assert limited["results"] == [] and limited["is_personal"] and limited["cache_time"] == 0
    assert limited["button"]["text"].startswith("⏳ Too many questions: try again in")


@on_the_bots_loop
async def test_the_allow_list_applies_to_inline_queries_by_user(bot: NewsroomBot) -> None:
    service = bot.application.bot_data["service"]
    limited = service.with_settings(service.settings.model_copy(update={"allowed_chat_ids": [807]}))
    bot.application.bot_data["service"] = limited
    try:
        refused = await _answer_to(bot, await bot.api.inline_query("What did Biden warn?", user_id=808))
        allowed = await _answer_to(bot, await bot.api.inline_query("What did Biden warn?", user_id=807))
    finally:
        bot.application.bot_data["service"] = service
    assert refused["results"] == [] and refused["is_personal"]
    assert allowed["results"] and allowed["is_personal"]  # Telegram must not show them to users off the list


def test_reading_inline_queries() -> None:
    assert read_inline_query("  What did   Biden warn? ") == InlineQuestion(None, "What did Biden warn?")
    assert read_inline_query("cgtn-putin: Who called?") == InlineQuestion("cgtn-putin", "Who called?")
    assert read_inline_query("cgtn-putin:") == InlineQuestion(None, "cgtn-putin:")  # a key with no question yet
    assert read_inline_query("At 10:30, who spoke?").story is None  # not a key before the colon
    assert read_inline_query("Note: who spoke?") == InlineQuestion("Note", "who spoke?")  # key-shaped: tried as one
    assert cache_key(InlineQuestion(None, "Who SPOKE ?")) == cache_key(InlineQuestion(None, "who spoke"))
    assert cache_key(InlineQuestion("a", "who spoke")) != cache_key(InlineQuestion(None, "who spoke"))
