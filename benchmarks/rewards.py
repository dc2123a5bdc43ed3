"""Generated texts scored per second by `synth.rewards.score_all`, against a naive implementation.

RL loops score k rollouts per prompt, so the benchmark builds 40 rows (counting rows with 1-8
discs, spatial rows with two boxes, on 640x480 images) and 10,000 generated texts grouped by row:
every format (tvg, ivgr, molmo, qwen) in every frame, with jittered, missing and extra instances,
and 15% malformed (truncated, unclosed, broken JSON, non-numbers, no markup). Each text gets all
rewards (format, answer, point precision/recall/F1, iVGR box, Hungarian box, count).

The baseline, measured in the same run on the same texts, is what a reward script usually is: a
regex per format compiled at each call, the row's masks decoded with pycocotools for every text,
Python loops for IoU and point hits, greedy matching. It computes the same rewards.

    python benchmarks/rewards.py [--texts 10000] [--seed 0] [--repeat 1]

With --repeat N every pass runs N times and the fastest counts, for a machine shared with other
work (the ratio to the baseline stays the fairer figure there).
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np

from synth.core.answers import extract_final_answer, normalize_count, verify
from synth.core.formats import FORMATS, parse_groundings, render_trace
from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_xyxy, rle_to_mask
from synth.core.records import GroundedObject, Instance
from synth.rewards import FRAME_NAMES, clear_cache, frame_for, score_all

W, H = 640, 480


def make_rows(n: int, rng: np.random.Generator) -> list[dict]:
    """Counting rows (1-8 discs) and spatial rows (two boxes), alternating."""
    yy, xx = np.mgrid[:H, :W]
    rows = []
    for i in range(n):
        counting = i % 2 == 0
        k = int(rng.integers(1, 9)) if counting else 2
        masks = []
        while len(masks) < k:
            cx, cy, r = rng.uniform(40, W - 40), rng.uniform(40, H - 40), rng.uniform(12, 35)
            mask = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r
            if not any((mask & m).any() for m in masks):
                masks.append(mask)
        instances = [{"mask": mask_to_rle(m), "box": list(mask_to_xyxy(m)), "point": list(mask_to_point(m))}
                     for m in masks]
        if counting:
            trace = f"I count the coins one by one. There are {k} coins."
            objects = [("coins", instances)]
            answer, task = str(k), "counting"
        else:
            trace = "The cup is left of the plate, so the answer is left."
            objects = [("cup", instances[:1]), ("plate", instances[1:])]
            answer, task = "left", "spatial"
        rows.append({
            "id": f"row{i}", "task": task, "answer": answer, "image_width": W, "image_height": H,
            "trace": trace,
            "objects": [{"phrase": p, "spans": [{"start": trace.index(p), "end": trace.index(p) + len(p)}],
                         "expected_count": len(inst), "instances": inst} for p, inst in objects],
        })
    return rows


def make_text(row: dict, fmt: str, frame_name: str, rng: np.random.Generator) -> str:
    """A plausible rollout: the row's geometry jittered, an instance dropped or added, sometimes broken."""
    objects = []
    for obj in row["objects"]:
        insts = [Instance({}, list(np.add(i["box"], rng.normal(0, 4, 4))), list(np.add(i["point"], rng.normal(0, 4, 2))))
                 for i in obj["instances"]]
        if len(insts) > 1 and rng.random() < 0.2:
            insts.pop()
        if rng.random() < 0.2:
            x, y = rng.uniform(0, W - 30), rng.uniform(0, H - 30)
            insts.append(Instance({}, [x, y, x + 25, y + 25], [x + 12, y + 12]))
        box = np.clip(np.array([i.box for i in insts]), 0, [W, H, W, H])
        for inst, b in zip(insts, box):
            inst.box, inst.point = b.tolist(), np.clip(inst.point, 0, [W - 1, H - 1]).tolist()
        objects.append(GroundedObject(obj["phrase"], [(s["start"], s["end"]) for s in obj["spans"]], None, insts))
    geometry = "point" if row["task"] == "counting" else "box"
    answer = row["answer"] if rng.random() < 0.7 else "7"
    text = render_trace(row["trace"], objects, fmt, frame_for(frame_name, W, H), geometry, answer=answer)
    if rng.random() < 0.15:
        cut = int(rng.integers(5, len(text)))
        text = rng.choice([text[:cut], text.replace("]", "", 1), text.replace("</", "<", 1),
                           text.replace("1", "x", 2), row["trace"]])
    return str(text)


# --- the naive baseline -------------------------------------------------------------------------

