"""`storybot fit-scorer`: fit the answer scorer (logistic regression) and its threshold on the tune questions.

Tune questions: our own tune split (tests/data/dev.jsonl, heldout.jsonl, fixture_questions.jsonl) and the
SQuAD sample's dev articles. Never the test splits, never the reader's training questions (its logits
on those would be over-confident). Weights, threshold, cross-validated figures and a calibration table
go to scorer.json beside the reader.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.answering.reader import reader_path
from bot.answering.scorer import FEATURES, SCORER_FILE
from bot.config import Settings
from bot.evaluation import EvalCase, candidate_rows, load_question_set, service_for
from bot.service import StorybotService

Say = Callable[[str], None]
ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
# Our tune split, each with the corpus it is asked over.
TUNE_SETS = (
    (DATA / "dev.jsonl", ROOT / "corpus"),
    (DATA / "heldout.jsonl", ROOT / "corpus"),
    (DATA / "fixture_questions.jsonl", None),  # the seed article and the fixture articles together
)
NEWS_WEIGHT = 3.0  # a news question counts three SQuAD questions: news is what storybot is for


def _fixture_corpus(work: Path) -> Path:
    corpus = work / "fixture-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for path in [ROOT / "corpus" / "cgtn-putin-nato-talks.txt", *sorted((DATA / "fixture_corpus").iterdir())]:
        shutil.copy(path, corpus / path.name)
    return corpus


def provisional_scorer(directory: Path) -> None:
    """A scorer that trusts the reader alone, so a fresh reader can be loaded to fit its real scorer."""
    weights = [1.0 if name == "reader" else 0.0 for name in FEATURES]
    data = {
        "features": list(FEATURES),
        "weights": weights,
        "bias": 0.0,
        "threshold": 0.5,
        "mean": [0.0] * len(FEATURES),
        "scale": [1.0] * len(FEATURES),
        "provisional": True,
    }
    (directory / SCORER_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def collect(
    settings: Settings, squad_file: Path, say: Say
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[EvalCase]]]:
    """(set name, features, labels, question ids, cases) for every tune set."""
    if not (reader_path(settings.reader_model) / SCORER_FILE).exists():
        provisional_scorer(reader_path(settings.reader_model))
    base = StorybotService.load(settings)
    work = Path(tempfile.mkdtemp(prefix="storybot-fit-"))
    sets = []
    try:
        for path, corpus in TUNE_SETS:
            question_set = load_question_set(path, corpus_dir=corpus or _fixture_corpus(work))
            service = service_for(question_set, base, work / path.stem)
            say(f"  {path.name}: {len(question_set.cases)} questions")
            sets.append((path.name, *candidate_rows(service, question_set.cases), question_set.cases))
        question_set = load_question_set(squad_file, split="dev")
        service = service_for(question_set, base, work / "squad-dev")
        say(f"  SQuAD dev articles: {len(question_set.cases)} questions")
        sets.append(("squad-dev", *candidate_rows(service, question_set.cases), question_set.cases))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sets


def _best_per_question(probabilities: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> dict[int, tuple[float, bool]]:
    best: dict[int, tuple[float, bool]] = {}
    for p, label, qid in zip(probabilities, labels, ids, strict=True):
        if int(qid) not in best or p > best[int(qid)][0]:
            best[int(qid)] = (float(p), bool(label))
    return best


def fit(sets: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[EvalCase]]], say: Say) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    features = np.vstack([s[1] for s in sets])
    labels = np.concatenate([s[2] for s in sets])
    offset, groups, weights = 0, [], []
    answerable: dict[int, bool] = {}
    for name, _, set_labels, ids, cases in sets:
        groups += [int(i) + offset for i in ids]
        weights += [1.0 if name.startswith("squad") else NEWS_WEIGHT] * len(set_labels)
        for number, case in enumerate(cases):
            answerable[number + offset] = case.expect is not None
        offset += len(cases)
    group_array, weight_array = np.asarray(groups), np.asarray(weights)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    standard = (features - mean) / scale

    # Out-of-fold probabilities (folds by question), to choose C and the threshold without fitting to them.
    best_c, best_loss, out_of_fold = 1.0, float("inf"), np.zeros(len(labels))
    for c in (0.01, 0.1, 1.0, 10.0):
        predicted = np.zeros(len(labels))
        for train_rows, test_rows in GroupKFold(n_splits=5).split(standard, labels, group_array):
            model = LogisticRegression(C=c, max_iter=2000)
            model.fit(standard[train_rows], labels[train_rows], sample_weight=weight_array[train_rows])
            predicted[test_rows] = model.predict_proba(standard[test_rows])[:, 1]
        eps = 1e-6
        loss = -np.average(
            labels * np.log(predicted + eps) + (1 - labels) * np.log(1 - predicted + eps), weights=weight_array
        )
        if loss < best_loss:
            best_c, best_loss, out_of_fold = c, float(loss), predicted
    model = LogisticRegression(C=best_c, max_iter=2000).fit(standard, labels, sample_weight=weight_array)

    best = _best_per_question(out_of_fold, labels, group_array)
    threshold, table = choose_threshold(best, answerable, say)
    calibration = calibration_table(best, answerable)
    return {
        "features": list(FEATURES),
        "weights": [round(float(w), 6) for w in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
        "threshold": threshold,
        "mean": [float(m) for m in mean],
        "scale": [float(s) for s in scale],
        "C": best_c,
        "cv_log_loss": round(best_loss, 4),
        "fitted_on": [s[0] for s in sets],
        "threshold_table": table,
        "calibration": calibration,
    }


def choose_threshold(
    best: dict[int, tuple[float, bool]], answerable: dict[int, bool], say: Say
) -> tuple[float, list[Any]]:
    """The threshold with the most right answers plus right refusals, out of fold, among those refusing
    at most 5% of the answerable questions."""
    table = []
    chosen, chosen_score = 0.5, -1.0
    for t in [round(0.05 * i, 2) for i in range(1, 20)]:
        right = sum(1 for q, (p, ok) in best.items() if answerable[q] and ok and p >= t)
        refused_right = sum(1 for q, (p, _) in best.items() if not answerable[q] and p < t)
        false_refusals = sum(1 for q, (p, _) in best.items() if answerable[q] and p < t)
        n_answerable = sum(answerable[q] for q in best)
        n_unanswerable = len(best) - n_answerable
        row = [t, right, refused_right, false_refusals, n_answerable, n_unanswerable]
        table.append(row)
        score = right / max(1, n_answerable) + refused_right / max(1, n_unanswerable)
        if false_refusals <= 0.05 * n_answerable and score > chosen_score:
            chosen, chosen_score = t, score
    say(f"  threshold {chosen} (out-of-fold: right answers + right refusals, at most 5% false refusals)")
    return chosen, table


def calibration_table(best: dict[int, tuple[float, bool]], answerable: dict[int, bool]) -> list[list[float]]:
    """[bin low, bin high, questions, mean predicted probability, share whose best sentence is right]."""
    rows = []
    for low in np.arange(0.0, 1.0, 0.1):
        inside = [
            (p, ok and answerable[q])
            for q, (p, ok) in best.items()
            if low <= p < low + 0.1 or (low >= 0.9 and p >= 1.0)
        ]
        if inside:
            rows.append(
                [
                    round(float(low), 1),
                    round(float(low) + 0.1, 1),
                    len(inside),
                    round(float(np.mean([p for p, _ in inside])), 3),
                    round(float(np.mean([ok for _, ok in inside])), 3),
                ]
            )
    return rows


def run_fit_scorer(settings: Settings, squad_file: Path, say: Say) -> dict[str, Any]:
    say("Collecting reader candidates on the tune questions...")
    sets = collect(settings, squad_file, say)
    say("Fitting the scorer (logistic regression, 5-fold cross-validation by question)...")
    result = fit(sets, say)
    path = reader_path(settings.reader_model) / SCORER_FILE
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    say("  weights: " + ", ".join(f"{n} {w:+.2f}" for n, w in zip(FEATURES, result["weights"], strict=True)))
    say("  calibration (predicted probability of the best sentence -> share right):")
    for low, high, count, predicted, actual in result["calibration"]:
        say(f"    {low:.1f}-{high:.1f}  {count:>4} questions  predicted {predicted:.2f}  actual {actual:.2f}")
    say(f"Wrote {path}")
    return result
