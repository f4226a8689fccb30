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

from bot import status
from bot.config import Settings
from bot.errors import ConfigError, IndexDamagedError, StorybotError

if TYPE_CHECKING:  # imported where used: `storybot --help` and `rebuild` need no retrieval stack
    from bot.answering.stories import Story, StoryCatalogue
    from bot.service import StorybotService

log = logging.getLogger("storybot")

EXIT_OK, EXIT_ERROR = 0, 1  # StorybotError subclasses carry their own exit code (2 for config, corpus, index)
EXIT_BAD_INPUT = 2  # `ask` was given nothing it could ask: an empty question, or none that is a question
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a process ended by SIGINT


EXAMPLES = """\
examples:
  storybot                                   chat about the articles in corpus/
  storybot ask "What did Biden warn?"        answer one question
  storybot ask --json < questions.txt        one JSON object per stdin line
  storybot stories                           list the stories (key, headline, outlet, date), newest first
  storybot --story KEY                       chat about one story alone
  storybot ask --story KEY "Who won?"        answer from one story alone
  storybot rebuild                           rebuild the index after changing corpus/
  storybot eval tests/data/dev.jsonl         score answers against expected ones
  storybot telegram                          run the Telegram bot (TELEGRAM_BOT_TOKEN in .env)

exit codes: 0 done, 1 unexpected error, 2 a setting, the corpus, the index or the question needs fixing,
130 Ctrl-C.
Settings come from STORYBOT_* environment variables and .env (see .env.example).
"""
EVAL_FILE_HELP = (
    'a JSON Lines file, one question per line: {"q": "...", "expect": ["a phrase the answer must hold", ...]}, '
    'or "expect": null for a question the articles cannot answer (see tests/data/dev.jsonl); or a SQuAD 2.0 '
    ".json file, whose articles are the corpus"
)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("storybot")
    except Exception:  # running from a checkout that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    # argparse rather than Click or Typer: the commands are few and flat, main(argv) -> int stays a plain
    # function the tests call in-process, and it adds no dependency to an install that is already heavy.
    parser = argparse.ArgumentParser(
        prog="storybot",
        description="Ask a news story questions; every answer is quoted from the article with its source.\n"
        "With no command, storybot opens the interactive chat.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--story", metavar="KEY", help="chat about this story alone (its key: see `storybot stories`)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    ask = command(
        "ask",
        "answer one question, or each line of stdin",
        "Answer QUESTION, or each stdin line when no question is given, with one model load for all.\n"
        'A stdin line may be {"q": "...", "session": "id", "story": "key"}: lines of one session share\n'
        "follow-up history; a line with a story key is answered from that story alone.",
    )
    ask.add_argument("question", nargs="*", metavar="QUESTION", help="the question (omit it: one per stdin line)")
    ask.add_argument(
        "--json", action="store_true", help="print one JSON object per question (the fields are in docs/using.md)"
    )
    ask.add_argument(
        "--story", dest="ask_story", metavar="KEY", help="answer from this story alone (see `storybot stories`)"
    )
    chat = command(
        "chat",
        "the interactive chat (the default)",
        "Chat about the articles: follow-up questions, 'sources', 'story [WORDS|all]', 'reset',\n"
        "'feedback good|bad', 'exit'.",
    )
    chat.add_argument("--story", dest="chat_story", metavar="KEY", help="chat about this story alone")
    stories = command(
        "stories",
        "list the stories: key, headline, outlet and date, newest first",
        "List every story, newest first: its key (for --story and links), headline, outlet and date.\n"
        "A corpus file whose name is no usable key is named on stderr; it is still answered from.",
    )
    stories.add_argument("--json", action="store_true", help="one JSON object per story, one per line")
    rebuild = command(
        "rebuild",
        "rebuild the index from the corpus",
        "Read corpus/, split it into chunks, embed them and swap the new index in atomically. Only new and "
        "changed articles are read and embedded, unless --full.",
    )
    rebuild.add_argument(
        "--full",
        action="store_true",
        help="start from scratch instead of from the current build (texts embedded before still come from the cache)",
    )
    telegram = command(
        "telegram",
        "run the Telegram bot (long polling, or a webhook with --webhook)",
        "Run the Telegram bot with the token in TELEGRAM_BOT_TOKEN until Ctrl-C: long polling, or with\n"
        "--webhook URL (or STORYBOT_WEBHOOK_URL) Telegram POSTs updates to URL, which a reverse proxy passes\n"
        "to STORYBOT_WEBHOOK_LISTEN:STORYBOT_WEBHOOK_PORT (127.0.0.1:8443).",
    )
    telegram.add_argument("--webhook", metavar="URL", help="receive updates at this public https URL")
    evaluate = command(
        "eval",
        "score answers on a question set (our JSON Lines, or SQuAD 2.0 JSON)",
        "Ask every question of FILE and report the answer shown right (the answer line holds a gold answer or\n"
        "reaches word F1 0.5 with one), answer accuracy, hit@3, abstention, false refusals, span EM/F1, AUC and the\n"
        "accuracy/coverage curve over the answering threshold.",
    )
    evaluate.add_argument("file", type=Path, metavar="FILE", help=EVAL_FILE_HELP)
    evaluate.add_argument("--split", choices=["train", "dev", "test"], help="SQuAD: only the articles of this split")
    evaluate.add_argument("--corpus", type=Path, help="JSON Lines: the articles to answer from (default: the corpus)")
    evaluate.add_argument("--failures", action="store_true", help="list the questions answered wrong")
    train = command(
        "train-reader",
        "fine-tune the answer reader (sentence and span) from the bundled MiniLM weights",
        "Train storybot's reader (a MiniLM cross-encoder with a span head) on the train articles of the SQuAD\n"
        "files given (1.1 and 2.0 alike; dev and test articles are always left out) and our news training\n"
        "questions, with a fixed seed; write the weights, reader.json and MODEL_CARD.md to OUT.",
    )
    train.add_argument(
        "--squad", type=Path, nargs="+", required=True, metavar="FILE", help="SQuAD JSON files (1.1 or 2.0)"
    )
    train.add_argument("--out", type=Path, required=True, help="folder for the weights, reader.json and model card")
    train.add_argument("--steps", type=_count, default=3000, help="training steps (default 3000)")
    train.add_argument("--questions-per-step", type=_count, default=8, help="questions per step (default 8)")
    train.add_argument("--candidates", type=_count, default=6, help="candidate sentences per question (default 6)")
    train.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    train.add_argument("--learning-rate", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    train.add_argument(
        "--context",
        default="title",
        help="what the reader reads before each sentence: 'title' (its article's, the default) or 'none'",
    )
    train.add_argument(
        "--unanswerable-share",
        type=_share,
        default=0.35,
        help="share (0-1) of the questions read that are unanswerable (default 0.35)",
    )
    train.add_argument(
        "--swapped",
        type=_share,
        default=0.03,
        help="share (0-1) of answerable SQuAD questions also asked with a name swapped, as unanswerable (default 0.03)",
    )
    train.add_argument(
        "--frozen-layers", type=int, choices=range(0, 6), default=0, help="lower layers kept frozen (default 0)"
    )
    train.add_argument("--max-length", type=_count, default=None, help="tokens per (question, sentence) pair")
    train.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    fit = command(
        "fit-scorer",
        "fit the answer scorer and its threshold on the tune questions",
        "Fit the logistic-regression scorer of STORYBOT_READER_MODEL on the tune questions and the SQuAD dev\n"
        "articles; write scorer.json (weights, threshold, calibration) beside the reader.",
    )
    fit.add_argument(
        "--squad", type=Path, nargs="+", required=True, metavar="FILE", help="SQuAD files (their dev articles are used)"
    )
    bench = command(
        "bench",
        "measure latency, cold start, rebuild time and memory",
        "Measure warm answer latency, cold start, rebuild time and peak memory on this machine.\n"
        "With --scale N: on a generated corpus of N articles around the seed, with its own index (one row per N).",
    )
    bench.add_argument(
        "--questions", type=Path, help="JSON Lines questions (default: the bundled list; with --scale, dev.jsonl)"
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="passes over the questions (default 5); with --scale, also the cold-start processes (at most 3)",
    )
    bench.add_argument("--telegram-load", action="store_true", help="also run 20 chats x 10 questions over HTTP")
    bench.add_argument(
        "--scale",
        type=_article_counts,
        metavar="N[,N...]",
        help="instead: bench a generated corpus of N articles around the seed (rebuilds, encode floor, cold start, "
        "latency, memory, disk, needle accuracy), one table row per N",
    )
    bench.add_argument(
        "--scale-dir",
        type=Path,
        default=Path(".cache") / "scale",
        help="where the generated corpora and their own indexes are kept (default .cache/scale)",
    )
    bench.add_argument(
        "--no-full-rebuild",
        action="store_true",
        help="with --scale: reuse an index built by an earlier run instead of timing a rebuild from nothing",
    )
    return parser


def _article_counts(value: str) -> list[int]:
    """`--scale 1,1000,10000` -> [1, 1000, 10000]."""
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected article counts like 1,1000,10000, not {value!r}")
    return counts


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid settings ({problems}); see .env.example") from None


def _with_webhook(settings: Settings, url: str) -> Settings:
    """The settings with --webhook's URL, checked as STORYBOT_WEBHOOK_URL would be."""
    try:
        return Settings.model_validate({**settings.model_dump(), "webhook_url": url})
    except ValidationError as error:
        raise ConfigError(f"--webhook {url}: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None


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

    configure_logging(settings.log_level, secrets=settings.secret_values())
    try:
        return _run(args, settings)
    except StorybotError as error:
        if isinstance(error, IndexDamagedError):
            log.info("damaged index: %s", error.detail)  # the library's own words, for the log only
        log.debug("command failed", exc_info=True)
        print(f"storybot: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `storybot ask ... | head` closed the pipe: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # a bug: the traceback goes to a file, the user gets one line
        where = _save_traceback(settings.data_dir)
        print(f"storybot: unexpected error: {type(error).__name__}: {error} (details in {where})", file=sys.stderr)
        return EXIT_ERROR


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


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
        return _rebuild(settings, args.full)
    if command == "bench" and args.scale:
        from bot.devtools.scale import run_scale_bench

        if args.telegram_load:
            raise ConfigError("--telegram-load runs on your corpus; run it without --scale")
        return run_scale_bench(
            settings, args.scale, args.scale_dir, args.questions, args.rounds, not args.no_full_rebuild, _say
        )
    if command == "bench":
        from bot.devtools.bench import run_bench

        return run_bench(settings, args.questions, args.rounds, args.telegram_load)
    if command == "train-reader":
        from bot.answering.reader import READER_CONTEXTS
        from bot.devtools.train_reader import Recipe, max_length_for, run_train_reader

        if args.context not in READER_CONTEXTS:
            raise ConfigError(f"--context must be one of {', '.join(READER_CONTEXTS)}, not {args.context!r}")
        recipe = Recipe(
            steps=args.steps,
            questions_per_step=args.questions_per_step,
            candidates=args.candidates,
            learning_rate=args.learning_rate,
            seed=args.seed,
            context=args.context,
            max_length=args.max_length or max_length_for(args.context),
            unanswerable_share=args.unanswerable_share,
            swapped=args.swapped,
            frozen_layers=args.frozen_layers,
            threads=args.threads,
        )
        run_train_reader(args.squad, args.out, recipe, _say)
        return EXIT_OK
    if command == "fit-scorer":
        from bot.devtools.fit_scorer import run_fit_scorer

        run_fit_scorer(settings, args.squad, _say)
        return EXIT_OK
    if command == "telegram":
        from bot.telegram.app import run_bot

        if args.webhook:
            settings = _with_webhook(settings, args.webhook)
        run_bot(settings)
        return EXIT_OK
    if command == "ask":
        return _ask(settings, args)

    from bot.service import StorybotService, load_story_catalogue

    if command == "stories":
        # Read from the index alone when it is current: listing the stories needs no model.
        return _stories(load_story_catalogue(settings) or StorybotService.load(settings).catalogue, args.json)
    key = getattr(args, "chat_story", None) or args.story
    if command == "chat" and key is not None and (catalogue := load_story_catalogue(settings)) is not None:
        catalogue.get(key)  # an unknown key is said at once, before the model loads (exit code 2)
    service = StorybotService.load(settings)  # says "Loading the model..." before the silent seconds
    if command == "eval":
        return _eval(service, args)
    story = service.story(key) if key is not None else None  # an unknown key: its message, exit code 2
    return _chat(service, settings, story)


def _stories(catalogue: StoryCatalogue, as_json: bool) -> int:
    import json

    from bot.console import format_story
    from bot.terminal import without_surrogates

    if catalogue.problems:  # each was named, with why, when the index was built
        status.show("Some corpus files have no story key; `storybot rebuild` names each and why.")
    for story in catalogue.stories:
        if as_json:
            data = {"key": story.key, "title": story.title, "outlet": story.outlet, "date": story.date}
            print(without_surrogates(json.dumps(data, ensure_ascii=False)))
        else:
            print(format_story(story))
    return EXIT_OK


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    import functools

    from bot.console import BatchQuestion, Style, answer_batch
    from bot.service import StorybotService, load_story_catalogue

    style = Style(enabled=_colour(sys.stdout) and not args.json, width=_width(sys.stdout))
    # Loaded for the first question worth asking: bad input is refused without waiting for the model.
    service = functools.cache(lambda: StorybotService.load(settings))
    story = args.ask_story if args.ask_story is not None else args.story
    if story is not None and not args.json:
        # An unknown key stops here, with its message and exit code 2; with --json each question gets it
        # as its JSON object's "error", as a line's own "story" key does.
        catalogue = load_story_catalogue(settings)  # from the index alone when it is current: no model wait
        (catalogue.get if catalogue is not None else service().story)(story)

    def write(text: str) -> None:
        print(text, flush=True)

    if args.question:
        item = BatchQuestion(" ".join(args.question), None)
        tally = answer_batch(service, settings, [item], write, args.json, style, story)
        return EXIT_OK if tally.asked else EXIT_BAD_INPUT
    if sys.stdin.isatty():
        print("storybot: reading questions from stdin, one per line (Ctrl-D to finish)", file=sys.stderr)
    tally = answer_batch(service, settings, sys.stdin, write, args.json, style, story)
    if not tally.lines:
        print('storybot: no question to answer: give one (storybot ask "...") or one per stdin line', file=sys.stderr)
    return EXIT_OK if tally.asked else EXIT_BAD_INPUT


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


def _chat(service: StorybotService, settings: Settings, story: Story | None = None) -> int:
    from bot.console import Style, history_file, run_chat
    from bot.feedback import FeedbackLog

    style = Style(enabled=_colour(sys.stdout), width=_width(sys.stdout))
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

        run_chat(service, read_line, print, style, feedback, story)
    else:
        run_chat(service, _plain_read_line, print, style, feedback, story)
    return EXIT_OK


def _plain_read_line(prompt: str) -> str:
    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    line = line.rstrip("\n")
    if not sys.stdin.isatty():
        # Piped questions are not shown by a terminal: echo each one, so the transcript reads "? question"
        # then its answer instead of answers printed on the prompt line.
        print(line, flush=True)
    return line


def _width(stream: object) -> int:
    """Text is wrapped at 88 columns, or at a narrower terminal's width."""
    if not getattr(stream, "isatty", lambda: False)():
        return 88
    import shutil

    return max(40, min(88, shutil.get_terminal_size((88, 24)).columns))


def _colour(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def _rebuild(settings: Settings, full: bool = False) -> int:
    import time

    started = time.perf_counter()  # the whole command, imports and model load included: what the user waited

    from tqdm import tqdm

    from bot.indexing.embedding import SentenceTransformerEmbedder
    from bot.service import rebuild_index

    loading = time.perf_counter()
    status.loading_model()
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    loaded = time.perf_counter()
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="embedding", unit="text", file=sys.stderr, leave=True)
        bar.update(done - bar.n)

    report = rebuild_index(settings, embedder, progress, full=full)
    if bar is not None:
        bar.close()
    index = report.index
    skipped = f"; {len(report.skipped)} file(s) skipped, named above" if report.skipped else ""
    print(
        f"Rebuilt {status.folder(settings.index_dir)}: {len(index.documents)} document(s), {len(index.chunks)} "
        f"chunks, {len(index.sentences)} sentences, model {index.manifest.model}; {report.reused} article(s) "
        f"unchanged, {report.embedded} texts embedded{skipped}. "
        + _time_spent(time.perf_counter() - started, loaded - loading, report.seconds)
    )
    return EXIT_OK


def _time_spent(total: float, loading: float, building: float) -> str:
    """ "8.9s in all (7.6s loading the model, 0.2s reading, embedding and saving, 1.1s starting up)".

    The parts are rounded first and the total is their sum, so what is printed adds up.
    """
    load, build = round(loading, 1), round(building, 1)
    rest = max(0.0, round(total - loading - building, 1))  # imports before the model: the rest of the wait
    return (
        f"{load + build + rest:.1f}s in all ({load:.1f}s loading the model, {build:.1f}s reading, embedding "
        f"and saving, {rest:.1f}s starting up)"
    )
