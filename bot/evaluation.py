"""`storybot eval`: how well storybot answers a question set, and the data the scorer is fitted on.

A question set is our JSON Lines ({"q": ..., "expect": [phrases] | null, "doc": ...}) over a corpus
directory, or a SQuAD 2.0 JSON file, whose articles become the corpus (one split of it: see
bot.squad). A question is answered right when the answer sentence holds an expected phrase
(SQuAD: a gold answer); an unanswerable one (expect null, SQuAD is_impossible) is right when refused.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.answering.answer import Answer
from bot.answering.reader import Span
from bot.answering.scorer import read_candidates
from bot.config import Settings
from bot.errors import StorybotError
from bot.service import StorybotService

Say = Callable[[str], None]


@dataclass(frozen=True)
class EvalCase:
    question: str
    expect: tuple[str, ...] | None  # None: the article does not answer it
    doc: str | None = None


@dataclass(frozen=True)
class QuestionSet:
    name: str
    cases: list[EvalCase]
    corpus_files: dict[str, str] | None  # file name -> text, for sets that bring their articles (SQuAD)
    corpus_dir: Path | None  # or a folder of articles


def holds(text: str | None, phrases: Sequence[str] | None) -> bool:
    if not text or not phrases:
        return False
    lowered = text.lower()
    return any(p.lower() in lowered for p in phrases)


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positive or not negative:
        return 0.5
    ranked = sorted([(s, 1) for s in positive] + [(s, 0) for s in negative])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(label for _, label in ranked[i:j]) * (i + j + 1) / 2
        i = j
    n_pos, n_neg = len(positive), len(negative)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def normalise_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(w for w in text.split() if w not in {"a", "an", "the"})


def token_f1(predicted: str, gold: str) -> float:
    p, g = normalise_answer(predicted).split(), normalise_answer(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


ANSWER_LINE_F1 = 0.5  # word F1 with a gold answer from which an answer line counts as right (issue 24)


def answer_line_right(text: str | None, expect: Sequence[str] | None) -> bool:
    """The answer line as a reader judges it: it holds an expected answer, or overlaps one with word F1 of
    at least ANSWER_LINE_F1 (a span a word short or long of the gold answer is still the answer)."""
    if not text or not expect:
        return False
    return holds(text, expect) or max(token_f1(text, e) for e in expect) >= ANSWER_LINE_F1


def load_jsonl(path: Path) -> list[EvalCase]:
    """Read eval questions; a malformed line is named in the error, not skipped silently."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise StorybotError(f"no eval file at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise StorybotError(f"cannot read the eval file {path}: {error}") from None
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            question, expect, doc = data["q"], data.get("expect"), data.get("doc")
            if not isinstance(question, str) or not (
                expect is None or (isinstance(expect, list) and all(isinstance(e, str) for e in expect))
            ):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError, RecursionError):
            raise StorybotError(
                f'{path} line {number} is not {{"q": "question", "expect": ["phrase", ...] or null}}'
            ) from None
        cases.append(
            EvalCase(question, None if expect is None else tuple(expect), doc if isinstance(doc, str) else None)
        )
    if not cases:
        raise StorybotError(f"{path} holds no questions")
    return cases


def load_question_set(
    path: Path, split: str | None = None, corpus_dir: Path | None = None, titles: Sequence[str] | None = None
) -> QuestionSet:
    """Our JSON Lines (answered from `corpus_dir`, default the configured corpus) or SQuAD JSON (one split,
    or only the articles of `titles` in it)."""
    from bot.squad import is_squad_file, load_squad, split_of

    if not is_squad_file(path):
        return QuestionSet(path.name, load_jsonl(path), None, corpus_dir)
    articles = [a for a in load_squad(path) if split is None or split_of(a.title) == split]
    if titles is not None:
        articles = [a for a in articles if a.title in titles]
    if not articles:
        raise StorybotError(f"{path} has no articles in the {split!r} split")
    cases = [
        EvalCase(q.question, tuple(dict.fromkeys(q.answers)) or None, a.file_name)
        for a in articles
        for q in a.questions
    ]
    name = f"{path.name}" + (f" [{split}]" if split else "")
    return QuestionSet(name, cases, {a.file_name: a.document_text() for a in articles}, None)


def service_for(question_set: QuestionSet, service: StorybotService, work_dir: Path) -> StorybotService:
    """A service answering from the question set's own articles, sharing the loaded models."""
    if question_set.corpus_files is None and question_set.corpus_dir is None:
        return service
    if question_set.corpus_files is not None:
        corpus = work_dir / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for old in corpus.iterdir():
            if old.name not in question_set.corpus_files:
                old.unlink()
        for name, text in question_set.corpus_files.items():
            target = corpus / name
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
    else:
        assert question_set.corpus_dir is not None
        corpus = question_set.corpus_dir
    settings: Settings = service.settings.model_copy(update={"corpus_dir": corpus, "index_dir": work_dir / "index"})
    return StorybotService.load(settings, service.embedder, service.reader)


