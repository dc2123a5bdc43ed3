"""Benchmark: MobileSAM on the CPU, encode once / decode many; and the ground stage on the demo set.

1. One 640x480 drawn scene, segmented with 1 prompt and with 16 prompts (a fresh image encode in
   every run), and with 16 prompts each in its own run (16 encodes: what the shared embedding
   saves). The image is encoded once and the 16 prompts are decoded in one batch against that
   embedding; the aim is 16 prompts at most ~1.5x one prompt (the baseline, measured in the same
   run). MobileSAM's mask decoder is not small next to its encoder (its paper: 8 ms vs
   4 ms per prompt on a GPU), so what the decoder costs per prompt is printed too.
2. Images per second of the ground stage (real MobileSAM, annotation proposals) on the first
   demo items: the same read -> teach(annotation) -> extract stages as `pipelines/demo.yaml`.

Run: `.venv/bin/python benchmarks/segment.py [--repeats 3] [--items 8]`. Figures are medians.
The machine's other load moves the absolute times; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from synth.adapters.base import Prompt
from synth.adapters.mobile_sam import MobileSamSegmenter


def drawn_scene(width: int = 640, height: int = 480, n: int = 16, seed: int = 0) -> tuple[np.ndarray, list[Prompt]]:
    """A textured background with `n` coloured discs, and one point prompt at each disc's centre."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(165, 12, (height, width, 3)), 110, 220).astype(np.uint8)
    prompts = []
    for i in range(n):
        cx, cy = 40 + (i % 4) * 160, 60 + (i // 4) * 110
        colour = tuple(int(v) for v in rng.integers(20, 90, 3))
        cv2.circle(image, (cx, cy), 35, colour, -1)
        prompts.append(Prompt(points=np.array([[cx + 0.5, cy + 0.5]]), labels=np.array([1])))
    return image, prompts


def bench_prompts(sam: MobileSamSegmenter, repeats: int) -> None:
    """1 prompt, 16 prompts with one encode, 16 prompts with 16 encodes; interleaved so that load
    drift hits all three alike."""
    image, prompts = drawn_scene()
    times: dict[str, list[float]] = {"one": [], "shared": [], "separate": []}
    sam.segment(image, prompts[:1])  # warm-up: first calls pay for lazy allocations

    def separate() -> None:
        for prompt in prompts:
            sam.forget_image()
            sam.segment(image, [prompt])

    runs = {"one": lambda: sam.segment(image, prompts[:1]), "shared": lambda: sam.segment(image, prompts),
            "separate": separate}
    for _ in range(repeats):
        for name, run in runs.items():
            sam.forget_image()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    one, shared, apart = (statistics.median(times[k]) for k in ("one", "shared", "separate"))
    print(f"MobileSAM, CPU, {image.shape[1]}x{image.shape[0]} image, image encoded in every run (median of {repeats}):")
    print(f"  1 prompt                  {one:7.2f} s   (baseline)")
    print(f"  16 prompts, one encode    {shared:7.2f} s   ratio vs 1 prompt: {shared / one:.2f}x (aim <= 1.5x)")
    print(f"  16 prompts, 16 encodes    {apart:7.2f} s   ratio vs 1 prompt: {apart / one:.2f}x (no shared embedding)")
    print(f"  decode per extra prompt   {(shared - one) / 15:7.3f} s   ({(shared - one) / 15 / one:.0%} of a 1-prompt run)")


def demo_records(items: int):
    """The first `items` demo items after read -> teach(annotation) -> extract, as the demo runs them."""
    from synth.core.records import ItemRecord
    from synth.stages.base import RunContext
    from synth.stages.extract import ExtractConfig, ExtractStage
    from synth.stages.read import ReadConfig, ReadStage
    from synth.stages.teach import TeachConfig, TeachStage

    context = RunContext()
    read = ReadStage(ReadConfig.model_validate({"kind": "demo", "demo": {"items": items}}), context)
    teach = TeachStage(TeachConfig(backend="annotation", k=2), context)
    extract = ExtractStage(ExtractConfig(), context)
    for stage in (read, teach, extract):
        stage.setup()
    records = [ItemRecord(item=i) for i in read.iter_items()]
    return extract(teach(read(records)))


def bench_ground_stage(items: int) -> None:
    from synth.stages.base import RunContext
    from synth.stages.ground import GroundConfig, GroundStage

    records = demo_records(items)
    stage = GroundStage(GroundConfig(), RunContext())
    stage.setup()
    live = [r for r in records if r.live_candidates()]
    traces = sum(len(r.live_candidates()) for r in live)
    start = time.perf_counter()
    stage(records)
    elapsed = time.perf_counter() - start
    grounded = sum(1 for r in live for c in r.candidates if c.reject is None)
    print(f"Ground stage, real MobileSAM, annotation proposals, {len(live)} demo images / {traces} traces:")
    print(f"  {elapsed:7.2f} s   {len(live) / elapsed:.2f} images/s   {traces / elapsed:.2f} traces/s   "
          f"({grounded} of {traces} traces grounded)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing; the median is printed")
    parser.add_argument("--items", type=int, default=8, help="demo items for the ground-stage figure")
    args = parser.parse_args()
    sam = MobileSamSegmenter()
    sam.setup()
    bench_prompts(sam, args.repeats)
    bench_ground_stage(args.items)


if __name__ == "__main__":
    main()
