"""What each group of scorer features gains on the held-out sets: refit the scorer without it, compare.

    python -m bot.devtools.ablation --squad ../shared/data/squad2-train-sample/train-sample.json

The scorer is fitted on the tune questions (as `storybot fit-scorer` does) with every feature, then
again without each group; each fit is scored on the test splits' candidates (the news test set and the
SQuAD test articles), from the same reader outputs. A group whose removal does not cost right answers
or right refusals on the held-out sets earns nothing and should go.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.answering.scorer import FEATURES, Scorer
from bot.config import Settings
from bot.devtools.fit_scorer import TuneSet, collect, fit
from bot.evaluation import candidate_rows, load_question_set, service_for
from bot.service import StorybotService

ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_TEST = ROOT / "tests" / "data" / "news_test"
GROUPS = {
    "reader": ("reader", "reader_gap"),
    "retrieval scores": ("dense", "lexical", "hybrid"),
    "answer type and span": ("type_asked", "span"),
    "names in the sentence": ("names_in_sentence",),
    "names the articles lack (rules as features)": (
        "names_unknown",
        "figures_unknown",
        "names_apart",
        "attribute_missing",
    ),
    "header line": ("header",),
}

Set = TuneSet


def _keep(sets: Sequence[Set], columns: list[int]) -> list[Set]:
    return [(name, x[:, columns], y, ids, cases, spans) for name, x, y, ids, cases, spans in sets]


def score(result: dict, columns: list[int], test: Set) -> tuple[int, int, int, int, int]:
    """(answerable, right, unanswerable, refused right, false refusals) of a fitted scorer on a test set."""
    scorer = Scorer(
        tuple(result["mean"]),
        tuple(result["scale"]),
        tuple(result["selection"]),
        tuple(result["answering"]),
        result["answering_bias"],
        result["threshold"],
    )
    _, x, y, ids, cases, _ = test
    answerable = right = unanswerable = refused = false_refusals = 0
    for number, case in enumerate(cases):
        rows = ids == number
        if not rows.any():
            refusal = True
            chosen_right = False
        else:
            scores, probabilities = scorer.choose(x[rows][:, columns])
            best = int(np.argmax(scores))
            refusal = probabilities[best] < scorer.threshold
            chosen_right = bool(y[rows][best])
        if case.expect is None:
            unanswerable += 1
            refused += refusal
        else:
            answerable += 1
            right += (not refusal) and chosen_right
            false_refusals += refusal
    return answerable, right, unanswerable, refused, false_refusals


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, nargs="+", required=True)
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    quiet = lambda _: None  # noqa: E731
    tune = collect(settings, args.squad, quiet)
    base = StorybotService.load(settings)
    work = Path(tempfile.mkdtemp(prefix="storybot-ablation-"))
    tests = []
    try:
        for name, question_set in (
            ("news test", load_question_set(NEWS_TEST / "questions.jsonl", corpus_dir=NEWS_TEST / "corpus")),
            *((f"SQuAD test {path.name}", load_question_set(path, split="test")) for path in args.squad),
        ):
            service = service_for(question_set, base, work / name.replace(" ", "-"))
            rows = candidate_rows(service, question_set.cases)
            tests.append((name, rows.features, rows.labels, rows.ids, question_set.cases, rows.spans))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'scorer features':<46}" + "".join(f"{t[0] + ' right/refused/false':>34}" for t in tests))
    variants = [("all", list(range(len(FEATURES))))]
    variants += [
        (f"without {group}", [i for i, f in enumerate(FEATURES) if f not in names]) for group, names in GROUPS.items()
    ]
    for label, columns in variants:
        result = fit(_keep(tune, columns), quiet)
        cells = []
        for test in tests:
            answerable, right, unanswerable, refused, false_refusals = score(result, columns, test)
            cells.append(f"{right}/{answerable}  {refused}/{unanswerable}  {false_refusals}")
        print(f"{label:<46}" + "".join(f"{c:>34}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
