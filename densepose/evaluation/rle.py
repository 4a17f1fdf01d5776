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


_POW32 = 32 ** np.arange(8, dtype=np.int64)


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
    chars = np.frombuffer(b"".join(strings), dtype=np.uint8)
    if len(chars) and (chars.min() < 48 or chars.max() > 111):
        raise ValueError("character outside the RLE alphabet")
    last = chars < 80  # (L,) this character ends a value: bit 0x20 of (char - 48) is clear
    ends = np.cumsum(lens)
    if np.any(~last[ends[lens > 0] - 1]):
        raise ValueError("truncated RLE string")
    vend = np.flatnonzero(last)  # (N,) last character of each value
    c = chars[: vend[-1] + 1 if len(vend) else 0] - np.uint8(48)
    vstart = np.concatenate([[0], vend[:-1] + 1]).astype(np.int64) if len(vend) else vend
    nchar = vend - vstart + 1
    if len(nchar) and nchar.max() > 7:  # 7 groups = 35 bits, more than any valid count needs
        raise ValueError("RLE count too long")
    x = (c[vstart] & 0x1F).astype(np.int64)  # most values are one character (5 bits)
    multi = np.flatnonzero(nchar > 1)
    for k in range(1, int(nchar.max()) if len(nchar) else 1):  # the few longer ones, 5 bits more each
        multi = multi[nchar[multi] > k]
        x[multi] += (c[vstart[multi] + k] & 0x1F).astype(np.int64) << (5 * k)
    x -= np.where(c[vend] & 0x10, _POW32[nchar], 0)  # sign-extend, as x |= -1 << 5k
    per_string = np.diff(np.searchsorted(vend, np.concatenate([[0], ends]), side="left"))
    offsets = np.concatenate([[0], np.cumsum(per_string)]).astype(np.int64)
    counts = _undo_differences(x, offsets, per_string)
    if len(counts) and (counts.min() < 0 or counts.max() >= 1 << 32):
        raise ValueError("RLE count out of range")
    return counts, offsets


def _undo_differences(x: np.ndarray, offsets: np.ndarray, per_string: np.ndarray) -> np.ndarray:
    """counts[m] = x[m] + counts[m - 2] from the fourth value of each string on (pycocotools).

    Each string's odd and even values form running sums: one cumulative sum per global parity,
    minus the sum before the string's first value of that parity.
    """
    z = x.copy()
    first = offsets[:-1][per_string > 0]
    z[first] = 0  # value 0 is on its own; value 2 starts the even chain
    total = np.empty_like(z)
    total[0::2] = np.cumsum(z[0::2])
    total[1::2] = np.cumsum(z[1::2])
    start = np.repeat(offsets[:-1], per_string)  # (N,) first value of the string
    f = start + ((np.arange(len(z)) - start) & 1)  # first value of the string with the same parity
    counts = total - total[f] + z[f]
    counts[first] = x[first]
    return counts


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


def valid_rles(rles: list[dict]) -> np.ndarray:
    """(n,) bool: each COCO RLE dict (``size`` [h, w], ``counts`` compressed string or list of
    ints) is well formed and its runs cover exactly h * w pixels.

    pycocotools does not check this, and a corrupt string can make its merge or IoU loop for
    minutes; call this before handing RLE to it.
    """
    ok = np.zeros(len(rles), dtype=bool)
    strings, owners, sizes = [], [], []
    for i, r in enumerate(rles):
        size = r.get("size") if isinstance(r, dict) else None
        if not (isinstance(size, (list, tuple)) and len(size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 31 for v in size)):
            continue
        counts = r.get("counts")
        if isinstance(counts, list):
            ok[i] = (all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts)
                     and sum(counts) == size[0] * size[1])
        elif isinstance(counts, (str, bytes)):
            try:
                strings.append(counts.encode("ascii") if isinstance(counts, str) else counts)
            except UnicodeEncodeError:
                continue
            owners.append(i)
            sizes.append(size[0] * size[1])
    if owners:
        sizes = np.array(sizes, dtype=np.int64)
        good = np.zeros(len(strings), dtype=bool)
        ends = np.cumsum([len(x) for x in strings])
        s0 = 0
        while s0 < len(strings):  # about 256 kB of characters at a time (memory: ~20 MB)
            s1 = max(int(np.searchsorted(ends, ends[s0] + (1 << 18), side="left")), s0 + 1)
            try:
                counts, off = rle_counts(strings[s0:s1])
                good[s0:s1] = check_sizes(counts, off, sizes[s0:s1])
            except ValueError:  # one bad string: read them one by one
                for s in range(s0, s1):
                    try:
                        c, o = rle_counts([strings[s]])
                        good[s] = bool(check_sizes(c, o, sizes[s : s + 1])[0])
                    except ValueError:
                        pass
            s0 = s1
        ok[np.array(owners)] = good
    return ok
