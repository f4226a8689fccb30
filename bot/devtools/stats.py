"""Small statistics shared by the benchmark and the Telegram load run."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0..1) of `values`, interpolated linearly between the two nearest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
