"""The Telegram bot end to end: the real Application polls a Bot API server on loopback over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.devtools.loopback_api import BOT_USER, LoopbackBotAPI
from bot.errors import ConfigError
from bot.logs import configure_logging
from bot.service import StorybotService
from bot.telegram.app import build_application, check_token, polling
from bot.telegram.format import visible_text

from .conftest import FIXTURE_CORPUS, ROOT, FakeEmbedder, make_settings
from .helpers import TOKEN, assert_telegram_html, bot_process_env


def bot_settings(tmp_path: Path, api: LoopbackBotAPI, **overrides: object) -> Settings:
    return make_settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.base_url, **overrides)


def service_for(settings: Settings, seed_service: StorybotService) -> StorybotService:
    """The seed index and model under this test's settings (limits, data dir)."""
    return seed_service.with_settings(settings)


@contextlib.asynccontextmanager
async def running(settings: Settings, service: StorybotService) -> AsyncIterator[None]:
    async with polling(build_application(settings, service)):
        yield


async def test_start_registers_commands_and_offers_examples(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    async with running(settings, service_for(settings, seed_service)):
        commands = (await api.wait_for("setMyCommands"))[0].params["commands"]
        assert {c["command"] for c in commands} >= {"start", "help", "sources", "ask", "reset"}
        await api.send_text("/start")
        greeting = (await api.wait_for("sendMessage"))[0].params
        assert greeting["parse_mode"] == "HTML"
        assert_telegram_html(greeting["text"])
        assert "Putin wants 'immediate' talks with NATO on Russia's security" in greeting["text"]
        assert "CGTN" in greeting["text"] and "15-Dec-2021" in greeting["text"]
        buttons = [row[0] for row in greeting["reply_markup"]["inline_keyboard"]]
        assert len(buttons) == 3 and all(b["callback_data"].startswith("ask:") for b in buttons)

        # Tapping an example asks it.
        greeting_id = max(api.messages)
        await api.press(greeting_id, buttons[0]["callback_data"])
        reply = (await api.wait_for("sendMessage", 2))[1].params
        assert "<b>Sources</b>" in reply["text"]
        assert reply["text"].startswith(f"❓ <i>{buttons[0]['text']}</i>")  # the question is written out
        assert "reply_parameters" not in reply  # rather than quoting the greeting
        await api.send_text("/help")
        await api.send_text("/sources")
        help_text, sources_text = [c.params["text"] for c in (await api.wait_for("sendMessage", 4))[2:]]
        assert "never make up a quote" in help_text and "cgtn-putin-nato-talks.txt" in sources_text
        assert "Putin wants 'immediate' talks with NATO" in help_text  # /help lists the articles
        assert_telegram_html(help_text)
        assert_telegram_html(sources_text)


async def test_question_gets_a_cited_html_reply_with_typing_and_buttons(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    async with running(settings, service_for(settings, seed_service)):
        question_id = await api.send_text("What did Biden warn?")
        reply = (await api.wait_for("sendMessage"))[0]
        typing = api.calls_to("sendChatAction")
        assert typing and typing[0].params["action"] == "typing" and typing[0].at <= reply.at
        params = reply.params
        assert params["parse_mode"] == "HTML"
        assert params["reply_parameters"]["message_id"] == question_id
        text = params["text"]
        assert_telegram_html(text)
        assert "<b>" in text and "Biden" in text  # the answer (a span, or key words of a sentence) in bold
        assert "sanctions like he's never seen" in text
        assert "<b>[1]</b>" in text and "(paragraph 10)" in text
        # The one article is named once (a span answer is also quoted inside its cited sentence).
        assert text.count("Putin wants 'immediate' talks") == 1
        keyboard = params["reply_markup"]["inline_keyboard"]
        assert keyboard[0][0]["callback_data"] == "context"
        assert [b["callback_data"] for b in keyboard[1]] == ["up", "down"]

        # Show context edits the message in place; a second press returns to the short form.
        answer_id = max(api.messages)
        await api.press(answer_id, "context")
        wide = (await api.wait_for("editMessageText"))[0].params
        assert wide["message_id"] == answer_id and wide["parse_mode"] == "HTML"
        assert_telegram_html(wide["text"])
        assert "In context" in wide["text"] and "¶9" in wide["text"] and "¶11" in wide["text"]
        assert wide["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "short"
        await api.press(answer_id, "short")
        short = (await api.wait_for("editMessageText", 2))[1].params
        assert short["text"] == text
        assert len(await api.wait_for("answerCallbackQuery", 2)) >= 2

        # Feedback goes to the data directory, once per user and answer; the keyboard shows the vote.
        await api.press(answer_id, "down")
        marked = (await api.wait_for("editMessageReplyMarkup"))[0].params["reply_markup"]["inline_keyboard"]
        assert [b["text"] for b in marked[-1]] == ["👍", "👎 ✓"]
        await api.press(answer_id, "down")
        answers = await api.wait_for("answerCallbackQuery", 4)
        assert "already voted" in answers[-1].params["text"]
        feedback = (settings.data_dir / "feedback.jsonl").read_text()
        assert feedback.count('"vote": "down"') == 1 and "What did Biden warn?" in feedback
        # Another user's vote on the same answer counts, and so does changing one's mind.
        await api.press(answer_id, "down", user_id=999)
        await api.press(answer_id, "up")
        await api.wait_for("editMessageReplyMarkup", 4)  # the repeated vote re-marks its ✓ too
        votes = [line for line in (settings.data_dir / "feedback.jsonl").read_text().splitlines() if line]
        assert len(votes) == 3
        # Showing context keeps the presser's vote on the keyboard.
        await api.press(answer_id, "context")
        wide = (await api.wait_for("editMessageText", 3))[2].params
        assert [b["text"] for b in wide["reply_markup"]["inline_keyboard"][-1]] == ["👍 ✓", "👎"]


async def test_pressing_the_same_vote_again_says_so_and_keeps_the_tick(tmp_path, api, seed_service) -> None:
    # A second press showed nothing, neither the ✓ nor "already voted", though the vote counted once.
    settings = bot_settings(tmp_path, api)
    group = -100400
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("/ask What did Biden warn?", chat_id=group, chat_type="supergroup")
        await api.wait_for("sendMessage", 1, chat_id=group)
        answer_id = max(api.messages)

        def keyboard() -> list[str]:
            return [b["text"] for b in api.messages[answer_id]["reply_markup"]["inline_keyboard"][-1]]

        await api.press(answer_id, "down")
        first = (await api.wait_for("answerCallbackQuery"))[0].params
        await api.wait_for("editMessageReplyMarkup")
        assert first["text"] == "Thanks for the feedback!" and keyboard() == ["👍", "👎 ✓"]
        await api.press(answer_id, "up", user_id=222)  # someone else's vote moves the shared ✓
        await api.wait_for("editMessageReplyMarkup", 2)
        assert keyboard() == ["👍 ✓", "👎"]
        await api.press(answer_id, "down")
        again = (await api.wait_for("answerCallbackQuery", 3))[-1].params
        await api.wait_for("editMessageReplyMarkup", 3)
        assert again["text"] == "You already voted 👎 on this answer." and "show_alert" not in again
        assert keyboard() == ["👍", "👎 ✓"]  # the presser sees their vote
        votes = (settings.data_dir / "feedback.jsonl").read_text().splitlines()
        assert [json.loads(line)["vote"] for line in votes] == ["down", "up"]  # recorded once each


async def test_text_that_is_no_question_gets_a_hint_and_help_works_typed(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api, rate_limit_per_minute=1, rate_limit_burst=1)
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("clear")
        hint = (await api.wait_for("sendMessage"))[0].params
        assert (
            hint["text"] == "That doesn't look like a question about the story. Ask me about the story, or type 'help'."
        )
        assert "reply_markup" not in hint  # nothing to vote on
        await api.send_text("help")
        assert "What I do" in (await api.wait_for("sendMessage", 2))[1].params["text"]
        # Neither took the user's one question of the minute.
        await api.send_text("Macron")
        assert "Macron" in (await api.wait_for("sendMessage", 3))[2].params["text"]


def test_the_loopback_terminal_shows_notices_and_changed_buttons() -> None:
    # Trying the bot without Telegram, a vote showed nothing: its ✓ and notice were never printed.
    from bot.devtools.loopback_api import Call, describe_call

    keyboard = {"inline_keyboard": [[{"text": "👍"}, {"text": "👎 ✓"}]]}
    assert describe_call(Call("editMessageReplyMarkup", {"reply_markup": keyboard})) == (
        "      buttons: 👍 | 👎 ✓  (type '!press N' to press button N)"
    )
    notice = Call("answerCallbackQuery", {"callback_query_id": "1", "text": "You already voted 👎 on this answer."})
    assert describe_call(notice) == "      [notice] You already voted 👎 on this answer."
    assert describe_call(Call("answerCallbackQuery", {"callback_query_id": "1"})) is None
    assert describe_call(Call("sendMessage", {"text": "<b>Hi</b> &amp; bye"})) == "\n[bot] Hi & bye\n"
    assert describe_call(Call("sendChatAction", {"action": "typing"})) is None
    # An inline result: its title and description on one line, the message it would send, its link button.
    button = {"text": "💬 Ask about this story", "url": "https://t.me/bot?start=k"}
    result = {
        "title": "🤷 The article doesn't mention Zelensky.",
        "description": "Nothing in the stories answers this.",
        "input_message_content": {"message_text": "<b>Answer</b>"},
        "reply_markup": {"inline_keyboard": [[button]]},
    }
    shown = describe_call(Call("answerInlineQuery", {"results": [result]}))
    assert shown is not None
    assert "(1) 🤷 The article doesn't mention Zelensky. — Nothing in the stories answers this." in shown
    assert "Answer\n" in shown and "link button: 💬 Ask about this story -> https://t.me/bot?start=k" in shown


async def test_ctrl_c_stops_the_bot_with_exit_code_130(tmp_path, api) -> None:
    # Stopping the bot with Ctrl-C exited 0; the README says 130.
    settings = make_settings(tmp_path)
    env = bot_process_env(settings, api.base_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "telegram", env=env, cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    try:
        await api.send_text("What did Biden warn?")
        assert "sanctions like" in (await api.wait_for("sendMessage", timeout=180))[0].params["text"]
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 130, stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_unanswerable_question_says_so_with_the_closest_passage(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("Who won the 2018 World Cup?")
        text = (await api.wait_for("sendMessage"))[0].params["text"]
        assert_telegram_html(text)
        assert "doesn't mention" in text and "Closest passage (not an answer)" in text


async def test_groups_answer_only_when_addressed(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    group = -100200
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("What did Biden warn?", chat_id=group, chat_type="supergroup")
        await api.send_text(
            f"@{BOT_USER['username']} Which news agency did Ryabkov talk to?", chat_id=group, chat_type="supergroup"
        )
        first = (await api.wait_for("sendMessage", 1, chat_id=group))[0].params["text"]
        assert "RIA Novosti" in first
        await api.send_text("/ask Who did Putin call later on Tuesday?", chat_id=group, chat_type="supergroup")
        second = (await api.wait_for("sendMessage", 2, chat_id=group))[1].params["text"]
        assert "Macron" in second
        bot_message = max(i for i, m in api.messages.items() if m["from"]["id"] == BOT_USER["id"])
        await api.send_text(
            "Did Putin deny planning an invasion?", chat_id=group, chat_type="supergroup", reply_to=bot_message
        )
        third = (await api.wait_for("sendMessage", 3, chat_id=group))[2].params["text"]
        assert "denied planning an invasion" in third
        await asyncio.sleep(1.0)
        # The unaddressed first message was ignored: exactly three replies.
        assert len(api.calls_to("sendMessage", group)) == 3


async def test_limits_long_questions_non_text_and_rate(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api, rate_limit_per_minute=60, rate_limit_burst=1)
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("x" * 501)
        assert "under 500" in (await api.wait_for("sendMessage"))[0].params["text"]
        await api.send_photo()
        assert "only read text" in (await api.wait_for("sendMessage", 2))[1].params["text"]
        # Over the rate (one a second after a burst of one) questions wait their turn; none is dropped.
        for question in ("What did Biden warn?", "What did Ryabkov say?", "Who is Sauli Niinisto?"):
            await api.send_text(question)
        calls = (await api.wait_for("sendMessage", 5))[2:]
        texts = sorted(visible_text(c.params["text"]) for c in calls)
        assert [("sanctions like" in t, "militarily" in t, "Finnish President" in t) for t in texts].count(
            (False, False, False)
        ) == 0
        assert calls[-1].at - calls[0].at >= 1.5  # the third waited about two seconds for its turn
        # Another user is not limited by the first one's questions.
        await api.send_text("Who is Sauli Niinisto?", chat_id=333, user_id=333)
        reply = (await api.wait_for("sendMessage", 1, chat_id=333))[0].params["text"]
        assert "Finnish President" in visible_text(reply)


async def test_allow_list(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api, allowed_chat_ids=[111])
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("What did Biden warn?", chat_id=222, user_id=222)
        await api.send_text("/sources", chat_id=222, user_id=222)
        refusals = await api.wait_for("sendMessage", 2, chat_id=222)
        assert all("not available" in c.params["text"] for c in refusals)
        # In a group outside the list, chatter is ignored and only messages for the bot get the line.
        await api.send_text("just talking", chat_id=-300, chat_type="group")
        await api.send_text("/ask What did Biden warn?", chat_id=-300, chat_type="group")
        assert "not available" in (await api.wait_for("sendMessage", 1, chat_id=-300))[0].params["text"]
        await api.send_text("What did Biden warn?", chat_id=111)
        assert "sanctions like" in (await api.wait_for("sendMessage", 1, chat_id=111))[0].params["text"]
        await asyncio.sleep(0.5)
        assert len(api.calls_to("sendMessage", -300)) == 1


async def test_long_reply_is_split_at_safe_points(tmp_path, api) -> None:
    corpus = tmp_path / "long"
    corpus.mkdir()
    title = "The <harbour> & the canal authority report {n}: repairs to the lock cost more than planned, again"
    for n in range(40):
        body = f"Harbour official Ana Kerr{n} said on Monday that lock {n} would reopen in May."
        (corpus / f"harbour-{n:02}.txt").write_text(f"{title.format(n=n)}\nCoast Gazette\n\n{body}\n")
    settings = make_settings(tmp_path, corpus=corpus, telegram_bot_token=TOKEN, telegram_api_url=api.base_url)
    service = StorybotService.load(settings, FakeEmbedder())
    async with running(settings, service):
        await api.send_text("/sources")
        await api.send_text("/start")
        await api.wait_for("sendMessage", 4)
        await asyncio.sleep(0.5)
        parts = [c.params for c in api.calls_to("sendMessage")]
        assert len(parts) >= 4
        for part in parts:
            assert len(part["text"]) <= 4096
            assert_telegram_html(part["text"])
        assert "&lt;harbour&gt; &amp; the canal authority report 39" in "".join(p["text"] for p in parts)
        greeting = [p for p in parts if "reply_markup" in p or "👋" in p["text"]]
        assert all("reply_markup" not in p for p in greeting[:-1])  # the buttons go under the last part


async def test_errors_are_reported_and_the_bot_keeps_serving(tmp_path, api, seed_service, monkeypatch) -> None:
    settings = bot_settings(tmp_path, api)
    service = service_for(settings, seed_service)
    real_ask = service.ask

    def flaky_ask(question, session=None, story=None):
        if question == "What went boom?":
            raise RuntimeError("a bug deep inside")
        return real_ask(question, session, story)

    monkeypatch.setattr(service, "ask", flaky_ask)
    async with running(settings, service):
        await api.send_text("What went boom?")
        assert "something went wrong" in (await api.wait_for("sendMessage"))[0].params["text"]
        await api.send_text("What did Biden warn?")
        assert "sanctions like" in (await api.wait_for("sendMessage", 2))[1].params["text"]


async def test_flood_limit_and_network_errors_are_retried(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    async with running(settings, service_for(settings, seed_service)):
        api.failures["sendMessage"] = ["retry_after", "server_error"]
        await api.send_text("What did Biden warn?")
        calls = await api.wait_for("sendMessage", 3, timeout=30)
        assert "sanctions like" in calls[-1].params["text"]


async def test_slow_chat_does_not_block_another(tmp_path, api, seed_service, monkeypatch) -> None:
    settings = bot_settings(tmp_path, api)
    service = service_for(settings, seed_service)
    real_ask = service.ask

    def slow_ask(question, session=None, story=None):
        if "slow" in question:
            import time

            time.sleep(3)  # CPU-bound work in a thread, as embedding is
        return real_ask(question, session, story)

    monkeypatch.setattr(service, "ask", slow_ask)
    async with running(settings, service):
        await api.send_text("a slow question about Biden", chat_id=501, user_id=501)
        await asyncio.sleep(0.3)
        await api.send_text("What did Biden warn?", chat_id=502, user_id=502)
        fast = (await api.wait_for("sendMessage", 1, chat_id=502))[0]
        slow = (await api.wait_for("sendMessage", 1, chat_id=501))[0]
        assert fast.at < slow.at


async def test_state_survives_a_restart(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api, rate_limit_per_minute=1, rate_limit_burst=3)
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("What did Biden warn?")
        await api.wait_for("sendMessage", 1)
        await api.send_text("Who did Putin call later on Tuesday?")
        macron = (await api.wait_for("sendMessage", 2))[1]
        assert "Macron" in macron.params["text"]
    answer_id = next(i for i, m in api.messages.items() if m.get("text") == macron.params["text"])
    state = settings.data_dir / "telegram_state.json"
    assert state.stat().st_mode & 0o777 == 0o600  # chat history is private
    stored = json.loads(state.read_text())  # plain data: the conversation as strings, no objects
    turns = stored["chat_data"]["111"]["turns"]
    assert turns[-1]["question"] == "Who did Putin call later on Tuesday?" and turns[-1]["subject"] == "Putin"
    assert not list(settings.data_dir.glob("*.pickle*")) and not list(settings.data_dir.glob(".*.tmp"))

    # A new process would start here: a new Application over the same data directory.
    async with running(settings, service_for(settings, seed_service)):
        await api.press(answer_id, "context")
        wide = (await api.wait_for("editMessageText"))[0].params["text"]
        assert "Macron" in wide and "In context" in wide
        # The conversation is remembered: "he" is Putin from before the restart.
        await api.send_text("What did he reiterate?")
        follow = (await api.wait_for("sendMessage", 3))[2].params["text"]
        assert "reiterated the same demands" in follow
        # And so is the token bucket: a fourth question, a minute from its turn, is refused.
        await api.send_text("Who is Sauli Niinisto?")
        refusal = (await api.wait_for("sendMessage", 4))[3].params["text"]
        assert "1 questions a minute after the first 3" in refusal and "try again in" in refusal


async def test_token_never_reaches_the_log(tmp_path, api, seed_service, capfd) -> None:
    settings = bot_settings(tmp_path, api, log_level="DEBUG")
    configure_logging("DEBUG", secrets=[TOKEN])
    try:
        async with running(settings, service_for(settings, seed_service)):
            await api.send_text("What did Biden warn?")
            await api.wait_for("sendMessage")
            api.failures["sendMessage"] = ["server_error"]
            await api.send_text("Who did Putin speak with by phone?")
            await api.wait_for("sendMessage", 3)
    finally:
        logging.getLogger().handlers.clear()
    logged = capfd.readouterr().err
    assert "HTTP Request" in logged and "getUpdates" in logged  # httpx did log the URLs...
    assert TOKEN not in logged and TOKEN.split(":")[1] not in logged  # ...without the token
    assert "[REDACTED]" in logged


async def test_wrong_token_is_one_clear_line(tmp_path, api) -> None:
    settings = make_settings(
        tmp_path, telegram_bot_token="987654321:WrongWrongWrongWrongWrongWrong", telegram_api_url=api.base_url
    )
    with pytest.raises(ConfigError, match="rejected TELEGRAM_BOT_TOKEN"):
        await check_token(settings)
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "987654321:WrongWrongWrongWrongWrongWrong",
        "STORYBOT_TELEGRAM_API_URL": api.base_url,
        "STORYBOT_CORPUS_DIR": str(settings.corpus_dir),
        "STORYBOT_INDEX_DIR": str(settings.index_dir),
        "STORYBOT_DATA_DIR": str(settings.data_dir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "telegram",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "rejected TELEGRAM_BOT_TOKEN" in lines[0], lines
    assert "Wrong" not in stderr.decode()


async def test_a_changed_corpus_is_picked_up_while_running(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api, corpus_check_seconds=0.3)
    service = StorybotService.load(settings, seed_service.embedder)
    async with running(settings, service):
        await api.send_text("Who is Colm Reddy?")
        assert "doesn't mention" in (await api.wait_for("sendMessage"))[0].params["text"]
        shutil.copy(FIXTURE_CORPUS / "harbour-reopens.md", settings.corpus_dir)
        for _ in range(100):  # the watcher rebuilds within a few checks
            if "harbour-reopens.md" in service.index.documents:
                break
            await asyncio.sleep(0.2)
        await api.send_text("Who is Colm Reddy?")
        assert "harbour master" in (await api.wait_for("sendMessage", 2))[1].params["text"]
        # A broken corpus does not stop the bot: it keeps answering from the last good index.
        for path in settings.corpus_dir.iterdir():
            path.write_bytes(b"\xff\xfe not utf-8")
        await asyncio.sleep(1.0)
        await api.send_text("What did Biden warn?")
        assert "sanctions like" in (await api.wait_for("sendMessage", 3))[2].params["text"]


class _RunsCode:
    """Unpickling this runs a shell command that leaves a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


async def test_old_pickle_state_is_set_aside_unread(tmp_path, api, seed_service, caplog) -> None:
    settings = bot_settings(tmp_path, api)
    settings.data_dir.mkdir(parents=True)
    marker = tmp_path / "pwned"
    old = settings.data_dir / "telegram_state.pickle"
    old.write_bytes(pickle.dumps({"chat_data": _RunsCode(marker)}))
    with caplog.at_level(logging.WARNING, logger="bot.telegram.state"):
        async with running(settings, service_for(settings, seed_service)):
            await api.send_text("What did Biden warn?")
            assert "sanctions like" in (await api.wait_for("sendMessage"))[0].params["text"]
    assert not marker.exists()  # never unpickled
    assert not old.exists()
    aside = list(settings.data_dir.glob("telegram_state.pickle.unreadable-*"))
    assert len(aside) == 1 and b"system" in aside[0].read_bytes()  # kept, untouched
    assert len([r for r in caplog.records if "pickle" in r.getMessage()]) == 1


async def test_damaged_json_state_is_set_aside_not_fatal(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    settings.data_dir.mkdir(parents=True)
    state = settings.data_dir / "telegram_state.json"
    state.write_text('{"version": 1, "chat_data": {"111": {"turns": [')
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("What did Biden warn?")
        assert "sanctions like" in (await api.wait_for("sendMessage"))[0].params["text"]
    aside = list(settings.data_dir.glob("telegram_state.json.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"version": 1')  # nothing lost
    assert json.loads(state.read_text())["version"] == 1


async def test_unknown_commands_get_a_hint(tmp_path, api, seed_service) -> None:
    settings = bot_settings(tmp_path, api)
    group = -100300
    async with running(settings, service_for(settings, seed_service)):
        await api.send_text("/foo bar")
        hint = (await api.wait_for("sendMessage"))[0].params["text"]
        assert hint == "I don't know /foo. Type a question, or /help for what I can do."
        await api.send_text("/foo", chat_id=group, chat_type="supergroup")  # maybe for another bot: quiet
        await api.send_text(f"/bar@{BOT_USER['username']}", chat_id=group, chat_type="supergroup")
        assert "I don't know /bar" in (await api.wait_for("sendMessage", 1, chat_id=group))[0].params["text"]
        await asyncio.sleep(0.5)
        assert len(api.calls_to("sendMessage", group)) == 1
