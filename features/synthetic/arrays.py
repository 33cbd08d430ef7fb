"""Numpy helpers of the synthetic shop: Gamma draws by mean, positions within sorted groups, a fast
stable lexicographic sort, and row-wise sampling from cumulative distributions."""

from __future__ import annotations

import numpy as np


def _gamma(rng: np.random.Generator, shape: float, mean: float, size: int) -> np.ndarray:
    """Gamma draws parameterised by shape and mean."""
    return rng.gamma(shape, mean / shape, size)


def _group_starts(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Start offset of each group 0..n_groups-1 in an array sorted by group (length n_groups + 1)."""
    return np.searchsorted(sorted_keys, np.arange(n_groups + 1))


def _rank_in_group(sorted_keys: np.ndarray, n_groups: int) -> np.ndarray:
    """0-based position of each row within its group, for rows sorted by group."""
    starts = _group_starts(sorted_keys, n_groups)
    return np.arange(len(sorted_keys)) - starts[sorted_keys]


def _lex_order(keys: list[np.ndarray]) -> np.ndarray:
    """The stable lexicographic order of rows by integer ``keys`` (most significant first), as
    ``np.lexsort(keys[::-1])``; when the keys' ranges and the row index fit in 63 bits, computed by
    one plain sort of the packed keys, several times faster than an index sort."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lows = [int(k.min()) for k in keys]
    bits = [(int(k.max()) - low).bit_length() for k, low in zip(keys, lows)]
    idx_bits = (n - 1).bit_length()
    if sum(bits) + idx_bits > 63:
        return np.lexsort(keys[::-1])
    packed = np.zeros(n, dtype=np.int64)
    for k, low, b in zip(keys, lows, bits):
        packed <<= b
        packed |= k.astype(np.int64) - low
    packed <<= idx_bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << idx_bits) - 1)


def _sample_rows(rng: np.random.Generator, cum_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one column per entry of ``rows`` from the row-wise cumulative distributions ``cum_rows``."""
    out = np.empty(len(rows), dtype=np.int64)
    step = 1 << 18  # keep the comparison matrix small
    for i in range(0, len(rows), step):
        r = rows[i:i + step]
        u = rng.random(len(r))
        out[i:i + step] = (cum_rows[r] < u[:, None]).sum(axis=1)
    return np.minimum(out, cum_rows.shape[1] - 1)
