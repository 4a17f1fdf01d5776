"""COCO run-length encoding read with NumPy, many masks at once (no pycocotools decode per mask).

A COCO RLE lists the lengths of alternating runs of 0 and 1 (starting with 0) over the mask
flattened in column-major order. The compressed string form (pycocotools ``rleToString``) writes
each count in 5-bit groups, least significant first, as characters ``48 + group``; bit 0x20 of a
character says another group follows, bit 0x10 of the last group is the sign, and from the fourth
count on the value is stored as the difference to the count two places before. ``rle_counts``
undoes all of that for a list of strings in a few array operations, so that the evaluator reads
every ground-truth mask of a batch in one go; ``decode_columns`` then writes only the columns
it needs.
"""
from __future__ import annotations

import numpy as np


def rle_counts(strings: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Compressed COCO RLE strings -> their run lengths, concatenated.

    Args:
        strings: S compressed ``counts`` (bytes).
    Returns:
        counts (N,) int64 and offsets (S + 1,) int64: string s has ``counts[offsets[s]:offsets[s + 1]]``.
    Raises:
        ValueError: a character outside the alphabet, a truncated value, or a count that is
            negative or does not fit 32 bits (pycocotools would read garbage for those).
    """
    lens = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    c = np.frombuffer(b"".join(strings), dtype=np.uint8).astype(np.int64) - 48
    if len(c) and (c.min() < 0 or c.max() > 63):
        raise ValueError("character outside the RLE alphabet")
    last = (c & 0x20) == 0  # (L,) this character ends a value
    ends = np.cumsum(lens) - 1
    if np.any(~last[ends[lens > 0]]):
        raise ValueError("truncated RLE string")
    vend = np.flatnonzero(last)  # (N,) last character of each value
    vstart = np.concatenate([[0], vend[:-1] + 1]).astype(np.int64) if len(vend) else vend
    nchar = vend - vstart + 1
    if len(nchar) and nchar.max() > 7:  # 7 groups = 35 bits, more than any valid count needs
        raise ValueError("RLE count too long")
    value_of_char = np.cumsum(last) - last  # (L,) index of the value each character belongs to
    shift = 5 * (np.arange(len(c)) - vstart[value_of_char])
    x = np.add.reduceat((c & 0x1F) << shift, vstart) if len(vstart) else np.zeros(0, dtype=np.int64)
    neg = (c[vend] & 0x10) != 0
    x[neg] -= np.left_shift(1, 5 * nchar[neg])  # sign-extend, as x |= -1 << 5k
    string_of_value = np.repeat(np.arange(len(strings)), lens)[vend]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(string_of_value, minlength=len(strings)))]).astype(np.int64)
    m = np.arange(len(x)) - offsets[string_of_value]  # (N,) index of the count in its string
    counts = x.copy()
    for chain in ((m % 2 == 1), (m % 2 == 0) & (m >= 2)):  # counts[m] += counts[m - 2] from m = 3 on
        idx = np.flatnonzero(chain)
        counts[idx] = _segment_cumsum(x[idx], string_of_value[idx])
    if len(counts) and (counts.min() < 0 or counts.max() >= 1 << 32):
        raise ValueError("RLE count out of range")
    return counts, offsets


def _segment_cumsum(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Cumulative sum (N,) restarting where the (sorted) segment id (N,) changes."""
    if not len(values):
        return values
    total = np.cumsum(values)
    first = np.flatnonzero(np.concatenate([[True], segment[1:] != segment[:-1]]))
    before = total[first] - values[first]  # sum of the earlier segments
    return total - np.repeat(before, np.diff(np.concatenate([first, [len(values)]])))


def check_sizes(counts: np.ndarray, offsets: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(S,) bool: the counts of string s add up to ``sizes[s]`` pixels (else the RLE is corrupt)."""
    total = np.concatenate([[0], np.cumsum(counts)])
    return total[offsets[1:]] - total[offsets[:-1]] == np.asarray(sizes)


def ones_runs(counts: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of 1 of each RLE: (owner (R,), start (R,), end (R,)) in column-major pixel index, sorted.

    Empty runs are dropped; two runs of 1 can touch (a count of 0 between them).
    """
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    end = _segment_cumsum(counts, owner)
    m = np.arange(len(counts)) - offsets[owner]
    keep = (m % 2 == 1) & (counts > 0)
    return owner[keep], end[keep] - counts[keep], end[keep]


def decode_columns(counts: np.ndarray, height: int, col0: int, col1: int) -> np.ndarray:
    """Columns ``col0:col1`` of one RLE mask of ``height`` rows, transposed: (col1 - col0, height) uint8.

    Only that part of the mask is written (np.repeat of the runs clipped to it).
    """
    end = np.cumsum(counts)
    start = end - counts
    lo, hi = col0 * height, col1 * height
    a, b = np.clip(start, lo, hi), np.clip(end, lo, hi)
    values = (np.arange(len(counts)) % 2).astype(np.uint8)
    return np.repeat(values, b - a).reshape(col1 - col0, height)
