"""`synth eval OUTPUT [--truth COCO.json]`: instance precision/recall, point-in-mask rate, count accuracy.

A run of the demo source needs no truth file: the demo's own masks are rebuilt from its config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table


def eval_command(
    output: Annotated[Path, typer.Argument(help="Output folder of a run (or one rows shard).")],
    truth: Annotated[
        Optional[Path], typer.Option("--truth", help="Ground truth, COCO instances JSON; a demo run needs none.")
    ] = None,
    iou: Annotated[float, typer.Option("--iou", min=0.0, max=1.0, help="Mask IoU at which an instance matches.")] = 0.5,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the report as JSON here.")] = None,
) -> None:
    """Score a run's grounding against COCO truth: precision/recall at mask IoU, points, counts."""
    from synth.core.schema import SchemaError
    from synth.eval import evaluate

    console = Console(stderr=True)
    try:
        report = evaluate(output, truth, iou)
    except (FileNotFoundError, SchemaError, ValueError) as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        raise typer.Exit(2) from None
    table = Table(title=f"grounding quality of {output} against {truth.name if truth else 'the demo truth'}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("of", justify="right")
    for name, value, basis in (
        (f"instance precision @ IoU {iou:g}", report.precision, f"{report.true_positives}/{report.predictions}"),
        (f"instance recall @ IoU {iou:g}", report.recall, f"{report.true_positives}/{report.truths}"),
        ("point in true mask", report.point_in_mask_rate, f"{report.points_in_mask}/{report.points}"),
        ("count accuracy", report.count_accuracy, f"{report.counts_correct}/{report.counted_objects}"),
    ):
        table.add_row(name, "n/a" if value is None else f"{value:.3f}", basis)
    Console().print(table)
    console.print(
        f"rows {report.rows_matched}/{report.rows} matched to truth images; "
        f"objects {report.objects_matched}/{report.objects} matched to a category"
    )
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
