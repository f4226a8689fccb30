"""How often the English check (`bot.answering.intake.reads_as_english`) flags our English questions.

    python -m bot.devtools.english_check [--show] [FILE ...]

Every file given (our JSON Lines question sets, SQuAD JSON) is counted question by question; SQuAD files
by split of their articles (`bot/squad.py`), so what the check was fitted on stands apart from what it is
reported on. A set whose folder is named `not_english` counts the questions caught instead. With no file:
every question set in tests/data, ../shared/eval and ../shared/data.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from bot.answering.intake import reads_as_english
from bot.squad import SQUAD_SPLIT, is_squad_file, load_squad

ROOT = Path(__file__).resolve().parents[2]


def default_files() -> list[Path]:
    """Our question sets and the SQuAD files beside the repository, when they are there."""
    data = ROOT / "tests" / "data"
    shared = ROOT.parent / "shared"
    files = [*sorted(data.glob("*.jsonl")), *sorted(data.glob("*/questions.jsonl")), shared / "eval" / "dev.jsonl"]
    return [path for path in [*files, *sorted((shared / "data").glob("*/*.json"))] if path.is_file()]


def question_sets(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(name, questions) of a file: one set for our JSON Lines, one per split for SQuAD."""
    if is_squad_file(path):
        splits: dict[str, list[str]] = {}
        for article in load_squad(path):
            split = SQUAD_SPLIT.get(article.title, "train")
            splits.setdefault(split, []).extend(q.question for q in article.questions)
        for split, questions in sorted(splits.items()):
            yield f"{path.parent.name}/{path.name} ({split} articles)", questions
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    yield str(name), [json.loads(line)["q"] for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help="question sets (default: all we have)")
    parser.add_argument("--show", action="store_true", help="print each false alarm, and each foreign question missed")
    args = parser.parse_args()
    for path in args.files or default_files():
        foreign = path.parent.name == "not_english"
        for name, questions in question_sets(path):
            flagged = [q for q in questions if not reads_as_english(q)]
            print(f"{name}: {len(flagged)} {'caught' if foreign else 'false alarms'} of {len(questions)}")
            if args.show:  # what went wrong: the false alarms, or the foreign questions missed
                for question in (q for q in questions if (q in flagged) != foreign):
                    print(f"    {question}")


if __name__ == "__main__":
    main()
