"""The demo pipeline's throughput and the share of wall time spent outside the model calls.

Runs `pipelines/demo.yaml` in this process (the local runner, so every call can be timed) over N
items with the real components, timing every `Segmenter.segment` and `Teacher.generate` call. The
rest of the wall time is orchestration, image I/O, geometry, rendering and Parquet writing.
Aim: under 10% of the wall time outside the models.

    python benchmarks/pipeline.py [--items 8] [--runner local|ray]
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from pathlib import Path

from synth.adapters.annotation_teacher import AnnotationTeacher
from synth.adapters.mobile_sam import MobileSamSegmenter
from synth.runners.run import load_run_config, run_pipeline

REPO = Path(__file__).resolve().parents[1]


class ModelClock:
    """Adds up the seconds spent inside the wrapped methods."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, cls: type, method: str) -> None:
        original = getattr(cls, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        setattr(cls, method, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--runner", choices=["local", "ray"], default="local")
    args = parser.parse_args()

    clock = ModelClock()
    clock.wrap(MobileSamSegmenter, "segment")
    clock.wrap(MobileSamSegmenter, "setup")
    clock.wrap(AnnotationTeacher, "generate")
    out = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        cfg = load_run_config(
            REPO / "pipelines/demo.yaml", [f"source.limit={args.items}"], output=out / "run", runner=args.runner
        )
        start = time.perf_counter()
        summary = run_pipeline(cfg, quiet=True)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print(f"items: {summary.items}  rows: {summary.rows}  rejects: {summary.rejects}  runner: {args.runner}")
    print(f"wall: {wall:.1f} s   records/s: {summary.items / wall:.3f} items/s, {summary.rows / wall:.3f} rows/s")
    if args.runner == "ray":
        print("model time is measured inside Ray actors there; run with --runner local for the share")
        return
    outside = wall - clock.seconds
    print(f"inside the models (setup + {clock.calls} calls): {clock.seconds:.1f} s")
    print(f"outside the models: {outside:.2f} s = {100 * outside / wall:.1f}% of wall time (aim: < 10%)")


if __name__ == "__main__":
    main()
