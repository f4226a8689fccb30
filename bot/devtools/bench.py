"""`storybot bench`: warm latency beside encoding alone, cold start, rebuild time and memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bot.config import Settings
from bot.devtools.stats import percentile
from bot.service import StorybotService

DEFAULT_QUESTIONS = [
    "What did Biden warn?",
    "Who did Putin speak with by phone?",
    "What does Russia want from NATO?",
    "Which news agency did Ryabkov talk to?",
    "When does Putin want talks to begin?",
    "Where was the cover photo taken?",
    "putin biden sanctions",
    "what did bidn warn",
    "Who won the 2018 World Cup?",
    "What is the stock price of Gazprom?",
]
COLD_RUNS = 5


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


# Runs `-m module args` or `-c code` and reports the process's own peak RSS (VmHWM) at exit. The rusage
# of a forked child counts the parent's memory at the fork, which made a child of a large benchmark
# process look as large as the benchmark.
_MEASURED_CHILD = """
import atexit, runpy, sys
def report():
    try:
        with open("/proc/self/status") as status:
            peak = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "")
    except OSError:
        peak = ""
    sys.stderr.write(f"\\nVmHWM-kB {peak}\\n")
atexit.register(report)
mode, target, *rest = sys.argv[1:]
if mode == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
"""


def _timed_child(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (`python -m ...` or `python -c ...`)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [args[0], "-c", _MEASURED_CHILD, *args[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    error = stderr.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed: {error.strip()[-300:]}")
    peaks = [line.split()[1] for line in error.splitlines() if line.startswith("VmHWM-kB ") and len(line.split()) > 1]
    return seconds, (int(peaks[-1]) / 1024 if peaks else float("nan"))


def index_check_cost(service: StorybotService, runs: int = 5) -> str:
    """What loading the index costs, and how much of it is checking the files against the manifest."""
    from bot.indexing.index import load_index, read_manifest, verify_files

    build_dir = service.index.path
    if build_dir is None:
        return "index load: not measured (the index was not loaded from disk)"
    loads, checks = [], []
    for _ in range(runs):
        started = time.perf_counter()
        load_index(build_dir)
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        verify_files(build_dir, read_manifest(build_dir))
        checks.append(time.perf_counter() - started)
    size = sum(path.stat().st_size for path in build_dir.iterdir()) / 1024
    return (
        f"index load, median of {runs}: {statistics.median(loads) * 1000:.1f} ms, of which reading and checking "
        f"size + sha256 of the files ({size:.0f} KiB): {statistics.median(checks) * 1000:.1f} ms"
    )


def run_bench(settings: Settings, questions_path: Path | None, rounds: int, telegram_load: bool) -> int:
    questions = DEFAULT_QUESTIONS
    if questions_path:
        questions = [json.loads(line)["q"] for line in questions_path.read_text().splitlines() if line.strip()]
    print(f"machine: {machine()}")

    load_started = time.perf_counter()
    service = StorybotService.load(settings)
    print(f"in-process load (model + index): {time.perf_counter() - load_started:.2f}s")
    print(f"reader: {service.reader.name}, read in {service.reader.precision}")
    print(index_check_cost(service))

    # Warm latency: answers and bare question encodings interleaved, so both see the same machine.
    for question in questions[:3]:
        service.ask(question)
        service.embedder.encode([question])
    answer_times: list[float] = []
    encode_times: list[float] = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            service.embedder.encode([question])
            encode_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            service.ask(question)
            answer_times.append(time.perf_counter() - started)
    a50, a95 = percentile(answer_times, 0.5) * 1000, percentile(answer_times, 0.95) * 1000
    e50, e95 = percentile(encode_times, 0.5) * 1000, percentile(encode_times, 0.95) * 1000
    print(f"warm answer    p50 {a50:7.2f} ms   p95 {a95:7.2f} ms   ({len(answer_times)} questions)")
    print(f"encode alone   p50 {e50:7.2f} ms   p95 {e95:7.2f} ms")
    print(f"answer / encode at p50: {a50 / e50:.2f}x")

    started = time.perf_counter()
    index = service.rebuild().index
    rebuild_s = time.perf_counter() - started
    sizes = f"{len(index.chunks)} chunks, {len(index.sentences)} sentences"
    print(f"rebuild (model loaded): {rebuild_s:.2f}s for {sizes}")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    env = {
        **os.environ,
        "STORYBOT_CORPUS_DIR": str(settings.corpus_dir.resolve()),
        "STORYBOT_INDEX_DIR": str(settings.index_dir.resolve()),
        "STORYBOT_DATA_DIR": str(settings.data_dir.resolve()),
        "STORYBOT_EMBEDDING_MODEL": settings.embedding_model,
    }
    baseline_code = (
        "from bot.indexing.embedding import SentenceTransformerEmbedder; SentenceTransformerEmbedder("
        f"{settings.embedding_model!r})"
    )
    cold = [_timed_child([sys.executable, "-m", "bot", "ask", questions[0]], env) for _ in range(COLD_RUNS)]
    base = [_timed_child([sys.executable, "-c", baseline_code], env) for _ in range(COLD_RUNS)]
    cold_s = statistics.median(c[0] for c in cold)
    base_s = statistics.median(b[0] for b in base)
    print(f"cold start (process start -> first answer), median of {COLD_RUNS}: {cold_s:.2f}s")
    print(f"import sentence-transformers + load model alone, median of {COLD_RUNS}: {base_s:.2f}s")
    print(f"cold start / model load: {cold_s / base_s:.2f}x")
    print(f"peak memory of a one-question process: {max(c[1] for c in cold):.0f} MiB")

    if telegram_load:
        from bot.devtools.load import run_load

        run_load(service)
    return 0
