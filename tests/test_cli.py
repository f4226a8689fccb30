"""The command line through bot.cli.main(argv), in-process; two real subprocesses as smoke tests."""

from __future__ import annotations

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
