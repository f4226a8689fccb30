"""A newsroom's bot end to end over HTTP: inline answers (and, with story keys, deep links and /story).

One Application (long polling against the loopback Bot API) over the seed article and the fixture
stories, with the real model, for the whole module; each test uses its own user and chat.
"""

from __future__ import annotations

import json
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


# -- stories: deep links, /story, the chosen story in the chat state --------------------------------

CHESS = "Teenager wins national chess final in a five-hour game"
HARBOUR = "Storm-hit harbour in Port Alder reopens after ten days"


def last_bot_message(bot: NewsroomBot, chat_id: int) -> int:
    return max(i for i, m in bot.api.messages.items() if m["chat"]["id"] == chat_id and m["from"]["is_bot"])


def buttons(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [button for row in (params.get("reply_markup") or {}).get("inline_keyboard", []) for button in row]


@on_the_bots_loop
async def test_a_deep_link_opens_the_chat_on_its_story(bot: NewsroomBot) -> None:
    chat = 901
    await bot.api.send_text("/start chess-final", chat_id=chat, user_id=chat)  # t.me/<bot>?start=chess-final
    opened = (await bot.api.wait_for("sendMessage", 1, chat_id=chat))[0].params
    assert_telegram_html(opened["text"])
    assert opened["text"].startswith(f"📰 <b>{CHESS}</b>") and "Midland Herald" in opened["text"]
    assert "Ask me anything about this story" in opened["text"]
    # Questions are now answered from that story alone, and each reply names it once, on top.
    await bot.api.send_text("Who won the national chess championship?", chat_id=chat, user_id=chat)
    reply = (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params["text"]
    assert_telegram_html(reply)
    assert reply.startswith(f"📰 <b>{CHESS}</b>\n") and reply.count("📰") == 1
    assert "<b>Sources</b>\n" in reply  # not named again beside Sources (a quoted header line may hold it)
    assert "Amira Haddad" in reply
    await bot.api.send_text("What did Biden warn?", chat_id=chat, user_id=chat)
    refusal = (await bot.api.wait_for("sendMessage", 3, chat_id=chat))[2].params["text"]
    assert refusal.startswith(f"📰 <b>{CHESS}</b>\n") and "This story doesn't mention Biden" in refusal
    assert "sanctions" not in refusal  # the seed article is out of scope, not even the closest passage
    # The story is chat state: it is in the JSON state file once persistence runs.
    await bot.application.update_persistence()
    state = json.loads((bot.service.settings.data_dir / "telegram_state.json").read_text())
    assert state["chat_data"][str(chat)]["story"] == "chess-final"


@on_the_bots_loop
async def test_a_deep_link_with_an_unknown_key_offers_the_closest_stories(bot: NewsroomBot) -> None:
    chat = 902
    await bot.api.send_text("/start chess-finale", chat_id=chat, user_id=chat)
    reply = (await bot.api.wait_for("sendMessage", 1, chat_id=chat))[0].params
    assert_telegram_html(reply["text"])
    assert reply["text"].startswith('No story "chess-finale". Closest: chess-final')
    offered = buttons(reply)
    assert offered[0]["callback_data"] == "s:chess-final" and CHESS in offered[0]["text"]
    await bot.api.press(last_bot_message(bot, chat), offered[0]["callback_data"], user_id=chat)
    opened = (await bot.api.wait_for("editMessageText", 1, chat_id=chat))[0].params
    assert opened["text"].startswith(f"📰 <b>{CHESS}</b>") and not buttons(opened)
    # Odd payloads are answered too, never a crash.
    await bot.api.send_text("/start <&>" + "x" * 200, chat_id=chat, user_id=chat)
    odd = (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params["text"]
    assert_telegram_html(odd)
    assert odd.startswith("No story")


@on_the_bots_loop
async def test_story_lists_the_newest_stories_as_buttons_and_a_press_opens_one(bot: NewsroomBot) -> None:
    chat = 903
    await bot.api.send_text("/story", chat_id=chat, user_id=chat)
    listing = (await bot.api.wait_for("sendMessage", 1, chat_id=chat))[0].params
    assert_telegram_html(listing["text"])
    offered = buttons(listing)
    keys = [b["callback_data"] for b in offered]
    assert keys == ["s:" + s.key for s in bot.service.stories()]  # five stories: one page, newest first
    assert keys[0] == "s:harbour-reopens" and all(len(k.encode()) <= 64 for k in keys)
    await bot.api.press(last_bot_message(bot, chat), "s:harbour-reopens", user_id=chat)
    opened = (await bot.api.wait_for("editMessageText", 1, chat_id=chat))[0].params
    assert opened["text"].startswith(f"📰 <b>{HARBOUR}</b>")
    notice = bot.api.calls_to("answerCallbackQuery")[-1].params
    assert notice["text"] == f"Now asking about: {HARBOUR}"
    await bot.api.send_text("Who is the mayor?", chat_id=chat, user_id=chat)
    reply = (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params["text"]
    assert reply.startswith(f"📰 <b>{HARBOUR}</b>\n") and "Ingrid Solberg" in reply
    # /story now says which story the chat is on.
    await bot.api.send_text("/story", chat_id=chat, user_id=chat)
    again = (await bot.api.wait_for("sendMessage", 3, chat_id=chat))[2].params["text"]
    assert f"Now asking about: 📰 <b>{HARBOUR}</b>" in again


@on_the_bots_loop
async def test_story_words_searches_the_headlines(bot: NewsroomBot) -> None:
    chat = 904
    await bot.api.send_text("/story chess", chat_id=chat, user_id=chat)
    found = (await bot.api.wait_for("sendMessage", 1, chat_id=chat))[0].params
    assert [b["callback_data"] for b in buttons(found)] == ["s:chess-final"]
    await bot.api.send_text("/story zebra <b>", chat_id=chat, user_id=chat)
    none = (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params
    assert_telegram_html(none["text"])
    assert none["text"].startswith("No story's headline has “zebra &lt;b&gt;”") and not buttons(none)
    await bot.api.send_text("/story library-robot", chat_id=chat, user_id=chat)  # an exact key opens it
    opened = (await bot.api.wait_for("sendMessage", 3, chat_id=chat))[2].params["text"]
    assert opened.startswith("📰 <b>City library lends a hand")


@on_the_bots_loop
async def test_story_all_goes_back_to_the_whole_archive(bot: NewsroomBot) -> None:
    chat = 905
    await bot.api.send_text("/start chess-final", chat_id=chat, user_id=chat)
    await bot.api.send_text("/story all", chat_id=chat, user_id=chat)
    back = (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params["text"]
    assert back == "Back to the whole archive: ask about any story."
    await bot.api.send_text("What did Biden warn?", chat_id=chat, user_id=chat)
    reply = (await bot.api.wait_for("sendMessage", 3, chat_id=chat))[2].params["text"]
    assert not reply.startswith("📰") and "sanctions like he" in reply


@on_the_bots_loop
async def test_odd_button_data_never_crashes_a_handler(bot: NewsroomBot) -> None:
    chat = 906
    await bot.api.send_text("/story", chat_id=chat, user_id=chat)
    await bot.api.wait_for("sendMessage", 1, chat_id=chat)
    listing = last_bot_message(bot, chat)
    before = len(bot.api.calls_to("answerCallbackQuery"))
    odd = ["s:no-such-story", "s#0123", "w:chess-final", "sp:", "sp:-1", "sp:999", "ask:x", "", "\u0000" * 64]
    for data in odd:
        await bot.api.press(listing, data, user_id=chat)
    answers = await bot.api.wait_for("answerCallbackQuery", before + len(odd))
    texts = [a.params.get("text", "") for a in answers[before:]]
    assert "That story is no longer in the archive; /story lists the stories." in texts
    assert "That question is too old for this button; please ask again." in texts
    # The bot still answers.
    await bot.api.send_text("Who is Tomas Varga?", chat_id=chat, user_id=chat)
    assert "librarian" in (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params["text"]


@on_the_bots_loop
async def test_an_inline_question_can_be_scoped_with_its_story_key(bot: NewsroomBot) -> None:
    asked = "chess-final: Who won the national chess championship?"
    answer = await _answer_to(bot, await bot.api.inline_query(asked, user_id=907))
    result = answer["results"][0]
    assert result["title"].startswith(f"📰 {CHESS}")
    text = result["input_message_content"]["message_text"]
    assert text.startswith(f"📰 <b>{CHESS}</b>\n❓ <i>Who won the national chess championship?</i>")
    assert "Amira Haddad" in text
    link = buttons(result)[0]
    assert link["url"] == "https://t.me/storybot_test_bot?start=chess-final"
    refusal = await _answer_to(bot, await bot.api.inline_query("chess-final: What did Biden warn?", user_id=907))
    refused = refusal["results"][0]
    assert len(refusal["results"]) == 1 and refused["title"].startswith("🤷 This story doesn't mention Biden")
    assert refused["input_message_content"]["message_text"].startswith(f"📰 <b>{CHESS}</b>")
    # A word before a colon that is no story's key is part of the question.
    plain = await _answer_to(bot, await bot.api.inline_query("Harbour: who is the harbour master?", user_id=907))
    assert "Colm Reddy" in plain["results"][0]["input_message_content"]["message_text"]


@on_the_bots_loop
async def test_a_question_several_stories_fit_asks_which_and_a_press_answers_in_it(bot: NewsroomBot) -> None:
    chat = 908
    question = "When was the article published?"  # every story has a date line: which article?
    await bot.api.send_text(question, chat_id=chat, user_id=chat)
    ask_back = (await bot.api.wait_for("sendMessage", 1, chat_id=chat))[0].params
    assert_telegram_html(ask_back["text"])
    assert (
        ask_back["text"]
        == f"❓ <i>{question}</i>\n\nSeveral stories could answer this. <b>Which story do you mean?</b>"
    )
    offered = buttons(ask_back)
    assert 2 <= len(offered) <= 3 and all(b["callback_data"].startswith("w:") for b in offered)
    assert "w:harbour-reopens" in [b["callback_data"] for b in offered]
    await bot.api.press(last_bot_message(bot, chat), "w:harbour-reopens", user_id=chat)
    reply = (await bot.api.wait_for("sendMessage", 2, chat_id=chat))[1].params
    assert_telegram_html(reply["text"])
    assert reply["text"].startswith(f"📰 <b>{HARBOUR}</b>\n❓ <i>{question}</i>\n")
    assert "3 March 2025" in reply["text"] and "reply_parameters" not in reply
    # Answering within that story did not turn the chat to it.
    await bot.api.send_text("Who is Tomas Varga?", chat_id=chat, user_id=chat)
    assert not (await bot.api.wait_for("sendMessage", 3, chat_id=chat))[2].params["text"].startswith("📰")


@on_the_bots_loop
async def test_inline_a_question_several_stories_fit_gets_a_result_per_story(bot: NewsroomBot) -> None:
    answer = await _answer_to(bot, await bot.api.inline_query("When was the article published?", user_id=909))
    results = answer["results"]
    assert 2 <= len(results) <= 3
    titles = [r["input_message_content"]["message_text"].splitlines()[0] for r in results]
    assert len(set(titles)) == len(results) and all(t.startswith("📰 <b>") for t in titles)
    harbour = next(r for r in results if HARBOUR in r["title"])
    assert "3 March 2025" in harbour["input_message_content"]["message_text"]
    assert buttons(harbour)[0]["url"].endswith("?start=harbour-reopens")


def test_story_pages_turn_and_long_keys_fit_in_callback_data() -> None:
    from bot.answering.stories import Story
    from bot.telegram.stories import read_story_callback, stories_page, story_callback

    stories = [Story(f"story-{n:02}", f"Headline {n}", None, None, f"story-{n:02}.txt") for n in range(12)]
    text, markup = stories_page(stories, 1, None)
    assert "page 2 of 3" in text and markup is not None
    rows = markup.inline_keyboard
    assert [row[0].callback_data for row in rows[:-1]] == [f"s:story-{n:02}" for n in range(5, 10)]
    assert [b.callback_data for b in rows[-1]] == ["sp:0", "sp:2"]
    assert "page 3 of 3" in stories_page(stories, 99, None)[0]  # a page past the end shows the last
    long_key = "k" * 64
    data = story_callback("w", long_key)
    assert len(data.encode()) <= 64 and data.startswith("w#")
    long_story = Story(long_key, "Long", None, None, "long.txt")
    assert read_story_callback(data, [*stories, long_story]) == ("w", long_story)
    assert read_story_callback("context", stories) is None
