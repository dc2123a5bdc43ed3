"""Masks per second for mask -> (COCO RLE, tight box, interior point), against plain NumPy/SciPy.

The annotate stage turns every instance mask a segmenter returns into an RLE, a tight XYXY box
and an interior point. This measures `synth.core.geometry` doing that on full-frame 1024x1024
masks (1-20 discs and ellipses per frame, like SAM's per-instance outputs) against the direct
approach measured in the same run on the same masks: `np.nonzero` for the box, SciPy's exact
Euclidean distance transform over the whole frame for the deepest pixel, and a NumPy run-length
encoding of the Fortran-ordered frame. Both sides run on one core.

    python benchmarks/geometry.py [--frames 12] [--size 1024] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from scipy import ndimage

from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_rle_box_point, mask_to_xyxy, rle_to_mask


def make_masks(frames: int, size: int, seed: int) -> list[np.ndarray]:
    """Per-instance masks of `frames` frames, each with 1-20 random discs or ellipses."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = []
    for _ in range(frames):
        for _ in range(int(rng.integers(1, 21))):
            cx, cy = rng.uniform(0, size, 2)
            rx, ry = rng.uniform(8, size / 6, 2)
            if rng.random() < 0.5:
                ry = rx
            masks.append(((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0)
    return [m for m in masks if m.any()]


def baseline(mask: np.ndarray) -> tuple[list[int], tuple[float, ...], tuple[float, float]]:
    """The straightforward version: whole-frame nonzero, whole-frame EDT, whole-frame runs."""
    rows, cols = np.nonzero(mask)
    box = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    flat = np.concatenate([[False], mask.ravel(order="F"), [False]])
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    counts = np.diff(np.concatenate([[0], changes, [mask.size]])).tolist()
    return counts, box, (c - 1 + 0.5, r - 1 + 0.5)


def rate(fn, masks: list[np.ndarray], budget_s: float) -> tuple[float, int]:
    """Masks per second of `fn` over `masks` (stopping early once `budget_s` is spent)."""
    fn(masks[0])  # warm caches and lazy imports outside the clock
    start, done = time.perf_counter(), 0
    for mask in masks:
        fn(mask)
        done += 1
        if time.perf_counter() - start > budget_s:
            break
    return done / (time.perf_counter() - start), done


def check_agreement(masks: list[np.ndarray]) -> None:
    """Both sides must describe the same geometry, or the comparison means nothing."""
    for mask in masks[:10]:
        rle, box, point = mask_to_rle_box_point(mask)
        counts, base_box, _ = baseline(mask)
        if box != base_box or not np.array_equal(rle_to_mask(rle), mask):
            raise SystemExit(f"synth and the baseline disagree on a mask with box {base_box}")
        if not np.array_equal(rle_to_mask({"size": list(mask.shape), "counts": counts}), mask):
            raise SystemExit("the baseline's run-length encoding does not decode to its mask")
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))
        if abs(depth[int(point[1]) + 1, int(point[0]) + 1] - depth.max()) > 1e-4:
            raise SystemExit(f"synth's point {point} is not at the deepest pixel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12, help="frames of 1-20 instances each")
    parser.add_argument("--size", type=int, default=1024, help="frame side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core, like one Ray worker
    masks = make_masks(args.frames, args.size, args.seed)
    check_agreement(masks)
    print(f"{len(masks)} instance masks of {args.size}x{args.size} from {args.frames} frames (seed {args.seed})")
    separate = lambda m: (mask_to_rle(m), mask_to_xyxy(m), mask_to_point(m))  # noqa: E731
    results = {
        "synth mask_to_rle_box_point": rate(mask_to_rle_box_point, masks, 20.0),
        "synth rle + xyxy + point calls": rate(separate, masks, 10.0),
        "baseline numpy/scipy": rate(baseline, masks, 20.0),
    }
    for name, (per_s, n) in results.items():
        print(f"  {name:32s} {per_s:9.1f} masks/s  ({1000 / per_s:7.2f} ms/mask, {n} masks)")
    ratio = results["synth mask_to_rle_box_point"][0] / results["baseline numpy/scipy"][0]
    print(f"  speed-up over the baseline: {ratio:.1f}x (target: >= 200 masks/s on one core)")


if __name__ == "__main__":
    main()
