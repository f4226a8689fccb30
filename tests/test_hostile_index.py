"""A damaged index directory: every file x every kind of damage is the one-line rc 2 message; rebuild repairs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest

from bot import cli
from bot.config import BUNDLED_MODEL, Settings
from bot.errors import IndexDamagedError, IndexError_
from bot.indexing import index as index_module
from bot.indexing.index import (
    CHUNK_VECTORS,
    CURRENT,
    MANIFEST,
    METADATA,
    PAUSE_BEFORE_SWAP,
    SENTENCE_VECTORS,
    current_build,
    load_index,
)
from bot.service import StorybotService, rebuild_index

from .conftest import ROOT, FakeEmbedder, make_settings
from .helpers import resign_manifest

DIMENSION = 384  # the bundled model's, so the CLI finds the index fresh and only the damage is wrong


def _fake() -> FakeEmbedder:
    return FakeEmbedder(dimension=DIMENSION, name=BUNDLED_MODEL)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good build, copied for every case (building it once keeps the matrix fast)."""
    root = tmp_path_factory.mktemp("pristine")
    rebuild_index(make_settings(root), _fake())
    return root


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Settings:
    shutil.copytree(pristine, tmp_path / "root", symlinks=True)
    return make_settings(tmp_path / "root")


def _build_dir(settings: Settings) -> Path:
    build_dir = current_build(settings.index_dir)
    assert build_dir is not None
    return build_dir


# -- the kinds of damage ---------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


def into_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def into_symlink(path: Path) -> None:
    target = path.with_name("elsewhere")
    path.rename(target)
    path.symlink_to(target.name)


def _rewrite_vectors(path: Path, make: Callable[[int, int], faiss.Index]) -> None:
    old = faiss.read_index(str(path))
    faiss.write_index(make(old.d, old.ntotal), str(path))


def random_vectors(path: Path) -> None:
    """A valid header and the right shape, but other vectors: silent wrong answers before the checksums."""

    def make(d: int, n: int) -> faiss.Index:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        index.add_with_ids(np.random.default_rng(8).standard_normal((n, d)).astype(np.float32), np.arange(n))
        return index

    _rewrite_vectors(path, make)


def nan_vectors(path: Path) -> None:
    def make(d: int, n: int) -> faiss.Index:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
        index.add_with_ids(np.full((n, d), np.nan, dtype=np.float32), np.arange(n))
        return index

    _rewrite_vectors(path, make)


def other_index_type(path: Path) -> None:
    def make(d: int, n: int) -> faiss.Index:
        index = faiss.IndexFlatL2(d)
        index.add(np.ones((n, d), dtype=np.float32))
        return index

    _rewrite_vectors(path, make)


