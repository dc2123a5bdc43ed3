"""Point-in-mask lookups straight on COCO compressed RLE, without decoding masks.

A reward scores many texts against the same row, so each instance mask is turned once into the
sorted run boundaries of its RLE; a point then costs one binary search. COCO RLE runs over the
mask in column-major order (index = column * height + row) and starts with a run of zeros, so a
pixel lies in the mask exactly when it falls in an odd-numbered run.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def rle_string_to_counts(counts: str | bytes) -> list[int]:
    """Run lengths of a COCO compressed RLE string (the LEB128-like text of ``counts``).

    Each run length is written as 6-bit chunks offset by 48 ('0'), low bits first: five data
    bits and a continuation bit (0x20); the last chunk's 0x10 bit is the sign. From the third
    run on, the stored value is the difference to the run two places earlier.

    Raises:
        ValueError: the string is not valid compressed RLE.
    """
    data = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    out: list[int] = []
    pos, n = 0, len(data)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError(f"RLE counts end inside a run length at byte {pos}")
            chunk = data[pos] - 48
            if not 0 <= chunk < 64:
                raise ValueError(f"RLE counts hold byte {data[pos]!r} at {pos}; expected 48..111")
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            pos += 1
            shift += 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def rle_boundaries(rle: dict[str, Any]) -> np.ndarray:
    """Cumulative run ends of an RLE mask (compressed string or plain list counts), int64."""
    counts = rle["counts"]
    runs = counts if isinstance(counts, (list, tuple, np.ndarray)) else rle_string_to_counts(counts)
    return np.cumsum(np.asarray(runs, dtype=np.int64))


def points_in_rle(points: np.ndarray, boundaries: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Which (x, y) points (P, 2), absolute pixels, lie in the mask: a (P,) bool array.

    Points outside the image, or not finite, are outside the mask.
    """
    h, w = int(size[0]), int(size[1])
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(pts).all(axis=1)
    cols = np.floor(np.where(ok, pts[:, 0], -1.0))
    rows = np.floor(np.where(ok, pts[:, 1], -1.0))
    ok &= (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    index = np.where(ok, cols * h + rows, 0).astype(np.int64)
    run = np.searchsorted(boundaries, index, side="right")
    return ok & (run % 2 == 1)
