"""A deliberately damaged copy of a reader, to show that the quality floors catch a worse one.

    python -m bot.devtools.damage_reader /tmp/damaged-reader
    STORYBOT_READER_MODEL=/tmp/damaged-reader .venv/bin/python -m pytest tests/test_quality.py

The copy keeps the scorer and config; the weights of its top encoder layers are shuffled within each
tensor (same shapes, same value distribution, no learned structure), so it loads and runs as before and
only reads worse.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bot.answering.reader import WEIGHTS_FILE, reader_path


def damage_reader(source: Path, out_dir: Path, layers: tuple[int, ...] = (4, 5), seed: int = 0) -> list[str]:
    """Copy the reader in `source` to `out_dir` with the given layers' weights shuffled; returns the tensors hit."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, out_dir, dirs_exist_ok=True)
    tensors = load_file(str(source / WEIGHTS_FILE))
    generator = torch.Generator().manual_seed(seed)
    prefixes = tuple(f"bert.encoder.layer.{n}." for n in layers)
    hit = []
    for name, tensor in tensors.items():
        if name.startswith(prefixes) and "LayerNorm" not in name:
            flat = tensor.reshape(-1)
            tensors[name] = flat[torch.randperm(flat.numel(), generator=generator)].reshape(tensor.shape).contiguous()
            hit.append(name)
    save_file(tensors, str(out_dir / WEIGHTS_FILE))
    return hit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the damaged copy")
    parser.add_argument("--reader", default="storybot-reader", help="the reader to copy (default: the shipped one)")
    parser.add_argument("--layers", default="4,5", help="encoder layers to shuffle (default 4,5)")
    args = parser.parse_args()
    layers = tuple(int(n) for n in args.layers.split(","))
    hit = damage_reader(reader_path(args.reader), args.out, layers)
    print(f"Wrote {args.out}: {len(hit)} weight tensors of layers {args.layers} shuffled.")


if __name__ == "__main__":
    main()
