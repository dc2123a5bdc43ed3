"""`synth export OUTPUT --format ... --to DIR`: a synth output written for a trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

FORMAT_HELP = (
    "trl (TRL vision SFT: messages + images) | sharegpt (LLaMA-Factory) | verl (veRL/EasyR1 RL parquet) | "
    "dual (iVGR grounded + text-only pairs) | coords (NV-CoT: tag offsets + float coordinates)"
)


def export_command(
    output: Annotated[Path, typer.Argument(help="A synth output folder (or one rows shard).")],
    to: Annotated[Path, typer.Option("--to", help="Folder to write the export into.")],
    format_: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "trl",
    grounding: Annotated[str, typer.Option("--grounding", help="tvg | ivgr | molmo | qwen")] = "tvg",
    frame: Annotated[
        str, typer.Option("--frame", help="pixel | norm1 | norm100 | norm1000 | qwen-resized")
    ] = "norm1000",
    geometry: Annotated[
        str, typer.Option("--geometry", help="point | box | auto (points for counting, boxes otherwise)")
    ] = "auto",
    think: Annotated[
        bool, typer.Option("--think/--no-think", help="Wrap traces as <think>…</think><answer>…</answer> (ivgr always is).")
    ] = False,
    file_type: Annotated[
        Optional[str], typer.Option("--file-type", help="jsonl | parquet (default: parquet for verl, jsonl otherwise)")
    ] = None,
    exclude_images: Annotated[
        Optional[Path],
        typer.Option("--exclude-images", help="Image sha256 list of evaluation sets (text, JSON or Parquet)."),
    ] = None,
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="Drop an image's rows from all but the first source.")
    ] = True,
    instruction: Annotated[
        Optional[str], typer.Option("--instruction", help="Text appended to every question (e.g. the format to answer in).")
    ] = None,
) -> None:
    """Export rows for SFT or RL trainers, rendering groundings in any format and frame."""
    from rich.console import Console

    from synth.core.schema import SchemaError
    from synth.errors import SynthError
    from synth.export import RenderOptions, export_output

    try:
        _check_choice("--grounding", grounding, ("tvg", "ivgr", "molmo", "qwen"))
        _check_choice("--frame", frame, ("pixel", "norm1", "norm100", "norm1000", "qwen-resized"))
        _check_choice("--geometry", geometry, ("auto", "point", "box"))
        render = RenderOptions(grounding=grounding, frame=frame, geometry=geometry, think=think)  # type: ignore[arg-type]
        report = export_output(output, to, format_, render, file_type, exclude_images, dedup, instruction)  # type: ignore[arg-type]
    except (SynthError, ValueError, FileNotFoundError, SchemaError) as exc:
        # The same shape as the other commands' errors: one line on stderr, exit status 2.
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console = Console()
    console.print(
        f"[green]exported[/] {report.written} of {report.rows_read} rows to {to} ({', '.join(report.files)}): "
        f"{report.excluded} excluded as evaluation images, {report.duplicates} duplicate images, "
        f"{report.render_failed} not renderable",
        highlight=False,
        soft_wrap=True,
    )
    for failure in report.render_failures[:5]:
        console.print(f"  not rendered: {failure}", highlight=False, soft_wrap=True)


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{option}: unknown {value!r}; choices: {', '.join(choices)}")
