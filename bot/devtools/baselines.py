"""Compare storybot with two baselines on the same question sets, in one run:

- minilm: the plain nearest sentence by MiniLM cosine (always answers);
- rules: storybot as it was before the trained reader (commit RULES_COMMIT, the hand-set rules and
  weights), run from a temporary git worktree on the same articles and questions.

    python -m bot.devtools.baselines --squad ../shared/data/squad2-train-sample/train-sample.json --split test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.answering.answer import Answer, Citation, Trace
from bot.config import Settings
from bot.evaluation import EvalResult, QuestionSet, load_question_set, run_eval, service_for, summarise
from bot.service import StorybotService

ROOT = Path(__file__).resolve().parent.parent.parent
RULES_COMMIT = "f6764b1"  # the last storybot whose answers came from hand rules
DATA = ROOT / "tests" / "data"

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


def rules_results(question_set: QuestionSet, corpus: Path, work: Path) -> list[EvalResult]:
    """storybot at RULES_COMMIT answering the same questions from the same articles."""
    tree = work / "rules-tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), RULES_COMMIT],
        check=True,
        capture_output=True,
    )
    try:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        questions = "".join(json.dumps(c.question) + "\n" for c in question_set.cases)
        run = subprocess.run(
            [sys.executable, "-c", _RULES_ADAPTER, str(corpus.resolve()), str(work / "old-index"), str(work / "data")],
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
            case.question, data["answered"], data["text"], citations, trace=Trace(data["confidence"], data["candidate"])
        )
        results.append(EvalResult(case, answer))
    return results


def _row(system: str, results: Sequence[EvalResult]) -> str:
    s = summarise(results)

    def pct(part: int, whole: int) -> str:
        return f"{100 * part / whole:5.1f}%" if whole else "    -"

    return (
        f"  {system:<10}{pct(s.right, s.answerable):>10}{pct(s.sentence_right, s.answerable):>10}"
        f"{pct(s.hits, s.answerable):>8}{pct(s.abstained, s.unanswerable):>12}{pct(s.false_refusals, s.answerable):>10}"
    )


def compare(question_set: QuestionSet, settings: Settings) -> str:
    base = StorybotService.load(settings)
    with tempfile.TemporaryDirectory(prefix="storybot-compare-") as temp:
        work = Path(temp)
        service = service_for(question_set, base, work / "storybot")
        corpus = service.settings.corpus_dir
        rows = [
            _row("storybot", run_eval(service, question_set.cases)),
            _row("minilm", minilm_results(service, question_set)),
            _row("rules", rules_results(question_set, corpus, work)),
        ]
        shutil.rmtree(work / "old-index", ignore_errors=True)
    header = f"  {'system':<10}{'accuracy':>10}{'best snt':>10}{'hit@3':>8}{'abstention':>12}{'false ref':>10}"
    return "\n".join([f"{question_set.name} ({len(question_set.cases)} questions)", header, *rows])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path, help="JSON Lines question sets (with --corpus) ")
    parser.add_argument("--corpus", type=Path, help="the articles of the JSON Lines sets")
    parser.add_argument("--squad", type=Path, help="the SQuAD 2.0 sample")
    parser.add_argument("--split", default="test", help="SQuAD split (default test)")
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for path in args.sets:
        print(compare(load_question_set(path, corpus_dir=args.corpus), settings), flush=True)
    if args.squad:
        print(compare(load_question_set(args.squad, split=args.split), settings), flush=True)


if __name__ == "__main__":
    main()
