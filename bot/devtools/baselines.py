"""Compare storybot with baselines on the same question sets, in one run:

- previous: storybot before issue 24 (commit PREVIOUS_COMMIT: issue 17's sentence reader, its span always
  shown alone), run from a temporary git worktree (runs 1-7 in docs/evaluation.md compared with 06c4d93,
  the reader of the 10-article sample);
- minilm: the plain nearest sentence by MiniLM cosine (always answers);
- rules: storybot as it was before the trained reader (commit RULES_COMMIT, the hand-set rules and
  weights), with --systems ...,rules.

    python -m bot.devtools.baselines tests/data/news_test/questions.jsonl tests/data/near_miss/questions.jsonl \
        --corpus tests/data/news_test/corpus --squad ../shared/data/squad2-train-sample/train-sample.json \
        ../shared/data/squad2-dev/dev-v2.0-33.json --split test

"shown ok" is what a reader reads: the answer line holds a gold answer or reaches word F1 0.5 with one;
"sentence" is the older figure, the answer's sentence holds one. Span F1 and exact match (SQuAD's word
overlap of the answer line with the expected answers, a refused question scoring 0) are over the
answerable questions; "mark F1" is the same F1 of the span the reader marks, alone or in bold in its
sentence (the reader's own span F1, as SQuAD reports it); "spans" is the share of all questions answered
with a short span alone, and "spans ok" how many of those are right.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.answering.answer import Answer, Citation, Shown, Trace
from bot.config import Settings
from bot.evaluation import (
    EvalResult,
    QuestionSet,
    load_question_set,
    run_eval,
    service_for,
    summarise,
)
from bot.service import StorybotService

ROOT = Path(__file__).resolve().parent.parent.parent
RULES_COMMIT = "f6764b1"  # the last storybot whose answers came from hand rules
# The storybot before issue 24: issue 17's sentence reader, its span shown alone at any probability.
PREVIOUS_COMMIT = "ddebb47"
DATA = ROOT / "tests" / "data"
SYSTEMS = ("storybot", "previous", "minilm")

_RULES_ADAPTER = """
import json, sys
from pathlib import Path
from bot.config import Settings
from bot.service import StorybotService
corpus, index, data = (Path(p) for p in sys.argv[1:4])
service = StorybotService.load(Settings(_env_file=None, corpus_dir=corpus, index_dir=index, data_dir=data))
for line in sys.stdin:
    a = service.ask(json.loads(line))
    print(json.dumps({"answered": a.answered, "candidate": a.candidate, "text": a.text,
                      "confidence": a.confidence, "citations": [c.text for c in a.citations]}), flush=True)
"""


def minilm_results(service: StorybotService, question_set: QuestionSet) -> list[EvalResult]:
    """The nearest sentence by cosine, answered whatever its score."""
    index = service.index
    results = []
    for case in question_set.cases:
        vector = service.embedder.encode([case.question])[0]
        ((sentence_id, score),) = index.sentence_vectors.search(vector, 1)
        row = index.metadata.sentences([sentence_id])[sentence_id]
        sentence, chunk = row.sentence, index.chunks[row.chunk_id]
        citation = Citation(1, chunk.doc, "", chunk.paragraph, chunk.start, chunk.end, chunk.text, score)
        answer = Answer(case.question, True, sentence.text, [citation], trace=Trace(score, sentence.text))
        results.append(EvalResult(case, answer))
    return results


_PREVIOUS_ADAPTER = """
import json, sys
from pathlib import Path
from bot.config import Settings
from bot.service import StorybotService
corpus, index, data = (Path(p) for p in sys.argv[1:4])
service = StorybotService.load(Settings(_env_file=None, corpus_dir=corpus, index_dir=index, data_dir=data))
for line in sys.stdin:
    a = service.ask(json.loads(line))
    print(json.dumps({"answered": a.answered, "candidate": a.trace.candidate, "text": a.text,
                      "sentence": a.shown.sentence,
                      "confidence": a.trace.confidence, "citations": [c.text for c in a.citations]}), flush=True)
