"""`storybot eval`: score answers on JSON Lines questions ({"q": ..., "expect": [phrases] | null})."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bot.answering.answer import Answer
from bot.errors import StorybotError
from bot.service import StorybotService


@dataclass(frozen=True)
class EvalCase:
    question: str
    expect: list[str] | None  # None: the article does not answer it


@dataclass(frozen=True)
class EvalResult:
    case: EvalCase
    answer: Answer

    @property
    def answerable(self) -> bool:
        return self.case.expect is not None

    @property
    def correct(self) -> bool:
        """Answerable and answered with an expected phrase, or unanswerable and abstained."""
        if self.case.expect is None:
            return not self.answer.answered
        return bool(self.answer.answered and self.answer.text and _contains(self.answer.text, self.case.expect))

    @property
    def hit_at_3(self) -> bool:
        if self.case.expect is None:
            return False
        return any(_contains(c.text, self.case.expect) for c in self.answer.citations[:3])


def _contains(text: str, phrases: list[str]) -> bool:
    lowered = text.lower()
    return any(p.lower() in lowered for p in phrases)


def load_cases(path: Path) -> list[EvalCase]:
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
            question = data["q"]
            expect = data.get("expect")
            if not isinstance(question, str) or not (
                expect is None or (isinstance(expect, list) and all(isinstance(e, str) for e in expect))
            ):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError):
            raise StorybotError(
                f'{path} line {number} is not {{"q": "question", "expect": ["phrase", ...] or null}}'
            ) from None
        cases.append(EvalCase(question, expect))
    if not cases:
        raise StorybotError(f"{path} holds no questions")
    return cases


def run_eval(service: StorybotService, cases: list[EvalCase]) -> list[EvalResult]:
    return [EvalResult(case, service.ask(case.question)) for case in cases]


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    precision: float  # of the questions answered, the share answered right
    recall: float  # of the answerable questions, the share answered right
    score_precision: float  # the same if the score alone decided (no rules about unknown names)
    score_recall: float


def threshold_table(results: list[EvalResult], thresholds: list[float]) -> list[ThresholdRow]:
    """Precision and recall of answering when confidence >= t, with storybot's refusal rules and without."""
    answerable = sum(r.answerable for r in results)

    def rates(threshold: float, with_rules: bool) -> tuple[float, float]:
        answered = [text for r in results if (text := _text_at(r, threshold, with_rules)) is not None]
        right = sum(
            1 for r in results if r.case.expect and _contains(_text_at(r, threshold, with_rules) or "", r.case.expect)
        )
        return (right / len(answered) if answered else 1.0), (right / answerable if answerable else 1.0)

    return [ThresholdRow(t, *rates(t, True), *rates(t, False)) for t in thresholds]


def _text_at(result: EvalResult, threshold: float, with_rules: bool) -> str | None:
    """What storybot would answer at this threshold, or None for a refusal."""
    answer = result.answer
    if with_rules and not (answer.answered or answer.score_refusal):
        return None  # refused for a reason other than the score: a name the article never mentions
    if answer.candidate is None or answer.confidence < threshold:
        return None
    return answer.text if answer.answered else answer.candidate


def format_report(results: list[EvalResult], threshold: float) -> str:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    accuracy = sum(r.correct for r in answerable)
    hits = sum(r.hit_at_3 for r in answerable)
    abstained = sum(r.correct for r in unanswerable)
    false_abstentions = sum(1 for r in answerable if not r.answer.answered)
    lines = [
        f"{'metric':<26}{'score':>8}",
        f"{'answer accuracy':<26}{f'{accuracy}/{len(answerable)}':>8}",
        f"{'hit@3':<26}{f'{hits}/{len(answerable)}':>8}",
        f"{'abstention':<26}{f'{abstained}/{len(unanswerable)}':>8}",
        f"{'false abstentions':<26}{false_abstentions:>8}",
        "",
        f"answering threshold (confidence >= t), chosen t = {threshold:.2f}:",
        f"{'':>6}{'with the name rules':>22}{'score alone':>22}",
        f"{'t':>6}{'precision':>11}{'recall':>11}{'precision':>11}{'recall':>11}",
    ]
    grid = sorted({round(0.2 + 0.1 * i, 2) for i in range(9)} | {round(threshold, 2)})
    for row in threshold_table(results, grid):
        mark = "  <- chosen" if abs(row.threshold - threshold) < 1e-9 else ""
        lines.append(
            f"{row.threshold:>6.2f}{row.precision:>11.2f}{row.recall:>11.2f}"
            f"{row.score_precision:>11.2f}{row.score_recall:>11.2f}{mark}"
        )
    failing = [r for r in results if not r.correct or (r.answerable and not r.hit_at_3)]
    lines.append("")
    if failing:
        lines.append("failing questions:")
        for r in failing:
            got = r.answer.text if r.answer.answered else f"(not answered: {r.answer.reason})"
            problems = []
            if not r.correct:
                problems.append("answer")
            if r.answerable and not r.hit_at_3:
                problems.append("hit@3")
            expected = " | ".join(r.case.expect) if r.case.expect else "no answer"
            lines.append(f"  - [{', '.join(problems)}] {r.case.question}")
            lines.append(f"      expected: {expected}")
            lines.append(f"      got:      {got}")
    else:
        lines.append("failing questions: none")
    return "\n".join(lines)
