"""One self-contained HTML page about an output: the summary, charts, validation, sample renders.

Nothing is fetched when the page opens: charts are inline SVG, renders are base64 PNGs, the style
is inline, and there is no script.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import Any

from synth.core.shards import Output
from synth.inspect.charts import bar_chart, hbar_chart
from synth.inspect.render import render_row, sample_indices
from synth.inspect.validate import Problem

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 3px 10px; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } .charts { display: flex; flex-wrap: wrap; gap: 18px; }
.ok { color: #1a7f37; } .bad { color: #c62828; } img { max-width: 100%; border: 1px solid #ccc; }
code { font-size: 12px; }
"""
MAX_PROBLEMS_SHOWN = 200


def write_report(output: Output, summary: dict[str, Any], path: Path, samples: int = 4,
                 problems: list[Problem] | None = None, render_size: int = 640) -> Path:
    """Write the report to `path` (HTML) and return it."""
    sections = [
        f"<h1>synth output: {escape(summary['path'])}</h1>",
        _overview(summary),
        _charts(summary),
        _stages(summary),
        _validation(problems),
        _samples(output, samples, render_size),
    ]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>synth inspect: {escape(Path(summary['path']).name)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(sections)}</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _table(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _overview(summary: dict[str, Any]) -> str:
    items, pass_rate = summary["items"], summary["pass_rate"]
    pairs = [
        ("schema version", summary["schema_version"]),
        ("read from", summary["source"]),
        ("rows", summary["rows"]),
        ("rejects", summary["rejects"]),
        ("items seen (with rows / rejected whole)", f"{items['seen']} ({items['with_rows']} / {items['rejected_whole']})"),
        ("items in manifest", items["in_manifest"] if items["in_manifest"] is not None else "-"),
        ("mean teacher pass rate", f"{pass_rate['mean']} over {pass_rate['items']} items"),
        ("objects per row (min / mean / max)", _dist(summary["objects_per_row"])),
        ("instances per row (min / mean / max)", _dist(summary["instances_per_row"])),
        ("grounded formats", _kv(summary["grounded_formats"])),
        ("teacher models", _kv(summary["teacher_models"])),
        ("segmenters", _kv(summary["segmenters"])),
        ("tasks", _kv(summary["tasks"])),
        ("config sha256", ", ".join(c[:16] for c in summary["config_sha256"]) or "-"),
    ]
    return "<h2>Summary</h2>" + _table(pairs)


def _dist(d: dict[str, Any]) -> str:
    return "-" if d["min"] is None else f"{d['min']} / {d['mean']} / {d['max']}"


def _kv(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} ({v})" for k, v in counts.items()) or "-"


def _charts(summary: dict[str, Any]) -> str:
    charts = [
        bar_chart("Teacher pass rate per item", summary["pass_rate"]["histogram"]),
        bar_chart("Objects per row", summary["objects_per_row"]["histogram"]),
        bar_chart("Instances per row", summary["instances_per_row"]["histogram"]),
        bar_chart("Instance size (fraction of image)", summary["instance_area_fraction"]["histogram"]),
        hbar_chart("Rejects by stage/reason", summary["rejects_by_reason"]),
    ]
    return "<h2>Charts</h2><div class=\"charts\">" + "".join(f"<div>{c}</div>" for c in charts) + "</div>"


def _stages(summary: dict[str, Any]) -> str:
    stages = (summary.get("manifest") or {}).get("stages")
    if not stages:
        return ""
    head = "<tr><th>stage</th><th>unit</th><th>in</th><th>out</th><th>rejected</th><th>seconds</th></tr>"
    body = "".join(
        f"<tr><td>{escape(str(s.get('stage')))}</td><td>{escape(str(s.get('unit')))}</td><td>{s.get('in')}</td>"
        f"<td>{s.get('out')}</td><td>{escape(_kv(s.get('rejected') or {}))}</td><td>{s.get('seconds')}</td></tr>"
        for s in stages
    )
    return f"<h2>Per-stage counts (from the run)</h2><table>{head}{body}</table>"


def _validation(problems: list[Problem] | None) -> str:
    if problems is None:
        return "<h2>Validation</h2><p>not run (use <code>--validate</code>)</p>"
    if not problems:
        return "<h2>Validation</h2><p class=\"ok\">every row keeps the contract</p>"
    shown = "".join(f"<li><code>{escape(str(p))}</code></li>" for p in problems[:MAX_PROBLEMS_SHOWN])
    more = len(problems) - MAX_PROBLEMS_SHOWN
    tail = f"<p>… and {more} more</p>" if more > 0 else ""
    return f"<h2>Validation</h2><p class=\"bad\">{len(problems)} problem(s)</p><ul>{shown}</ul>{tail}"


def _samples(output: Output, samples: int, size: int) -> str:
    figures = []
    for index in sample_indices(output.rows.num_rows, samples):
        row = output.rows.slice(index, 1).to_pylist()[0]
        buf = io.BytesIO()
        render_row(row, size).save(buf, format="PNG")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        figures.append(f"<figure><img alt=\"row {escape(row['id'][:12])}\" src=\"data:image/png;base64,{data}\">"
                       f"<figcaption>row {index}: <code>{escape(row['id'])}</code></figcaption></figure>")
    return "<h2>Sample rows</h2>" + ("".join(figures) or "<p>no rows</p>")
