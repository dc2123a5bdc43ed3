"""The `synth` command line: run, validate, inspect, eval, export."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from synth import __version__
from synth.errors import SynthError

app = typer.Typer(
    help="Make visually grounded reasoning data: teacher traces, SAM grounding, Parquet shards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synth {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    """synth: visually grounded reasoning data for vision-language models."""
    level = logging.DEBUG if debug else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "PIL", "filelock", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _State.debug = debug


class _State:
    debug = False


def fail(exc: BaseException) -> None:
    """Print a user-facing error (no traceback unless --debug) and exit 2."""
    if _State.debug:
        console.print_exception()
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


ConfigArg = Annotated[Path, typer.Argument(help="Pipeline config (YAML), e.g. pipelines/counting.yaml.")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config value: --set teacher.base_url=http://host:8000/v1 (repeatable)."),
]


@app.command()
def run(
    config: ConfigArg,
    set_: SetOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder.")] = None,
    runner: Annotated[
        Optional[str], typer.Option("--runner", help="ray | local (default: the config's runner.kind).")
    ] = None,
    ray_address: Annotated[
        Optional[str], typer.Option("--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only; load no model.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an output of another config.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run a pipeline: read, teach, extract, ground, annotate, write. Reruns resume."""
    from synth.runners.run import load_run_config, run_pipeline, validate_run_config

    try:
        cfg = load_run_config(config, set_ or [], output=output, runner=runner, ray_address=ray_address)
        problems = validate_run_config(cfg)
        if problems:
            raise SynthError("config check failed:\n  " + "\n  ".join(problems))
        if dry_run:
            console.print(f"[green]ok[/]: {config} is valid (dry run, nothing loaded)")
            return
        summary = run_pipeline(cfg, quiet=quiet, overwrite=overwrite)
    except (SynthError, KeyboardInterrupt) as exc:
        fail(exc if isinstance(exc, SynthError) else SynthError("interrupted; rerun to resume"))
    else:
        Console().print(summary.rich_table())


@app.command()
def validate(config: ConfigArg, set_: SetOpt = None) -> None:
    """Check a config, its prompt placeholders and each stage's inputs, without loading a model."""
    from synth.runners.run import load_run_config, validate_run_config

    try:
        cfg = load_run_config(config, set_ or [])
        problems = validate_run_config(cfg)
    except SynthError as exc:
        fail(exc)
    if problems:
        fail(SynthError("config check failed:\n  " + "\n  ".join(problems)))
    console.print(f"[green]ok[/]: {config} is valid")


def _register_optional_commands() -> None:
    from synth.cli.eval_cmd import eval_command
    from synth.cli.export_cmd import export_command
    from synth.cli.inspect_cmd import inspect_command

    app.command("inspect")(inspect_command)
    app.command("eval")(eval_command)
    app.command("export")(export_command)


_register_optional_commands()
