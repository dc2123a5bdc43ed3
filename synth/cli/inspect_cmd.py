"""`synth inspect PATH`: summarize an output folder or a shard; validate, render and report on it.

Exit codes: 0 fine; 1 `--validate` found problems (each named by row id and what failed);
2 the path cannot be read as a synth output (the message names the file and why).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from synth.errors import SynthError

#: In the terminal, show this many problems; --json and --report carry all of them.
MAX_PROBLEMS_PRINTED = 50


def inspect_command(
    path: Annotated[Path, typer.Argument(help="An output folder (with manifest.json) or one shard (.parquet).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary (and findings) as JSON.")] = False,
    validate: Annotated[
        bool, typer.Option("--validate", help="Check every row against the contract; exit 1 naming failing rows.")
    ] = False,
    render: Annotated[
        Optional[Path], typer.Option("--render", help="Write PNG renders of sample rows into this folder.")
    ] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="How many rows to render or embed.")] = 4,
    report: Annotated[
        Optional[Path], typer.Option("--report", help="Write a self-contained HTML report to this file.")
    ] = None,
) -> None:
    """Summarize synth output: rows, rejects by reason, objects, formats, teachers, pass rates."""
    from synth.core.shards import load_output
    from synth.inspect.render import render_samples
    from synth.inspect.report import write_report
    from synth.inspect.summary import summarize
    from synth.inspect.validate import validate_output

    try:
        output = load_output(path)
    except (SynthError, ValueError, OSError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    summary = summarize(output)
    problems = validate_output(output) if validate else None
    renders = render_samples(output, render, samples) if render is not None else []
    if report is not None:
        write_report(output, summary, report, samples, problems)
    if json_out:
        findings: dict[str, Any] = {"summary": summary, "renders": [str(p) for p in renders],
                                    "report": str(report) if report else None}
        if problems is not None:
            findings["validation"] = {"ok": not problems, "problems": [p.to_dict() for p in problems]}
        typer.echo(json.dumps(findings, indent=2))
    else:
        _print_human(summary, problems, renders, report)
    if problems:
        raise typer.Exit(1)


def _print_human(summary: dict[str, Any], problems: list | None, renders: list[Path], report: Path | None) -> None:
    console = Console()
    console.print(f"[bold]{summary['path']}[/] ({summary['source']}, schema v{summary['schema_version']})",
                  highlight=False)
    console.print(_counts_table(summary))
    console.print(_mapping_table("Rejects by stage/reason", summary["rejects_by_reason"]))
    for title, key in (("Grounded formats", "grounded_formats"), ("Teacher models", "teacher_models"),
                       ("Segmenters", "segmenters")):
        console.print(_mapping_table(title, summary[key]))
    stages = (summary.get("manifest") or {}).get("stages")
    if stages:
        console.print(_stages_table(stages))
    if problems is not None:
        _print_problems(console, problems)
    for render in renders:
        console.print(f"render: {render}", highlight=False)
    if report is not None:
        console.print(f"report: {report}", highlight=False)


def _counts_table(summary: dict[str, Any]) -> Table:
    items, objects, instances = summary["items"], summary["objects_per_row"], summary["instances_per_row"]
    table = Table(title="Counts", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    pass_rate = summary["pass_rate"]
    for label, value in [
        ("rows", summary["rows"]),
        ("rejects", summary["rejects"]),
        ("items seen", items["seen"]),
        ("items with rows", items["with_rows"]),
        ("items rejected whole", items["rejected_whole"]),
        ("items in manifest", "-" if items["in_manifest"] is None else items["in_manifest"]),
        ("teacher pass rate (mean per item)", "-" if pass_rate["mean"] is None else f"{pass_rate['mean']:.3f}"),
        ("objects per row (min/mean/max)", _dist(objects)),
        ("instances per row (min/mean/max)", _dist(instances)),
        ("instance area, median fraction", summary["instance_area_fraction"]["median"] or "-"),
        ("rejects by stage", ", ".join(f"{k} {v}" for k, v in summary["rejects_by_stage"].items()) or "-"),
    ]:
        table.add_row(label, str(value))
    return table


def _dist(d: dict[str, Any]) -> str:
    return "-" if d["min"] is None else f"{d['min']} / {d['mean']} / {d['max']}"


def _mapping_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title)
    table.add_column("value")
    table.add_column("count", justify="right")
    for key, count in counts.items():
        table.add_row(key, str(count))
    if not counts:
        table.add_row("-", "0")
    return table


def _stages_table(stages: list[dict[str, Any]]) -> Table:
    table = Table(title="Per-stage counts (from the run)")
    for column in ("stage", "unit", "in", "out", "rejected"):
        table.add_column(column)
    for line in stages:
        rejected = ", ".join(f"{k} {v}" for k, v in (line.get("rejected") or {}).items()) or "-"
        table.add_row(str(line.get("stage")), str(line.get("unit")), str(line.get("in")), str(line.get("out")), rejected)
    return table


def _print_problems(console: Console, problems: list) -> None:
    if not problems:
        console.print("[green]valid[/]: every row, reject and manifest entry keeps the contract")
        return
    console.print(f"[bold red]invalid[/]: {len(problems)} problem(s)")
    for problem in problems[:MAX_PROBLEMS_PRINTED]:
        console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    if len(problems) > MAX_PROBLEMS_PRINTED:
        console.print(f"  ... and {len(problems) - MAX_PROBLEMS_PRINTED} more (see --json or --report)")