@dataclass(frozen=True)
class EvalResult:
    case: EvalCase
    answer: Answer

    @property
    def answerable(self) -> bool:
        return self.case.expect is not None

    @property
    def sentence_right(self) -> bool:
        """The sentence storybot would answer with holds an expected phrase (whether or not it answered)."""
        return holds(self.answer.trace.candidate, self.case.expect)

    @property
    def answer_right(self) -> bool:
        """Answered, and the answer line itself (the span, or the whole sentence) is right as a reader reads it."""
        return self.answer.answered and answer_line_right(self.answer.text, self.case.expect)

    @property
    def span_shown(self) -> bool:
        """Answered with a short span alone rather than its whole sentence."""
        return self.answer.answered and self.answer.text != self.answer.shown.sentence

    @property
    def span_f1(self) -> float:
        """SQuAD's word F1 of the answer line with the best gold answer (0 when refused)."""
        text = self.answer.text if self.answer.answered else ""
        return max((token_f1(text or "", e) for e in self.case.expect or ()), default=0.0)

    @property
    def marked_span(self) -> str:
        """The reader's span as a reader sees it picked out: the answer line when a span stands alone, else
        the words in bold within the sentence ("" when refused or nothing is marked)."""
        if not self.answer.answered:
            return ""
        if self.span_shown:
            return self.answer.text or ""
        sentence, mark = self.answer.shown.sentence, self.answer.shown.highlight
        return sentence[mark[0] : mark[1]] if sentence and mark else ""

    @property
    def marked_span_f1(self) -> float:
        """SQuAD's word F1 of the marked span with the best gold answer: the reader's own span F1, whether
        the span is shown alone or in bold in its sentence."""
        return max((token_f1(self.marked_span, e) for e in self.case.expect or ()), default=0.0)

    @property
    def span_exact(self) -> bool:
        text = normalise_answer(self.answer.text or "") if self.answer.answered else None
        return text is not None and any(text == normalise_answer(e) for e in self.case.expect or ())

    @property
    def correct(self) -> bool:
        """Answerable and answered with a sentence holding an expected phrase, or unanswerable and refused."""
        if self.case.expect is None:
            return not self.answer.answered
        return self.answer.answered and self.sentence_right

    @property
    def hit_at_3(self) -> bool:
        return any(holds(c.text, self.case.expect) for c in self.answer.citations[:3])


def run_eval(service: StorybotService, cases: Sequence[EvalCase]) -> list[EvalResult]:
    return [EvalResult(case, ask_as_reader(service, case)) for case in cases]


def ask_as_reader(service: StorybotService, case: EvalCase) -> Answer:
    """The answer a reader ends up with: asked "Which story?", they pick the case's own article when it is
    offered (and ask again within it); when it is not, the question back stands, as no answer."""
    answer = service.ask(case.question)
    picked = next((story for story in answer.stories if story.doc == case.doc), None)
    return service.ask(case.question, story=picked.key) if picked else answer


@dataclass(frozen=True)
class Summary:
    answerable: int
    unanswerable: int
    answer_right: int  # answerable, and the answer line itself is right (what a reader reads)
    right: int  # answerable, answered with a right sentence
    sentence_right: int  # answerable, the best sentence is right (answered or not)
    hits: int
    abstained: int  # unanswerable and refused
    false_refusals: int  # answerable and refused
    spans_shown: int  # answered questions (either kind) answered with a short span alone
    spans_right: int  # ... and that span is right
    span_exact: int  # answerable: the answer line is a gold answer (SQuAD's exact match)
    span_f1: float  # answerable: the answer line's word F1 summed (SQuAD's F1 times the count)
    marked_span_f1: float  # answerable: the marked span's word F1 summed (alone or in bold)
    auc: float  # how well confidence tells answerable from unanswerable questions (0.5: chance)


def summarise(results: Sequence[EvalResult]) -> Summary:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    spans = [r for r in results if r.span_shown]
    return Summary(
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        answer_right=sum(r.answer_right for r in answerable),
        right=sum(r.correct for r in answerable),
        sentence_right=sum(r.sentence_right for r in answerable),
        hits=sum(r.hit_at_3 for r in answerable),
        abstained=sum(r.correct for r in unanswerable),
        false_refusals=sum(not r.answer.answered for r in answerable),
        spans_shown=len(spans),
        spans_right=sum(r.answer_right for r in spans),
        span_exact=sum(r.span_exact for r in answerable),
        span_f1=sum(r.span_f1 for r in answerable),
        marked_span_f1=sum(r.marked_span_f1 for r in answerable),
        auc=auc([r.answer.trace.confidence for r in answerable], [r.answer.trace.confidence for r in unanswerable]),
    )


