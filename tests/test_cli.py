"""The command line through bot.cli.main(argv), in-process; two real subprocesses as smoke tests."""

from __future__ import annotations

import io
import json
import sys

import pytest

from bot.cli import main

from .conftest import ROOT, make_settings
from .helpers import run_cli


def test_help_describes_every_command_with_examples(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("ask", "chat", "rebuild", "telegram", "eval", "bench"):
        assert f"    {command} " in out
    assert "examples:" in out and 'storybot ask "What did Biden warn?"' in out and "exit codes:" in out


@pytest.mark.parametrize("command", ["ask", "chat", "rebuild", "telegram", "eval", "bench"])
def test_each_command_has_a_description(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert len(description) > 30 and not description.startswith(("positional", "options"))
    if command == "eval":
        assert '"expect"' in out  # what FILE holds
    if command == "ask":
        assert "QUESTION" in out and "--json" in out


def test_version_comes_from_the_package_metadata(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"storybot {version('storybot')}"


def test_unknown_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_telegram_without_a_token_is_one_line(tmp_path, cli) -> None:
    result = cli(["telegram"], make_settings(tmp_path))
    assert result.returncode == 2 and "TELEGRAM_BOT_TOKEN is not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_stale_index_is_rebuilt_with_a_status_line_not_a_warning(tmp_path, cli) -> None:
    settings = make_settings(tmp_path)
    assert cli(["ask", "What did Biden warn?"], settings).returncode == 0
    (settings.corpus_dir / "extra.md").write_text("Harbour news\n\nThe harbour reopened on Monday.\n")
    result = cli(["ask", "What did Biden warn?"], settings)
    assert result.returncode == 0
    assert result.stderr.splitlines()[:2] == [
        f"The index in {settings.index_dir}/ is out of date (corpus changed (added: extra.md)): rebuilding it now.",
        "Loading the model...",
    ]


def test_smoke_a_real_process_answers(tmp_path) -> None:
    result = run_cli(["ask", "--json", "Which agency did the Russian diplomat talk to?"], make_settings(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["question"] == "Which agency did the Russian diplomat talk to?"
    assert "Loading the model..." in result.stderr.splitlines()


def test_smoke_python_dash_m_bot_help() -> None:
    import subprocess

    result = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "usage: storybot" in result.stdout


def test_an_empty_question_is_refused_at_once_with_exit_2(tmp_path, cli) -> None:
    # `storybot ask ""` loaded the model for 12 s, printed nothing and exited 0.
    settings = make_settings(tmp_path)
    result = cli(["ask", ""], settings)
    assert result.returncode == 2
    assert result.stdout.strip() == "The question is empty: please type a question about the story."
    result = cli(["ask", "--json", "  "], settings)
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "question": "  ",
        "answered": False,
        "answer": None,
        "citations": [],
        "error": "The question is empty: please type a question about the story.",
    }
    # Checked before the model loads (and before the missing index is built).
    assert "Loading the model..." not in result.stderr and not settings.index_dir.exists()


def test_an_overlong_question_is_refused_before_the_model_loads(tmp_path, cli) -> None:
    settings = make_settings(tmp_path)
    result = cli(["ask", "--json", "Why " * 1250], settings)
    assert result.returncode == 2
    assert "That question is 4999 characters long" in json.loads(result.stdout)["error"]
    assert result.stderr == "" and not settings.index_dir.exists()


def test_stdin_lines_without_a_question_get_an_error_object(tmp_path, cli) -> None:
    settings = make_settings(tmp_path)
    lines = ['{"q": ""}', '{"session": "x"}', '{"q": 5, "session": "x"}']
    result = cli(["ask", "--json"], settings, stdin="\n".join(lines) + "\n")
    assert result.returncode == 2  # nothing was answered
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["error"] for o in objects] == [
        "The question is empty: please type a question about the story.",
        'the line has no question (it has no "q"): write {"q": "..."}',
        'the line has no question (its "q" is not text): write {"q": "..."}',
    ]
    assert [o["question"] for o in objects] == ["", lines[1], lines[2]]
    assert "Loading the model..." not in result.stderr
    # Among questions, such lines are reported and the batch answers the rest with exit code 0.
    result = cli(["ask", "--json"], settings, stdin='{"session": "x"}\nclear\nWhat did Biden warn?\n')
    assert result.returncode == 0
    first, second, third = [json.loads(line) for line in result.stdout.splitlines()]
    assert "no question" in first["error"]
    assert second["error"].startswith("That doesn't look like a question about the story.")
    assert third["answered"] and "error" not in third


def test_no_question_at_all_on_stdin_is_exit_2(tmp_path, cli) -> None:
    result = cli(["ask"], make_settings(tmp_path), stdin="\n\n")
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr.strip() == 'storybot: no question to answer: give one (storybot ask "...") or one per stdin line'
    )


def test_a_word_that_is_no_question_gets_a_hint_not_a_quote(tmp_path, cli) -> None:
    result = cli(["ask", "clear"], make_settings(tmp_path))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "Q: clear",
        "That doesn't look like a question about the story. Ask about the story in plain words.",
        "",
    ]  # not the chat's "or type 'help'": `ask` has no 'help' to type


class CtrlC(io.StringIO):
    """A terminal whose user presses Ctrl-C at the prompt, after typing the given lines."""

    def readline(self, size: int | None = -1) -> str:
        line = super().readline()
        if not line:
            raise KeyboardInterrupt
        return line


def test_ctrl_c_at_the_console_prompt_exits_130(tmp_path, cli) -> None:
    result = cli(["chat"], make_settings(tmp_path), stdin=CtrlC("clear\nWho did Putin call later on Tuesday?\n"))
    assert result.returncode == 130
    assert "That doesn't look like a question about the story." in result.stdout
    # The question after the hint was answered before Ctrl-C ended the chat.
    # (The answer wraps at word boundaries: read it with its lines joined.)
    assert "Answer: " in result.stdout and "Emmanuel Macron" in " ".join(result.stdout.split("Answer: ", 1)[1].split())
    assert "Traceback" not in result.stderr


def test_piped_questions_are_echoed_after_the_prompt(tmp_path, cli) -> None:
    # A terminal shows what is typed; piped lines are not shown, so answers stood on the prompt line.
    result = cli(["chat"], make_settings(tmp_path), stdin="What did Biden warn?\nexit\n")
    assert result.returncode == 0
    assert "\n? What did Biden warn?\nAnswer: " in result.stdout


def test_install_says_its_slow_steps_may_take_a_minute() -> None:
    # torch and the project install were silent for about 40 s each.
    script = (ROOT / "scripts" / "install").read_text().splitlines()
    slow = [
        n for n, line in enumerate(script) if line.startswith('"${pip[@]}"') or 'PYTHONWARNINGS=ignore "${pip' in line
    ]
    steps = {script[n]: script[n - 1] for n in slow}
    assert len(steps) == 3  # pip itself, torch, storybot
    for command, said in steps.items():
        assert said.startswith("echo "), command
        if "torch" in command or "-e" in command:
            assert "may take a minute" in said, said