"""


def rules_results(
    question_set: QuestionSet, corpus: Path, work: Path, commit: str = RULES_COMMIT, adapter: str = _RULES_ADAPTER
) -> list[EvalResult]:
    """storybot at an earlier commit answering the same questions from the same articles."""
    tree = work / f"tree-{commit}"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
        check=True,
        capture_output=True,
    )
    try:
        # The earlier commit runs with its own shipped reader, whatever reader this run was asked to measure.
        env = {k: v for k, v in os.environ.items() if k != "STORYBOT_READER_MODEL"} | {"PYTHONPATH": str(tree)}
        questions = "".join(json.dumps(c.question) + "\n" for c in question_set.cases)
        run = subprocess.run(
            [sys.executable, "-c", adapter, str(corpus.resolve()), str(work / f"index-{commit}"), str(work / "data")],
            input=questions,
            capture_output=True,
            text=True,
            env=env,
            cwd=tree,  # with -c the current directory comes first on sys.path: it must be the old tree
            check=True,
        )
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    results = []
    for case, line in zip(question_set.cases, run.stdout.splitlines(), strict=True):
        data = json.loads(line)
        citations = [Citation(n, "", "", 0, 0, 0, text, 0.0) for n, text in enumerate(data["citations"], start=1)]
        answer = Answer(
            case.question,
            data["answered"],
            data["text"],
            citations,
            shown=Shown(sentence=data.get("sentence")),
            trace=Trace(data["confidence"], data["candidate"]),
        )
        results.append(EvalResult(case, answer))
    return results


def _row(system: str, results: Sequence[EvalResult]) -> str:
    s = summarise(results)

    def pct(part: float, whole: int) -> str:
        return f"{100 * part / whole:5.1f}%" if whole else "    -"

    auc_text = f"{s.auc:.3f}" if s.answerable and s.unanswerable else "-"
    return (
        f"  {system:<10}{pct(s.answer_right, s.answerable):>9}{pct(s.right, s.answerable):>10}"
        f"{pct(s.sentence_right, s.answerable):>10}{pct(s.hits, s.answerable):>8}"
        f"{pct(s.abstained, s.unanswerable):>12}{pct(s.false_refusals, s.answerable):>10}"
        f"{pct(s.span_exact, s.answerable):>9}{pct(s.span_f1, s.answerable):>9}"
        f"{pct(s.marked_span_f1, s.answerable):>9}{auc_text:>7}"
        f"{pct(s.spans_shown, s.answerable + s.unanswerable):>8}{pct(s.spans_right, s.spans_shown):>11}"
    )


def compare(question_set: QuestionSet, settings: Settings, systems: Sequence[str] = SYSTEMS) -> str:
    base = StorybotService.load(settings)
    with tempfile.TemporaryDirectory(prefix="storybot-compare-") as temp:
        work = Path(temp)
        service = service_for(question_set, base, work / "storybot")
        corpus = service.settings.corpus_dir
        rows = []
        for system in systems:
            if system == "storybot":
                results = run_eval(service, question_set.cases)
            elif system == "previous":
                results = rules_results(question_set, corpus, work, PREVIOUS_COMMIT, _PREVIOUS_ADAPTER)
            elif system == "minilm":
                results = minilm_results(service, question_set)
            else:
                results = rules_results(question_set, corpus, work)
            rows.append(_row(system, results))
    header = (
        f"  {'system':<10}{'shown ok':>9}{'sentence':>10}{'best snt':>10}{'hit@3':>8}{'abstention':>12}"
        f"{'false ref':>10}{'span EM':>9}{'span F1':>9}{'mark F1':>9}{'AUC':>7}{'spans':>8}{'spans ok':>11}"
    )
    return "\n".join([f"{question_set.name} ({len(question_set.cases)} questions)", header, *rows])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, help="JSON Lines question sets (with --corpus) ")
    parser.add_argument("--corpus", type=Path, help="the articles of the JSON Lines sets")
    parser.add_argument("--squad", type=Path, nargs="*", default=[], help="SQuAD files (one split of each)")
    parser.add_argument("--split", default="test", help="SQuAD split (default test)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="of storybot, previous, minilm, rules")
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for path in args.sets:
        print(compare(load_question_set(path, corpus_dir=args.corpus), settings, systems), flush=True)
    for path in args.squad:
        print(compare(load_question_set(path, split=args.split), settings, systems), flush=True)


if __name__ == "__main__":
    main()