def coverage_curve(results: Sequence[EvalResult], thresholds: Sequence[float]) -> list[tuple[float, float, float]]:
    """(t, coverage, accuracy): answering when confidence >= t, the share answered and the share of those right."""
    rows = []
    for t in thresholds:
        answered = [r for r in results if r.answer.trace.candidate is not None and r.answer.trace.confidence >= t]
        right = sum(r.answerable and r.sentence_right for r in answered)
        rows.append((t, len(answered) / max(1, len(results)), right / len(answered) if answered else 1.0))
    return rows


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def _exact_f1(s: Summary) -> str:
    if not s.answerable:
        return "-"
    return f"{100 * s.span_exact / s.answerable:.1f}% / {100 * s.span_f1 / s.answerable:.1f}%"


def _marked_f1(s: Summary) -> str:
    return f"{100 * s.marked_span_f1 / s.answerable:.1f}%" if s.answerable else "-"


def _auc(s: Summary) -> str:
    return f"{s.auc:.3f}" if s.answerable and s.unanswerable else "-"


def format_report(name: str, results: Sequence[EvalResult], threshold: float) -> str:
    s = summarise(results)
    lines = [
        f"{name}: {s.answerable} answerable, {s.unanswerable} unanswerable questions",
        f"  {'answer shown right (answer line holds it, or F1 >= .5)':<56}{_share(s.answer_right, s.answerable):>16}",
        f"  {'answer accuracy (answered, sentence holds the answer)':<56}{_share(s.right, s.answerable):>16}",
        f"  {'best sentence holds the answer (answered or not)':<56}{_share(s.sentence_right, s.answerable):>16}",
        f"  {'hit@3 (a citation among the first three holds it)':<56}{_share(s.hits, s.answerable):>16}",
        f"  {'abstention (unanswerable questions refused)':<56}{_share(s.abstained, s.unanswerable):>16}",
        f"  {'false refusals (answerable questions refused)':<56}{_share(s.false_refusals, s.answerable):>16}",
        f"  {'span exact match / F1 of the answer line':<56}{_exact_f1(s):>16}",
        f"  {'span F1 of the marked span (alone, or bold)':<56}{_marked_f1(s):>16}",
        f"  {'AUC of confidence (answerable vs unanswerable)':<56}{_auc(s):>16}",
        f"  {'answers shown as a short span alone':<56}{_share(s.spans_shown, s.answerable + s.unanswerable):>16}",
        f"  {'... of those, right':<56}{_share(s.spans_right, s.spans_shown):>16}",
        "",
        f"  accuracy/coverage over the threshold (chosen t = {threshold:.2f}):",
        f"  {'t':>6}{'coverage':>10}{'accuracy':>10}",
    ]
    grid = sorted({round(0.1 * i, 2) for i in range(1, 10)} | {round(threshold, 2)})
    for t, coverage, accuracy in coverage_curve(results, grid):
        mark = "  <- chosen" if abs(t - threshold) < 1e-9 else ""
        lines.append(f"  {t:>6.2f}{coverage:>10.2f}{accuracy:>10.2f}{mark}")
    return "\n".join(lines)


def format_failures(results: Sequence[EvalResult]) -> str:
    # Judged as a reader reads it: the answer line, or the refusal.
    failing = [r for r in results if not (r.answer_right if r.answerable else r.correct)]
    if not failing:
        return "failing questions: none"
    lines = ["failing questions:"]
    for r in failing:
        got = r.answer.text if r.answer.answered else f"(not answered: {r.answer.shown.reason})"
        expected = " | ".join(r.case.expect) if r.case.expect else "no answer"
        lines += [f"  - {r.case.question}", f"      expected: {expected}", f"      got:      {got}"]
    return "\n".join(lines)


@dataclass(frozen=True)
class CandidateRows:
    """Every reader candidate of a question set: features, labels, question ids, and each candidate's
    sentence with the reader's span in it (for fitting when a span answers alone)."""

    features: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    spans: list[tuple[str, Span | None]]


def candidate_rows(service: StorybotService, cases: Sequence[EvalCase]) -> CandidateRows:
    """A candidate is right when it holds an expected phrase, in the question's own article when the question
    names one: in an archive, the same words can stand in an article about something else."""
    features, labels, ids, spans = [], [], [], []
    for number, case in enumerate(cases):
        retrieval = service.retriever.search(" ".join(case.question.split()))
        index = service.retriever.index
        pool, rows, read_spans = read_candidates(retrieval, service.reader, index.documents, index.metadata.chunks)
        if not pool:
            continue
        features.append(rows)
        labels += [float(holds(s.sentence.text, case.expect) and case.doc in (None, s.sentence.doc)) for s in pool]
        ids += [number] * len(pool)
        spans += [(s.sentence.text, span) for s, span in zip(pool, read_spans, strict=True)]
    return CandidateRows(np.vstack(features), np.asarray(labels), np.asarray(ids), spans)
