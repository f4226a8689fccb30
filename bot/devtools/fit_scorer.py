"""`storybot fit-scorer`: fit the answer scorer (pick and answer models) and its threshold on the tune questions.

Tune questions: our own tune split (tests/data/dev.jsonl, heldout.jsonl, fixture_questions.jsonl), the
SQuAD sample's dev articles and our news training questions (the reader's logits there are optimistic,
but they hold most of our unanswerable questions). Never the test splits. Weights, threshold,
cross-validated figures and a calibration table go to scorer.json beside the reader.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.answering.reader import Span, reader_path
from bot.answering.retrieval import question_kind
from bot.answering.scorer import (
    FEATURES,
    SCORER_FILE,
    SHORT_ANSWER_PRECISION,
    SPAN_TRUST_FEATURES,
    Scorer,
    span_trust_features,
)
from bot.config import Settings
from bot.evaluation import EvalCase, answer_line_right, candidate_rows, load_question_set, service_for
from bot.service import StorybotService

Say = Callable[[str], None]
# (set name, features, labels, question ids, cases, each candidate's sentence and the reader's span in it)
TuneSet = tuple[str, np.ndarray, np.ndarray, np.ndarray, list[EvalCase], list[tuple[str, Span | None]]]
ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
# Our tune split, each with the corpus it is asked over.
TUNE_SETS = (
    (DATA / "dev.jsonl", ROOT / "corpus"),
    (DATA / "heldout.jsonl", ROOT / "corpus"),
    (DATA / "fixture_questions.jsonl", None),  # the seed article and the fixture articles together
    # The reader's news training questions too: its logits there are optimistic, but they hold most of our
    # unanswerable questions (125), without which the scorer cannot learn when names mean "not in the article".
    (DATA / "news_train" / "questions.jsonl", None),
)
NEWS_WEIGHT = 3.0  # a news question counts three SQuAD questions: news is what storybot is for


def _combined_corpus(work: Path, name: str) -> Path:
    """The seed article with the fixture articles (and, for the news training questions, their own)."""
    corpus = work / f"{name}-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    folders = [DATA / "fixture_corpus"] + ([DATA / "news_train" / "corpus"] if name == "news_train" else [])
    for path in [ROOT / "corpus" / "cgtn-putin-nato-talks.txt", *(p for f in folders for p in sorted(f.iterdir()))]:
        shutil.copy(path, corpus / path.name)
    return corpus


def provisional_scorer(directory: Path) -> None:
    """A scorer that trusts the reader alone, so a fresh reader can be loaded to fit its real scorer."""
    n = len(FEATURES)
    data = {
        "features": list(FEATURES),
        "mean": [0.0] * n,
        "scale": [1.0] * n,
        "selection": [1.0 if name == "reader" else 0.0 for name in FEATURES],
        "answering": [1.0 if name == "reader" else 0.0 for name in FEATURES] + [0.0],
        "answering_bias": 0.0,
        "threshold": 0.5,
        "provisional": True,
    }
    (directory / SCORER_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def collect(settings: Settings, squad_files: Sequence[Path], say: Say) -> list[TuneSet]:
    """The candidates of every tune set: ours, and the dev articles of each SQuAD file."""
    try:
        Scorer.load(reader_path(settings.reader_model))
    except (OSError, ValueError, KeyError, TypeError):
        # No scorer yet, or one of another shape: the candidates' features do not depend on it.
        provisional_scorer(reader_path(settings.reader_model))
    base = StorybotService.load(settings)
    work = Path(tempfile.mkdtemp(prefix="storybot-fit-"))
    sets = []
    try:
        for path, corpus in TUNE_SETS:
            name = path.parent.name if path.stem == "questions" else path.stem
            question_set = load_question_set(path, corpus_dir=corpus or _combined_corpus(work, name))
            service = service_for(question_set, base, work / name)
            say(f"  {name}: {len(question_set.cases)} questions")
            rows = candidate_rows(service, question_set.cases)
            sets.append((name, rows.features, rows.labels, rows.ids, question_set.cases, rows.spans))
        for number, squad_file in enumerate(squad_files):
            question_set = load_question_set(squad_file, split="dev")
            name = "squad-dev" + (f"-{number + 1}" if number else "")
            service = service_for(question_set, base, work / name)
            say(f"  SQuAD dev articles of {squad_file.name}: {len(question_set.cases)} questions")
            rows = candidate_rows(service, question_set.cases)
            sets.append((name, rows.features, rows.labels, rows.ids, question_set.cases, rows.spans))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sets


Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # features, labels, qid, weight, answerable


def _stack(sets: Sequence[TuneSet]) -> Rows:
    offset, groups, weights, answerable = 0, [], [], []
    for name, _, labels, ids, cases, _ in sets:
        groups += [int(i) + offset for i in ids]
        weights += [1.0 if name.startswith("squad") else NEWS_WEIGHT] * len(labels)
        answerable += [cases[int(i)].expect is not None for i in ids]
        offset += len(cases)
    features = np.vstack([s[1] for s in sets])
    labels = np.concatenate([s[2] for s in sets])
    return features, labels, np.asarray(groups), np.asarray(weights), np.asarray(answerable)


def fit_selection(
    standard: np.ndarray, labels: np.ndarray, groups: np.ndarray, weights: np.ndarray, c: float
) -> np.ndarray:
    """Conditional logit: per question, a softmax over its candidates should put its mass on the right ones."""
    from scipy.optimize import minimize

    questions = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    questions = [rows for rows in questions if labels[rows].any()]  # only questions with a right candidate teach it

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, gradient = 0.5 * float(w @ w) / c, w / c
        for rows in questions:
            scores = standard[rows] @ w
            top = scores.max()
            p = np.exp(scores - top)
            p /= p.sum()
            right = labels[rows] > 0
            mass = p[right].sum()
            weight = weights[rows[0]]
            total -= weight * np.log(mass + 1e-12)
            q = np.where(right, p / max(mass, 1e-12), 0.0)  # the softmax restricted to the right candidates
            gradient = gradient - weight * (standard[rows].T @ (q - p))
        return total, gradient

    result = minimize(loss, np.zeros(standard.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x)


def _chosen(standard: np.ndarray, groups: np.ndarray, selection: np.ndarray) -> dict[int, tuple[int, float]]:
    """Per question: the row of the chosen candidate and its softmax share."""
    chosen = {}
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        scores = standard[rows] @ selection
        p = np.exp(scores - scores.max())
        p /= p.sum()
        best = int(np.argmax(scores))
        chosen[int(g)] = (int(rows[best]), float(p[best]))
    return chosen


def fit(sets: Sequence[TuneSet], say: Say) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    features, labels, groups, weights, answerable = _stack(sets)
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    standard = (features - mean) / scale
    folds = list(GroupKFold(n_splits=5).split(standard, labels, groups))

    # 1. Selection: the regularisation with the most right choices out of fold (folds by question).
    best_c, best_right, out_of_fold = 1.0, -1.0, {}
    for c in (0.1, 1.0, 10.0, 100.0):
        chosen: dict[int, tuple[int, float]] = {}
        for train_rows, test_rows in folds:
            w = fit_selection(standard[train_rows], labels[train_rows], groups[train_rows], weights[train_rows], c)
            for g, (row, share) in _chosen(standard[test_rows], groups[test_rows], w).items():
                chosen[g] = (int(test_rows[row]), share)
        right = sum(weights[row] * labels[row] for row, _ in chosen.values())
        say(f"  selection C={c}: {right:.0f} weighted right choices out of fold")
        if right > best_right:
            best_c, best_right, out_of_fold = c, right, chosen
    selection = fit_selection(standard, labels, groups, weights, best_c)

    # 2. Answering: is the chosen candidate right? Fitted on the out-of-fold choices, so it learns how
    # often choices it has not seen are right.
    question_ids = sorted(out_of_fold)
    rows = np.asarray([out_of_fold[g][0] for g in question_ids])
    z = np.hstack([standard[rows], np.asarray([[out_of_fold[g][1]] for g in question_ids])])
    target = labels[rows] * answerable[rows]
    z_weights = weights[rows]
    predicted = np.zeros(len(rows))
    for train_q, test_q in GroupKFold(n_splits=5).split(z, target, np.asarray(question_ids)):
        model = LogisticRegression(C=1.0, max_iter=2000).fit(
            z[train_q], target[train_q], sample_weight=z_weights[train_q]
        )
        predicted[test_q] = model.predict_proba(z[test_q])[:, 1]
    answering = LogisticRegression(C=1.0, max_iter=2000).fit(z, target, sample_weight=z_weights)

    best = {g: (float(p), bool(target[i])) for i, (g, p) in enumerate(zip(question_ids, predicted, strict=True))}
    is_answerable = {g: bool(answerable[out_of_fold[g][0]]) for g in question_ids}
    threshold, table = choose_threshold(best, is_answerable, say)
    answered = {g for g, (p, _) in best.items() if p >= threshold}
    chosen_rows = {g: out_of_fold[g][0] for g in answered}
    span_trust, span_table = fit_span_trust(sets, chosen_rows, {g: best[g][0] for g in answered}, say)
    return {
        "features": list(FEATURES),
        "mean": [float(m) for m in mean],
        "scale": [float(s) for s in scale],
        "selection": [round(float(w), 6) for w in selection],
        "answering": [round(float(w), 6) for w in answering.coef_[0]],
        "answering_bias": round(float(answering.intercept_[0]), 6),
        "threshold": threshold,
        "span_trust_features": list(SPAN_TRUST_FEATURES),
        "span_trust": span_trust,
        "span_trust_table": span_table,
        "selection_C": best_c,
        "fitted_on": [s[0] for s in sets],
        "threshold_table": table,
        "calibration": calibration_table(best, is_answerable),
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


def fit_span_trust(
    sets: Sequence[TuneSet], chosen_rows: dict[int, int], confidence: dict[int, float], say: Say
) -> tuple[list[float], list[list[float]]]:
    """How likely the reader's span, shown alone, is right: a logistic regression over SPAN_TRUST_FEATURES
    of every answered tune question's chosen candidate (out of fold), right when the span reaches word F1
    0.5 with a gold answer or holds one, as `storybot eval` judges the answer line (an unanswerable
    question answered is never right). Yes/no questions are left out: they always get their sentence.
    Returns [bias, weights...] and, for the model card, the out-of-fold share right above each trust level."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold

    # Candidate rows and question ids are numbered over the sets stacked in order, as _stack numbers them.
    spans = [span for tune_set in sets for span in tune_set[5]]
    cases = [case for tune_set in sets for case in tune_set[4]]
    # Folds keep each article whole: the trust must hold on articles it was not fitted on, as storybot meets
    # them. Folds by question had passed a trust (90% right out of fold) that was right 73% of the time on the
    # SQuAD 2.0 test articles (run 11). A question of a set without articles named is a group of its own.
    articles = [
        f"{name}/{case.doc or number}" for name, *_, tune_cases, _ in sets for number, case in enumerate(tune_cases)
    ]
    rows, targets, groups = [], [], []
    for g, row in sorted(chosen_rows.items()):
        case = cases[g]
        sentence, span = spans[row]
        if span is None or question_kind(case.question) == "yesno":
            continue
        text = sentence[span.start : span.end]
        rows.append(span_trust_features(span, text, confidence[g]))
        groups.append(articles[g])
        # An answered question the article cannot answer shows a wrong short answer too.
        targets.append(case.expect is not None and answer_line_right(text, case.expect))
    x, y = np.asarray(rows, dtype=np.float64), np.asarray(targets, dtype=bool)
    if len(set(targets)) < 2:
        say("  span trust: too few right and wrong spans to fit; spans never answer alone")
        return [], []
    predicted = np.zeros(len(y))
    for train_rows, test_rows in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(x, y, groups):
        predicted[test_rows] = LogisticRegression().fit(x[train_rows], y[train_rows]).predict_proba(x[test_rows])[:, 1]
    model = LogisticRegression().fit(x, y)
    table = []
    for level in (0.5, 0.6, 0.7, 0.8, 0.85, SHORT_ANSWER_PRECISION, 0.95):
        shown = predicted >= level
        table.append([level, int(shown.sum()), len(y), round(float(y[shown].mean()), 4) if shown.any() else 0.0])
    at_floor = next(row for row in table if row[0] == SHORT_ANSWER_PRECISION)
    say(
        f"  span trust: of {len(y)} answered spans ({y.mean():.0%} right), {at_floor[1]} would answer alone, "
        f"{at_floor[3]:.0%} of them right (out of fold)"
    )
    if at_floor[3] < SHORT_ANSWER_PRECISION:
        # The trust is not calibrated that high: spans it puts at 90% are right less often out of fold. A span
        # alone must be right 90% of the time, so none answers alone until a reader earns it.
        say(f"  span trust: under {SHORT_ANSWER_PRECISION:.0%} right out of fold; spans never answer alone")
        return [], table
    return [round(float(model.intercept_[0]), 6), *(round(float(w), 6) for w in model.coef_[0])], table


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


def run_fit_scorer(settings: Settings, squad_files: Sequence[Path], say: Say) -> dict[str, Any]:
    say("Collecting reader candidates on the tune questions...")
    sets = collect(settings, squad_files, say)
    say("Fitting the scorer (5-fold cross-validation by question)...")
    result = fit(sets, say)
    path = reader_path(settings.reader_model) / SCORER_FILE
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    weights = zip(FEATURES, result["selection"], strict=True)
    say("  selection weights: " + ", ".join(f"{n} {w:+.2f}" for n, w in weights))
    say("  calibration (predicted probability of the best sentence -> share right):")
    for low, high, count, predicted, actual in result["calibration"]:
        say(f"    {low:.1f}-{high:.1f}  {count:>4} questions  predicted {predicted:.2f}  actual {actual:.2f}")
    say(f"Wrote {path}")
    return result