def naive_parse(text: str, fmt: str, frame) -> tuple[list[list[float]], list[list[float]], bool]:
    """(points, boxes) in pixels and whether all markup read, with one regex per format."""
    ex, ey = frame.extent
    sx, sy = W / ex, H / ey
    points, boxes, ok = [], [], True
    if fmt in ("tvg", "ivgr"):
        for kind, body in re.findall(r"<(point|box)>(.*?)</(?:point|box)>", text, re.S):
            try:
                value = json.loads(body)
            except ValueError:
                ok = False
                continue
            for c in (value if value and isinstance(value[0], list) else [value]):
                (points if kind == "point" else boxes).append(c)
        ok = ok and text.count("<box>") + text.count("<point>") == len(re.findall(r"</(?:point|box)>", text))
    elif fmt == "molmo":
        for attrs in re.findall(r"<points?\s([^>]*)>", text):
            values = dict(re.findall(r'(\w+)="([^"]*)"', attrs))
            xs = [k for k in values if k.startswith("x")]
            try:
                points += [[float(values[k]), float(values["y" + k[1:]])] for k in xs]
            except (KeyError, ValueError):
                ok = False
    else:
        for key, body in re.findall(r'"(bbox_2d|point_2d)":\s*\[([^\]]*)\]', text):
            try:
                c = [float(v) for v in body.split(",")]
            except ValueError:
                ok = False
                continue
            (boxes if key == "bbox_2d" else points).append(c)
    points = [[p[0] * sx, p[1] * sy] for p in points if len(p) == 2]
    boxes = [[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in boxes if len(b) == 4]
    return points, boxes, ok and bool(points or boxes)


def naive_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def naive_score(text: str, row: dict, fmt: str, frame_name: str) -> dict[str, float]:
    frame = frame_for(frame_name, W, H)
    points, boxes, ok = naive_parse(text, fmt, frame)
    instances = [i for o in row["objects"] for i in o["instances"]]
    masks = [rle_to_mask(i["mask"]) for i in instances]  # decoded for every text
    true_boxes = [i["box"] for i in instances]
    hit, used = 0, set()
    for x, y in points:  # greedy: first free instance whose mask holds the point
        for n, m in enumerate(masks):
            if n not in used and 0 <= x < W and 0 <= y < H and m[int(y), int(x)]:
                used.add(n)
                hit += 1
                break
    p = hit / len(points) if points else 0.0
    r = hit / len(masks) if masks else 0.0
    box = 0.0
    if boxes:
        dup = any(naive_iou(a, b) > 0.9 for i, a in enumerate(boxes) for b in boxes[i + 1:])
        rec = sum(max(naive_iou(t, b) for b in boxes) for t in true_boxes) / len(true_boxes)
        prec = sum(max(naive_iou(b, t) for t in true_boxes) for b in boxes) / len(boxes)
        box = 0.0 if dup else 0.5 * (rec + prec)
    stripped = re.sub(r"<(point|box)>.*?</(point|box)>|</?points?[^>]*>|\[\{.*?\}\]", "", text)
    predicted, _ = extract_final_answer(stripped)
    gold = normalize_count(row["answer"]) if row["task"] == "counting" else len(row["objects"][0]["instances"])
    return {
        "format": float(ok), "answer": float(verify(row["task"], predicted, row["answer"])),
        "point": 2 * p * r / (p + r) if hit else 0.0, "box": box,
        "count": float(len(points) + len(boxes) == gold),
    }


def timed(fn, jobs, repeat: int = 1, before=None) -> float:
    """Seconds of the fastest of `repeat` passes of fn over the jobs (`before` runs ahead of each)."""
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        for job in jobs:
            fn(*job)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="passes per measurement; the fastest counts")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = make_rows(40, rng)
    jobs = []
    per_row = max(1, args.texts // len(rows))
    for row in rows:  # grouped by row, as an RL step scores the k rollouts of each prompt
        for _ in range(per_row):
            fmt, frame = str(rng.choice(FORMATS)), str(rng.choice(FRAME_NAMES))
            jobs.append((make_text(row, fmt, frame, rng), row, fmt, frame))
    jobs = jobs[: args.texts]
    malformed = sum(parse_groundings(t, f, frame_for(fr, W, H))[1] is not None for t, _, f, fr in jobs)
    score_all(*jobs[0])  # imports and lazy set-up outside the clock
    r = max(1, args.repeat)
    cold = timed(score_all, jobs, r, before=clear_cache)  # prepares each row's targets on its first rollout
    ours = timed(score_all, jobs, r)  # a second RL epoch over the same prompts: targets cached
    base = timed(naive_score, jobs, r)
    parse_only = timed(lambda t, row, f, fr: parse_groundings(t, f, frame_for(fr, W, H)), jobs, r)
    n, per_text = len(jobs), 8  # score_all returns 8 figures per text
    print(f"texts: {n} over {len(rows)} rows, {malformed} ({malformed / n:.0%}) with malformed or missing markup")
    print(f"synth.rewards.score_all : {n / ours:10,.0f} texts/s  ({ours / n * 1e6:6.1f} us/text, "
          f"{n * per_text / ours:,.0f} reward values/s); first pass {n / cold:,.0f} texts/s")
    print(f"naive regex+loop        : {n / base:10,.0f} texts/s  ({base / n * 1e6:6.1f} us/text)")
    print(f"speed-up vs naive       : {base / ours:10.1f}x (first pass {base / cold:.1f}x)")
    print(f"of which parse_groundings: {parse_only / n * 1e6:6.1f} us/text ({parse_only / ours:.0%} of score_all); "
          f"rewards without the parse: {n / max(ours - parse_only, 1e-9):,.0f} texts/s")
    print(f"target 20,000 texts/s: {'met' if n / ours >= 20_000 else 'not met'}")


if __name__ == "__main__":
    main()