def garble_payload(path: Path) -> None:
    """Keep the first 64 bytes (the FAISS header), overwrite the rest with noise."""
    data = bytearray(path.read_bytes())
    data[64:] = np.random.default_rng(3).integers(0, 256, len(data) - 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _edit_json(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = json.loads(path.read_text())
        path.write_text(json.dumps(edit(data)))

    return damage


def _set(data: dict, keys: tuple, value: object) -> dict:
    target = data
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return data


def deep_json(path: Path) -> None:
    path.write_text('{"documents": ' + "[" * 100_000 + "]" * 100_000 + "}")


def not_json(path: Path) -> None:
    path.write_bytes(b"\xff\xfe not json at all")


def json_list(path: Path) -> None:
    path.write_text("[1, 2, 3]")


def _sql(*statements: str) -> Callable[[Path], None]:
    """Damage every row a question could read, so whichever it reads first is caught."""

    def damage(path: Path) -> None:
        db = sqlite3.connect(path)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()

    return damage


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(4).bytes(8000))


METADATA_DAMAGE = {
    "text a blob": _sql("UPDATE sentences SET text = x'00ff'"),  # issue 8, reproduction 6
    "paragraph 'x'": _sql("UPDATE chunks SET paragraph = 'x'", "UPDATE sentences SET paragraph = 'x'"),
    "negative offset": _sql("UPDATE sentences SET start = -5", "UPDATE chunks SET start = -5"),
    "offset past the file": _sql('UPDATE chunks SET "end" = 1000000000', 'UPDATE sentences SET "end" = 1000000000'),
    "text not at its offsets": _sql(
        "UPDATE sentences SET text = 'root password: hunter2'", "UPDATE chunks SET text = 'root password: hunter2'"
    ),
    "unknown document": _sql("UPDATE chunks SET doc = 999999", "UPDATE sentences SET doc = 999999"),
    "sentence id out of range": _sql("UPDATE chunks SET sentence_ids = '1000000'"),
    "sentence ids not ours": _sql("UPDATE chunks SET sentence_ids = '" + "[" * 1000 + "'"),
    "extra field": _sql("ALTER TABLE chunks ADD COLUMN script TEXT DEFAULT 'rm -rf /'"),
    "not SQLite": not_sqlite,
}
MANIFEST_DAMAGE = {
    "dimension as text": _edit_json(lambda d: _set(d, ("dimension",), "384")),
    "negative count": _edit_json(lambda d: _set(d, ("chunks",), -1)),
    "checksum removed": _edit_json(lambda d: _set(d, ("files",), {})),
    "NaN build time": lambda p: p.write_text(p.read_text().replace('"build_seconds": ', '"build_seconds": NaN, "x": ')),
    "deep json": deep_json,  # issue 8, reproduction 6
}
COMMON = {
    "truncated": truncate,
    "deleted": delete,
    "a directory": into_directory,
    "a symlink": into_symlink,
}
JSON_DAMAGE = {"not JSON": not_json, "a JSON list": json_list}
VECTOR_DAMAGE = {
    "truncated": truncate,
    "deleted": delete,
    "a directory": into_directory,
    "a symlink": into_symlink,
    "garbled payload": garble_payload,
    "random vectors": random_vectors,  # issue 8, reproduction 3
    "NaN vectors": nan_vectors,
    "another index type": other_index_type,
}
MATRIX = (
    [(METADATA, name, damage) for name, damage in {**COMMON, **METADATA_DAMAGE}.items()]
    + [(MANIFEST, name, damage) for name, damage in {**COMMON, **JSON_DAMAGE, **MANIFEST_DAMAGE}.items()]
    + [(file, name, damage) for file in (CHUNK_VECTORS, SENTENCE_VECTORS) for name, damage in VECTOR_DAMAGE.items()]
)


def _run_cli(settings: Settings, monkeypatch, capsys, argv: list[str]) -> tuple[int, str, str]:
    for name in ("corpus_dir", "index_dir", "data_dir"):
        monkeypatch.setenv(f"STORYBOT_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setattr("bot.service.SentenceTransformerEmbedder", lambda name: _fake())
    monkeypatch.setattr("bot.logs.configure_logging", lambda *args, **kwargs: None)  # keep other tests' logging
    monkeypatch.setattr("bot.indexing.embedding.SentenceTransformerEmbedder", lambda name: _fake())
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("file_name", "kind", "damage"), MATRIX, ids=[f"{f}-{k}" for f, k, _ in MATRIX])
def test_damaged_index_is_one_line_and_exit_2(copy: Settings, monkeypatch, capsys, file_name, kind, damage) -> None:
    build_dir = _build_dir(copy)
    damage(build_dir / file_name)
    attempts = [False, True] if file_name != MANIFEST else [False]
    for resigned in attempts:  # the checksums catch it; re-signed, the checks behind them still do
        if resigned:
            if not (build_dir / file_name).is_file() or (build_dir / file_name).is_symlink():
                continue
            resign_manifest(build_dir)
        code, out, err = _run_cli(copy, monkeypatch, capsys, ["ask", "--json", "What did Biden warn?"])
        assert code == 2, err
        # Rows of the metadata are checked when a question reads them, after the model's status line.
        lines = [line for line in err.strip().splitlines() if line != "Loading the model..."]
        assert len(lines) == 1 and file_name in lines[0] and "storybot rebuild" in lines[0], err
        assert "unexpected error" not in err and out == ""
    # And `storybot rebuild --full` repairs it.
    assert _run_cli(copy, monkeypatch, capsys, ["rebuild", "--full"])[0] == 0
    assert load_index(_build_dir(copy)).chunks


# -- states of index/ that are not a valid `current` ------------------------------------------------------


def _current_empty_dir(index_dir: Path) -> None:
    link = index_dir / CURRENT
    link.unlink()
    link.mkdir()


def _current_dangling(index_dir: Path) -> None:
    link = index_dir / CURRENT
    link.unlink()
    link.symlink_to("build-gone")


def _current_a_file(index_dir: Path) -> None:
    link = index_dir / CURRENT
    link.unlink()
    link.write_text("not a link")


def _current_outside(index_dir: Path) -> None:
    link = index_dir / CURRENT
    link.unlink()
    link.symlink_to("/etc")


def _leftover_builds(index_dir: Path) -> None:
    (index_dir / "build-20200101T000000-killed").mkdir()
    (index_dir / "build-20200101T000000-killed" / METADATA).write_text("{}")


@pytest.mark.parametrize(
    "breakage", [_current_empty_dir, _current_dangling, _current_a_file, _current_outside, _leftover_builds]
)
def test_rebuild_repairs_any_state_of_the_index_dir(copy: Settings, monkeypatch, capsys, breakage) -> None:
    # Issue 8, reproduction 7: a `current` that is an empty directory could not be repaired by rebuild.
    breakage(copy.index_dir)
    code, _, err = _run_cli(copy, monkeypatch, capsys, ["ask", "What did Biden warn?"])
    assert code in (0, 2) and "unexpected error" not in err  # a dangling link is simply rebuilt
    assert _run_cli(copy, monkeypatch, capsys, ["rebuild"])[0] == 0
    builds = sorted(p.name for p in copy.index_dir.iterdir() if p.name.startswith("build-"))
    assert (copy.index_dir / CURRENT).is_symlink() and builds == [os.readlink(copy.index_dir / CURRENT)]
    assert StorybotService.load(copy, _fake()).ask("What did Biden warn?").citations


def test_a_failed_build_removes_its_folder(copy: Settings, monkeypatch) -> None:
    # Issue 8, reproduction 7: failed builds (disk full) left build-* directories behind.
    before = _build_dir(copy)
    real_write = index_module._write_vectors

    def disk_full(store: object, path: Path) -> None:
        if path.name == CHUNK_VECTORS:
            raise OSError(28, "No space left on device")
        real_write(store, path)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module, "_write_vectors", disk_full)
    with pytest.raises(IndexError_, match="No space left on device"):
        rebuild_index(copy, _fake())
    assert [p for p in copy.index_dir.glob("build-*")] == [before]
    assert _build_dir(copy) == before
    (copy.corpus_dir / "new.md").write_text(
        "# A new article\n\nIts words were never embedded before, so they must be.\n"
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        rebuild_index(copy, FakeEmbedder(dimension=DIMENSION, name=BUNDLED_MODEL, fail_after=1))
    assert [p for p in copy.index_dir.glob("build-*")] == [before]


# -- fault injection: kill -9 inside the save/swap window ---------------------------------------------------

_REBUILD = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.conftest import FakeEmbedder
from bot.config import BUNDLED_MODEL
from bot.service import rebuild_index
from bot.cli import load_settings
rebuild_index(load_settings(), FakeEmbedder(dimension=384, name=BUNDLED_MODEL))
"""


def test_kill_inside_the_swap_window_keeps_the_old_index(copy: Settings) -> None:
    old = _build_dir(copy)
    signal_file = copy.data_dir / "paused"
    copy.data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "STORYBOT_CORPUS_DIR": str(copy.corpus_dir),
        "STORYBOT_INDEX_DIR": str(copy.index_dir),
        "STORYBOT_DATA_DIR": str(copy.data_dir),
        PAUSE_BEFORE_SWAP: str(signal_file),
    }
    child = subprocess.Popen([sys.executable, "-c", _REBUILD, str(ROOT)], env=env, cwd=copy.corpus_dir.parent)
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert signal_file.exists(), "the rebuild never reached the swap"
        assert signal_file.read_text() == str(child.pid)
        # Every file of the new build is written; only the swap is left.
        new = [p for p in copy.index_dir.glob("build-*") if p != old]
        assert len(new) == 1 and (new[0] / MANIFEST).exists()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert _build_dir(copy) == old
    assert StorybotService.load(copy, _fake()).ask("What did Biden warn?").citations  # the old index answers
    rebuild_index(copy, _fake())  # and the next rebuild cleans up
    assert [p.name for p in copy.index_dir.glob("build-*")] == [_build_dir(copy).name]
    assert not list(copy.index_dir.glob(".current-*"))


def test_damaged_index_error_exit_code_is_2() -> None:
    assert IndexDamagedError(Path("x"), "y").exit_code == 2
