"""The command line: argv -> subcommands; errors -> one line and an exit code. Nothing else knows argv."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.config import Settings
from bot.errors import ConfigError, StorybotError

if TYPE_CHECKING:  # imported where used: `storybot --help` and `rebuild` need no retrieval stack
    from bot.service import StorybotService

log = logging.getLogger("storybot")

EXIT_OK, EXIT_ERROR = 0, 1  # StorybotError subclasses carry their own exit code (2 for config, corpus, index)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storybot",
        description="Ask a news story questions; every answer is quoted from the article with its source.",
        epilog="With no command, storybot opens the interactive chat.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = commands.add_parser("ask", help="answer one question, or each line of stdin")
    ask.add_argument("question", nargs="*", help="the question (omit it to read one per stdin line)")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    commands.add_parser("chat", help="the interactive chat (the default)")
    commands.add_parser("rebuild", help="rebuild the index from the corpus")
    commands.add_parser("telegram", help="run the Telegram bot (long polling)")
    evaluate = commands.add_parser("eval", help="score answers on a question set (our JSON Lines, or SQuAD 2.0 JSON)")
    evaluate.add_argument("file", type=Path, help="questions: .jsonl ({q, expect, doc}) or SQuAD 2.0 .json")
    evaluate.add_argument("--split", choices=["train", "dev", "test"], help="SQuAD: only the articles of this split")
    evaluate.add_argument("--corpus", type=Path, help="JSON Lines: the articles to answer from (default: the corpus)")
    evaluate.add_argument("--failures", action="store_true", help="list the questions answered wrong")
    train = commands.add_parser("train-reader", help="fine-tune the answer reader from the bundled MiniLM weights")
    train.add_argument("--squad", type=Path, required=True, help="the SQuAD 2.0 sample (train-sample.json)")
    train.add_argument("--out", type=Path, required=True, help="folder for the weights, reader.json and model card")
    train.add_argument("--steps", type=int, default=1000, help="training steps of 32 pairs (default 1000)")
    train.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    fit = commands.add_parser("fit-scorer", help="fit the answer scorer and its threshold on the tune questions")
    fit.add_argument("--squad", type=Path, required=True, help="the SQuAD 2.0 sample (its dev articles are used)")
    bench = commands.add_parser("bench", help="measure latency, cold start, rebuild time and memory")
    bench.add_argument("--questions", type=Path, help="JSON Lines questions (default: the bundled list)")
    bench.add_argument("--rounds", type=int, default=5, help="passes over the questions (default 5)")
    bench.add_argument("--telegram-load", action="store_true", help="also run 20 chats x 10 questions over HTTP")
    return parser


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid settings ({problems}); see .env.example") from None


def _variable(location: tuple[int | str, ...]) -> str:
    """The environment variable behind a settings field, for error messages."""
    name = str(location[0]).upper() if location else "?"
    return name if name.startswith("TELEGRAM_") else f"STORYBOT_{name}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `storybot` and `python -m bot`."""
    args = _parser().parse_args(argv)
    # Bad bytes on stdin must not end a chat or a batch: read them as replacement characters.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"storybot: {error}", file=sys.stderr)
        return error.exit_code
    from bot.logs import configure_logging

    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    configure_logging(settings.log_level, secrets=[token])
    try:
        return _run(args, settings)
    except StorybotError as error:
        log.debug("command failed", exc_info=True)
        print(f"storybot: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `storybot ask ... | head` closed the pipe: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug: the traceback goes to a file, the user gets one line
        where = _save_traceback(settings.data_dir)
        print(f"storybot: unexpected error: {type(error).__name__}: {error} (details in {where})", file=sys.stderr)
        return EXIT_ERROR


def _save_traceback(data_dir: Path) -> str:
    import traceback

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "storybot-error.log"
        with open(path, "a", encoding="utf-8") as file:
            file.write(traceback.format_exc() + "\n")
        return str(path)
    except OSError:
        log.error("unexpected error", exc_info=True)
        return "the log above"


def _run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command or "chat"
    if command == "rebuild":
        return _rebuild(settings)
    if command == "bench":
        from bot.devtools.bench import run_bench

        return run_bench(settings, args.questions, args.rounds, args.telegram_load)
    if command == "train-reader":
        from bot.devtools.train_reader import Recipe, run_train_reader

        run_train_reader(args.squad, args.out, Recipe(steps=args.steps, seed=args.seed), _say)
        return EXIT_OK
    if command == "fit-scorer":
        from bot.devtools.fit_scorer import run_fit_scorer

        run_fit_scorer(settings, args.squad, _say)
        return EXIT_OK
    if command == "telegram":
        from bot.telegram.app import run_polling

        return run_polling(settings)

    from bot.service import StorybotService

    if command == "chat" and sys.stdin.isatty() and sys.stderr.isatty():
        print("Loading the articles and the model...", file=sys.stderr, flush=True)  # a few seconds, once
    service = StorybotService.load(settings)
    if command == "ask":
        return _ask(service, args)
    if command == "eval":
        return _eval(service, args)
    return _chat(service, settings)


def _ask(service: StorybotService, args: argparse.Namespace) -> int:
    from bot.console import Style, answer_batch

    style = Style(enabled=_colour(sys.stdout) and not args.json)

    def write(text: str) -> None:
        print(text, flush=True)

    if args.question:
        answer_batch(service, [" ".join(args.question)], write, args.json, style)
        return EXIT_OK
    if sys.stdin.isatty():
        print("storybot: reading questions from stdin, one per line (Ctrl-D to finish)", file=sys.stderr)
    answer_batch(service, sys.stdin, write, args.json, style)
    return EXIT_OK


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _eval(service: StorybotService, args: argparse.Namespace) -> int:
    import tempfile

    from bot.evaluation import format_failures, format_report, load_question_set, run_eval, service_for

    question_set = load_question_set(args.file, args.split, args.corpus)
    with tempfile.TemporaryDirectory(prefix="storybot-eval-") as work:
        set_service = service_for(question_set, service, Path(work))
        results = run_eval(set_service, question_set.cases)
    print(format_report(question_set.name, results, service.threshold))
    if args.failures:
        print()
        print(format_failures(results))
    return EXIT_OK


def _chat(service: StorybotService, settings: Settings) -> int:
    from bot.console import Style, history_file, run_chat
    from bot.feedback import FeedbackLog

    style = Style(enabled=_colour(sys.stdout))
    feedback = FeedbackLog(settings.data_dir)
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            history: FileHistory | InMemoryHistory = FileHistory(str(history_file(settings.data_dir)))
        except OSError:
            history = InMemoryHistory()
        prompt_session: PromptSession[str] = PromptSession(history=history)

        def read_line(prompt: str) -> str:
            return prompt_session.prompt(prompt)

        run_chat(service, read_line, print, style, feedback)
    else:
        run_chat(service, _plain_read_line, print, style, feedback)
    return EXIT_OK


def _plain_read_line(prompt: str) -> str:
    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def _colour(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def _rebuild(settings: Settings) -> int:
    from tqdm import tqdm

    from bot.indexing.embedding import SentenceTransformerEmbedder
    from bot.service import rebuild_index

    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="embedding", unit="text", file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    report = rebuild_index(settings, embedder, progress)
    if bar is not None:
        bar.close()
    index = report.index
    print(
        f"Rebuilt {settings.index_dir}: {len(index.documents)} document(s), {len(index.chunks)} chunks, "
        f"{len(index.sentences)} sentences, model {index.manifest.model}, {report.seconds:.1f}s"
    )
    for skipped in report.skipped:
        print(f"  skipped {skipped.name}: it {skipped.reason}")
    return EXIT_OK
