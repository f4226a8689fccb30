"""Helpers shared by the index tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bot.indexing.index import INDEX_FILES, MANIFEST


def resign_manifest(build_dir: Path) -> None:
    """Record the index files' current sha256 and size in the manifest, as if the damage were built that way.

    Gets damage past the checksums, so the checks behind them (schema, offsets, FAISS) are tested too.
    """
    path = build_dir / MANIFEST
    manifest = json.loads(path.read_text())
    for name in INDEX_FILES:
        file = build_dir / name
        if file.is_file():
            data = file.read_bytes()
            manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    path.write_text(json.dumps(manifest))
