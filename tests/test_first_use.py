"""The rough edges a new user hit on a first try (issue 26), each through the front end where it was met."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.answering.intake import NOT_A_QUESTION, NOT_A_QUESTION_TO_ASK, NOT_ENGLISH
from bot.console import CANCELLED, Style, run_chat
from bot.service import StorybotService
from bot.telegram.app import build_application, polling
from bot.telegram.format import visible_text

from .conftest import ROOT, make_settings
from .helpers import TOKEN, scripted_input

NO_ONE_BEFORE = "Who do you mean by 'he'? Ask with a name."


def chat(service: StorybotService, *lines: str) -> str:
    """What the console chat prints for these lines, typed one after another."""
    out: list[str] = []
    run_chat(service, scripted_input(iter(lines)), out.append, Style(enabled=False))
    return "\n".join(out)


def test_the_console_says_it_reads_english_and_who_he_is_and_answers_a_name(seed_service: StorybotService) -> None:
    shown = chat(seed_service, "Wovor hat Biden gewarnt?", "Что сказал Путин?")
    assert shown.count(NOT_ENGLISH) == 2 and "doesn't mention" not in shown and "Closest passage" not in shown
    # A first question leaning on a "he" that nobody before stands for is asked back, quoting nothing.
    shown = chat(seed_service, "What did he say then?")
    assert NO_ONE_BEFORE in shown and NOT_A_QUESTION not in shown and "Closest passage" not in shown
    # After a name, the same question is read with it.
    shown = chat(seed_service, "What did Ryabkov warn?", "What did he say then?")
    assert NO_ONE_BEFORE not in shown and "(reading 'he' as 'Ryabkov')" in shown
    # A name alone gets the article's sentence about it, not a span cut from it for a question never asked.
    answer = seed_service.ask("putin")
    assert answer.answered and answer.text == answer.shown.sentence and "Putin" in (answer.text or "")


def test_ask_says_it_reads_english_and_its_hints_fit_ask(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    result = cli(["ask", "¿Qué advirtió Biden?"], settings)
    assert result.returncode == 2 and result.stdout.splitlines()[1] == NOT_ENGLISH
    # Said at once: no model is loaded to tell a Spanish question from an English one.
    assert "Loading the model" not in result.stdout + result.stderr
    lines = [
        "Qu'a dit Poutine ?",
        "\x89PNG\x1a\x00\x00\x00IHDR\x00\x00\x01\x00C 2\ufffd\ufffd",
        "What did he say then?",
    ]
    result = cli(["ask", "--json"], settings, stdin="\n".join(lines) + "\n")
    first, binary, pronoun = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["error"] == NOT_ENGLISH
    assert binary["error"] == NOT_A_QUESTION_TO_ASK  # `ask` has no 'help' to type
    assert "help" not in result.stdout
    assert (
        pronoun["answered"] is False
        and pronoun["citations"] == []
        and set(pronoun)
        == {
            "question",
            "answered",
            "answer",
            "citations",
        }
    )
    result = cli(["ask", "What did he say then?"], settings)
    assert NO_ONE_BEFORE in result.stdout


async def test_telegram_says_it_reads_english_and_who_he_is(tmp_path, api, seed_service) -> None:
    settings = make_settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.base_url)
    async with polling(build_application(settings, seed_service.with_settings(settings))):
        asked = {
            "Qu'a dit Poutine ?": NOT_ENGLISH,
            "普京说了什么？": NOT_ENGLISH,
            "What did he say then?": NO_ONE_BEFORE,
        }
        for n, (question, expected) in enumerate(asked.items(), start=1):
            await api.send_text(question)
            shown = visible_text((await api.wait_for("sendMessage", n))[-1].params["text"])
            assert expected in shown and "Closest passage" not in shown, shown


class _Output:
    """A process's output stream, read on a thread so the test can wait for what it prints."""

    def __init__(self, stream) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):
            self.text += chunk.decode(errors="replace")

    def wait_for(self, done: Callable[[str], bool], process: subprocess.Popen, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.text):
            assert process.poll() is None, f"the chat ended early:\n{self.text}"
            assert time.monotonic() < deadline, f"timed out; the chat printed:\n{self.text}"
            time.sleep(0.05)


# The chat in a real process, with its second answer held up mid-way (after the question was read and the
# passages ranked) until Ctrl-C arrives: the real SIGINT then lands inside StorybotService.ask.
CHAT_WITH_A_SLOW_SECOND_ANSWER = """
import sys, time
import bot.service
from bot.cli import main

score_candidates, calls = bot.service.score_candidates, []

def held_up_on_the_second_call(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        print("holding the answer", file=sys.stderr, flush=True)
        time.sleep(120)
    return score_candidates(*args, **kwargs)

bot.service.score_candidates = held_up_on_the_second_call
sys.exit(main(["chat"]))
"""


def test_ctrl_c_during_an_answer_cancels_it_and_keeps_the_conversation(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = {
        **os.environ,
        "STORYBOT_CORPUS_DIR": str(settings.corpus_dir),
        "STORYBOT_INDEX_DIR": str(settings.index_dir),
        "STORYBOT_DATA_DIR": str(settings.data_dir),
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-c", CHAT_WITH_A_SLOW_SECOND_ANSWER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdin is not None
    out, err = _Output(process.stdout), _Output(process.stderr)

    def prompts(count: int) -> Callable[[str], bool]:
        return lambda text: text.count("\n? ") >= count

    def type_line(line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()

    try:
        out.wait_for(prompts(1), process)
        type_line("Who did Putin call later on Tuesday?")
        out.wait_for(prompts(2), process)
        assert "Answer: " in out.text and "Emmanuel Macron" in " ".join(out.text.split("Answer: ", 1)[1].split())
        answered = len(out.text)
        type_line("What did he reiterate?")
        err.wait_for(lambda text: "holding the answer" in text, process)
        process.send_signal(signal.SIGINT)
        out.wait_for(prompts(3), process)
        # The piped question is echoed after the prompt; that answer, and only it, was dropped.
        assert out.text[answered:].strip() == f"What did he reiterate?\n{CANCELLED}\n\n?"
        # The chat goes on, and still knows who "he" is: the cancelled turn left nothing behind.
        type_line("What did he reiterate?")
        out.wait_for(prompts(4), process)
        assert "(reading 'he' as 'Putin')" in out.text and "reiterated the same demands" in out.text
        process.send_signal(signal.SIGINT)  # at the prompt: the chat ends, as before
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in err.text, err.text
